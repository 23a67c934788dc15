//! The JSON Schema (draft 2020-12) of the user-data batten accepts.
//!
//! Editors (VS Code's YAML extension, for one) use it to complete and check
//! user-data as it is typed. It describes the *input* forms, which are looser
//! than the typed model (a port may be a number or a string, `groups` a list
//! or a comma-separated string), and leaves unknown top-level keys open,
//! because they belong to cloud-init. `cloud-init/schema.json` in the
//! repository is this output; a test keeps the two equal.

use serde_json::{Value, json};

/// The schema as a JSON value.
pub fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/batten/batten/cloud-init/schema.json",
        "title": "batten user-data",
        "description": "cloud-init compatible user-data as batten reads it. Keys batten does not implement are left to cloud-init.",
        "type": "object",
        "additionalProperties": true,
        "properties": {
            "users": {
                "description": "Accounts to create. `default` is the image's default user. A list without `default` means no default user.",
                "anyOf": [
                    { "type": "array", "items": { "$ref": "#/$defs/user_entry" } },
                    { "type": "string", "description": "Deprecated: comma-separated names." }
                ]
            },
            "user": {
                "description": "The default user's name or settings (Raspberry Pi Imager writes this form).",
                "anyOf": [ { "$ref": "#/$defs/account_name" }, { "$ref": "#/$defs/user" } ]
            },
            "ssh_authorized_keys": {
                "description": "Keys for the default user (and root, redirected unless disable_root is false).",
                "$ref": "#/$defs/keys"
            },
            "ssh_pwauth": {
                "description": "SSH password login. batten's default is off; true keeps passwords on (warned). cloud-init's \"unchanged\" is refused: batten never leaves password login to the image.",
                "$ref": "#/$defs/boolean"
            },
            "disable_root": { "$ref": "#/$defs/boolean", "default": true },
            "ssh_deletekeys": { "$ref": "#/$defs/boolean", "default": true },
            "ssh_quiet_keygen": { "$ref": "#/$defs/boolean", "default": false },
            "ssh_genkeytypes": {
                "anyOf": [
                    { "type": "array", "items": { "enum": ["rsa", "ecdsa", "ed25519", "dsa"] } },
                    { "enum": ["rsa", "ecdsa", "ed25519", "dsa"] },
                    { "type": "null" }
                ],
                "default": ["rsa", "ecdsa", "ed25519"]
            },
            "ssh_keys": {
                "description": "Host keys to install instead of generating them: {rsa,ecdsa,ed25519}_{private,public,certificate}.",
                "type": "object",
                "patternProperties": {
                    "^(rsa|ecdsa|ed25519)_(private|public|certificate)$": { "type": "string" }
                }
            },
            "batten": { "$ref": "#/$defs/batten" }
        },
        "$defs": {
            "boolean": {
                "description": "A boolean; YAML 1.1 spellings (yes/no/on/off) and the numbers 1 and 0 count.",
                "anyOf": [
                    { "type": "boolean" },
                    { "enum": [0, 1] },
                    { "type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|[Nn][Oo]|[Oo][Nn]|[Oo][Ff][Ff]|1|0)$" }
                ]
            },
            "account_name": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}$"
            },
            "keys": {
                "anyOf": [
                    { "type": "array", "items": { "$ref": "#/$defs/public_key" } },
                    { "$ref": "#/$defs/public_key" }
                ]
            },
            "public_key": {
                "description": "One authorized_keys line: optional options, key type, base64, comment.",
                "type": "string",
                "pattern": "^[^\\n\\r]*(ssh-|ecdsa-|sk-)[^\\n\\r]+$"
            },
            "source": {
                "description": "An IPv4/IPv6 address, a CIDR network, or an a-b address range.",
                "type": "string",
                "pattern": "^[0-9A-Fa-f:./-]+$"
            },
            "sources": {
                "anyOf": [
                    { "$ref": "#/$defs/source" },
                    { "type": "array", "items": { "$ref": "#/$defs/source" }, "minItems": 1 }
                ]
            },
            "port": {
                "anyOf": [
                    { "type": "integer", "minimum": 1, "maximum": 65535 },
                    { "type": "string", "pattern": "^[0-9]{1,5}$" }
                ]
            },
            "hash": {
                "description": "A crypt(3) hash: $y$, $6$, $5$ ($2b$ for console passwords; $apr1$, {SHA}, {SSHA} and $1$ also for the proxy).",
                "type": "string",
                "pattern": "^(\\$|\\{S?SHA\\})[^\\n\\r:]+$"
            },
            "user_entry": {
                "anyOf": [
                    { "const": "default" },
                    { "$ref": "#/$defs/account_name" },
                    { "$ref": "#/$defs/user" }
                ]
            },
            "user": user_def(),
            "batten": batten_def()
        }
    })
}

/// The mapping form of one user. cloud-init reads `-` in these keys as
/// `_`, so both spellings are listed.
fn user_def() -> Value {
    let mut def = user_def_underscored();
    if let Some(props) = def.get_mut("properties").and_then(Value::as_object_mut) {
        let dashed: Vec<(String, Value)> = props
            .iter()
            .filter(|(k, _)| k.contains('_'))
            .map(|(k, v)| (k.replace('_', "-"), v.clone()))
            .collect();
        props.extend(dashed);
    }
    def
}

fn user_def_underscored() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "name": { "$ref": "#/$defs/account_name" },
            "gecos": { "type": "string" },
            "groups": {
                "anyOf": [
                    { "type": "string" },
                    { "type": "array", "items": { "$ref": "#/$defs/account_name" } },
                    { "type": "object" }
                ]
            },
            "sudo": {
                "anyOf": [
                    { "type": "string" },
                    { "type": "array", "items": { "type": "string" } },
                    { "const": false },
                    { "type": "null" }
                ]
            },
            "shell": { "type": "string", "pattern": "^/" },
            "lock_passwd": { "$ref": "#/$defs/boolean", "default": true },
            "passwd": { "$ref": "#/$defs/hash" },
            "hashed_passwd": { "$ref": "#/$defs/hash" },
            "plain_text_passwd": { "type": "string", "description": "Accepted with a warning; hashed before it is written." },
            "ssh_authorized_keys": { "$ref": "#/$defs/keys" },
            "homedir": {}, "primary_group": {}, "uid": {}, "system": {},
            "no_create_home": {}, "no_user_group": {}, "no_log_init": {},
            "expiredate": {}, "inactive": {}, "selinux_user": {},
            "ssh_import_id": {}, "ssh_redirect_user": {}, "doas": {},
            "snapuser": {}, "create_groups": {}
        }
    })
}

/// The `batten:` section.
fn batten_def() -> Value {
    json!({
        "description": "batten's own settings; cloud-init ignores this key.",
        "type": ["object", "null"],
        "additionalProperties": false,
        "properties": {
            "ssh": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "port": {
                        "anyOf": [
                            { "$ref": "#/$defs/port" },
                            { "type": "array", "items": { "$ref": "#/$defs/port" }, "minItems": 1 }
                        ]
                    },
                    "permit_root_login": {
                        "enum": ["no", false, "prohibit-password", "without-password", "forced-commands-only"]
                    },
                    "crypto": {
                        "description": "Key exchange, ciphers, MACs and key algorithms sshd offers: modern (ssh-audit's hardening guide), compatible (adds NIST curves and SHA-2 MACs for older clients), image (the image's own). Always limited to what the image's OpenSSH knows, and always accepting the keys the user-data installs.",
                        "enum": ["modern", "compatible", "image"],
                        "default": "modern"
                    }
                }
            },
            "passwords": {
                "description": "Known default passwords (pi/raspberry and the like) are locked wherever found and refused in user-data; allow_defaults: true leaves them, for a lab.",
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "allow_defaults": { "$ref": "#/$defs/boolean", "default": false }
                }
            },
            "firewall": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "enabled": { "$ref": "#/$defs/boolean", "default": true },
                    "backend": { "enum": ["auto", "nftables", "iptables"], "default": "auto" },
                    "log_drops": { "$ref": "#/$defs/boolean", "default": false },
                    "forward": { "enum": ["drop", "accept"] },
                    "allow": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": false,
                            "minProperties": 1,
                            "properties": {
                                "port": {
                                    "anyOf": [
                                        { "$ref": "#/$defs/port" },
                                        { "type": "string", "pattern": "^[0-9]{1,5}-[0-9]{1,5}$" }
                                    ]
                                },
                                "proto": { "enum": ["tcp", "udp"], "default": "tcp" },
                                "from": { "$ref": "#/$defs/sources" }
                            }
                        }
                    }
                }
            },
            "proxy": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["upstream", "auth"],
                    "properties": {
                        "listen": { "$ref": "#/$defs/port", "default": 80 },
                        "server_name": {
                            "anyOf": [
                                { "type": "string" },
                                { "type": "array", "items": { "type": "string" } }
                            ]
                        },
                        "upstream": {
                            "description": "127.0.0.1:PORT, [::1]:PORT, localhost:PORT, or a unix socket path.",
                            "type": "string"
                        },
                        "auth": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["users"],
                            "properties": {
                                "realm": { "type": "string", "default": "Restricted" },
                                "users": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": false,
                                        "required": ["name"],
                                        "properties": {
                                            "name": { "type": "string", "pattern": "^[A-Za-z0-9._@-]{1,64}$" },
                                            "password_hash": { "$ref": "#/$defs/hash" }
                                        }
                                    }
                                }
                            }
                        },
                        "tls": tls(),
                        "allow_from": { "$ref": "#/$defs/sources" }
                    }
                }
            },
            "updates": {
                "description": "Automatic updates by the distribution's tool (unattended-upgrades, dnf-automatic); on by default, false turns them off (warned).",
                "anyOf": [
                    { "$ref": "#/$defs/boolean" },
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {
                            "enabled": { "$ref": "#/$defs/boolean", "default": true },
                            "packages": { "enum": ["security", "all"], "default": "security" },
                            "reboot": {
                                "description": "When an update needs a reboot, reboot at this time (24-hour HH:MM); false (the default) never reboots.",
                                "anyOf": [
                                    { "type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$" },
                                    { "const": false }
                                ]
                            }
                        }
                    }
                ]
            },
            "assure": assure(),
            "kernel": {
                "description": "Kernel settings that cost a server nothing (sysctl, uncommon protocols, setuid core dumps); on by default, false turns them off (warned).",
                "anyOf": [
                    { "$ref": "#/$defs/boolean" },
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {
                            "enabled": { "$ref": "#/$defs/boolean", "default": true }
                        }
                    }
                ]
            }
        }
    })
}

/// `batten.assure`: its own function, as serde_json's macro has a
/// recursion limit.
fn assure() -> Value {
    json!({
        "description": "The drift checks after the seal: batten-verify.timer runs `batten verify --drift`, read-only.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "interval": { "description": "Minutes between drift checks.", "type": "integer", "minimum": 1, "maximum": 1440, "default": 5 },
            "textfile_dir": { "description": "node_exporter's textfile collector directory, where batten.prom is written.", "type": "string", "pattern": "^/", "default": "/var/lib/prometheus/node-exporter" },
            "repair": { "description": "The timer re-applies batten's own files (its sshd drop-in, firewall, sites, sysctl, update settings) when they drifted; never anything else.", "$ref": "#/$defs/boolean", "default": false }
        }
    })
}

/// A proxy site's `tls`: its own function, as serde_json's macro has a
/// recursion limit.
fn tls() -> Value {
    json!({
        "description": "HTTPS for the site: auto (the default; a self-signed certificate made at first boot, checked by its fingerprint), off (plain HTTP: the password travels in clear; warned), files the image has, or a certificate from an ACME CA.",
        "default": "auto",
        "anyOf": [
            { "enum": ["auto", "off"] },
            { "type": "boolean" },
            {
                "type": "object",
                "additionalProperties": false,
                "required": ["certificate", "key"],
                "properties": {
                    "certificate": { "type": "string", "pattern": "^/" },
                    "key": { "type": "string", "pattern": "^/" }
                }
            },
            {
                "type": "object",
                "additionalProperties": false,
                "required": ["acme"],
                "properties": {
                    "acme": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["domain"],
                        "properties": {
                            "domain": { "type": "string", "pattern": "^[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$" },
                            "email": { "type": "string", "pattern": "^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$" },
                            "server": { "type": "string", "pattern": "^https://", "default": "https://acme-v02.api.letsencrypt.org/directory" },
                            "server_ca": { "type": "string", "pattern": "^/" }
                        }
                    }
                }
            }
        ]
    })
}

/// The schema as the text `batten schema` prints and the repository keeps.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}
