//! The JSON Schema agrees with the validator: every example passes it, and
//! documents the validator refuses for their shape are refused by it too.

mod common;

use batten::input::yaml::{self, to_json};
use common::repo;

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join("cloud-init/schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::new(&schema).expect("the schema is valid draft 2020-12")
}

fn doc(text: &str) -> serde_json::Value {
    to_json(&yaml::parse(text).expect("test YAML parses"))
}

#[test]
fn every_example_passes_the_schema() {
    let validator = schema();
    let dir = repo().join("cloud-init/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc(&text))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        seen += 1;
    }
    assert!(seen >= 3);
}

#[test]
fn schema_refuses_what_batten_refuses_by_shape() {
    let validator = schema();
    for bad in [
        "batten:\n  proxxy: []\n",
        "batten:\n  firewall:\n    allow:\n      - {port: 70000}\n",
        "batten:\n  firewall:\n    allow:\n      - {}\n",
        "users:\n  - name: a\n    ssh_authorised_keys: []\n",
        "ssh_pwauth: maybe-not-a-bool\ndisable_root: y\n",
        "ssh_pwauth: unchanged\n",
        "batten:\n  proxy:\n    - {upstream: 127.0.0.1:8080}\n",
        "batten:\n  ssh: {crypto: modren}\n",
        "batten:\n  updates: {packges: all}\n",
        "batten:\n  updates: {packages: some}\n",
        "batten:\n  updates: {reboot: \"3:30\"}\n",
        "batten:\n  updates: {reboot: true}\n",
        "batten:\n  kernel: {enable: true}\n",
    ] {
        assert!(
            !validator.is_valid(&doc(bad)),
            "the schema accepted:\n{bad}"
        );
    }
    for good in [
        "users:\n  - default\n  - name: a\n    lock-passwd: false\n",
        "ssh_pwauth: Off\ndisable_root: Off\npackages: [nginx]\n",
        "batten:\n  updates: {packages: all, reboot: \"03:30\"}\n  kernel: false\n",
        "batten:\n  updates: false\n  kernel: {enabled: true}\n",
    ] {
        let errors: Vec<String> = validator
            .iter_errors(&doc(good))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{good}: {errors:#?}");
    }
}

/// A document that sets every key batten enforces to a valid value.
const EVERY_ENFORCED_KEY: &str = r#"#cloud-config
users:
  - name: admin
    lock_passwd: true
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDi/c0qxbedyyZUrZ9WZmCza4aMNTGgltZLVpTBOs90R admin@laptop"]
ssh_pwauth: false
disable_root: true
ssh_deletekeys: true
ssh_quiet_keygen: false
ssh_genkeytypes: [ed25519]
batten:
  ssh: {port: 22, permit_root_login: "no", crypto: modern}
  firewall:
    enabled: true
    backend: auto
    forward: drop
    log_drops: false
    allow:
      - {port: 443, proto: tcp, from: 203.0.113.10}
  proxy:
    - listen: 8443
      server_name: panel.example.org
      upstream: 127.0.0.1:8080
      allow_from: 203.0.113.0/24
      tls: {certificate: /etc/ssl/panel.pem, key: /etc/ssl/panel.key}
      auth:
        realm: Panel
        users:
          - {name: admin}
"#;

/// Every place in `doc` that batten enforces, as JSON pointers: the
/// cloud-init keys batten acts on and everything under `batten:`, at every
/// depth (a whole section replaced by a word is as wrong as a bad leaf).
fn enforced_places(doc: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    walk(v, format!("{at}/{k}"), out);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for key in [
        "ssh_pwauth",
        "disable_root",
        "ssh_deletekeys",
        "ssh_quiet_keygen",
    ] {
        out.push(format!("/{key}"));
    }
    out.push("/users/0/lock_passwd".into());
    walk(&doc["batten"], "/batten".into(), &mut out);
    out.retain(|p| p != "/batten");
    out
}

/// The class of defect: a value batten enforces that it cannot read must be
/// refused (exit 65), never taken as "leave the image as it is". For every
/// enforced place and a set of wrong values, whatever the schema refuses,
/// batten refuses too.
#[test]
fn an_enforced_key_takes_no_value_the_schema_refuses() {
    let validator = schema();
    let base = doc(EVERY_ENFORCED_KEY);
    assert!(
        validator.is_valid(&base),
        "the base document is valid: {:?}",
        validator
            .iter_errors(&base)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    batten::input::load("base.yaml", EVERY_ENFORCED_KEY.as_bytes())
        .expect("batten takes the base document");
    let wrong: Vec<serde_json::Value> = serde_json::from_str(
        r#"[null, "maybe", "unchanged", "flase", "", true, 0, 2, -1, 70000, 1.5, [], {}, ["x"], {"x": 1}]"#,
    )
    .unwrap();
    let places = enforced_places(&base);
    assert!(places.len() > 30, "{places:?}");
    let mut tried = 0;
    let mut accepted = Vec::new();
    for place in &places {
        for value in &wrong {
            let mut d = base.clone();
            *d.pointer_mut(place).unwrap() = value.clone();
            if validator.is_valid(&d) {
                continue;
            }
            tried += 1;
            // JSON is YAML: the changed document, as text.
            let text = format!(
                "#cloud-config\n{}\n",
                serde_json::to_string_pretty(&d).unwrap()
            );
            if let Ok(loaded) = batten::input::load("changed.yaml", text.as_bytes()) {
                accepted.push(format!(
                    "{value} at {place} (warnings: {:?})",
                    loaded
                        .warnings
                        .iter()
                        .map(|w| w.message.clone())
                        .collect::<Vec<_>>()
                ));
            }
        }
    }
    assert!(
        accepted.is_empty(),
        "batten accepted values the schema refuses:\n{}",
        accepted.join("\n")
    );
    assert!(tried > 200, "only {tried} wrong values tried");
}
