//! The options in front of an authorized_keys line, read the way sshd reads
//! them (OpenSSH's `sshkey_advance_past_options` and `auth-options.c`).
//!
//! sshd skips a whole line whose options it cannot parse. Once batten has
//! switched password login off on the strength of that key, a skipped line
//! locks the owner out; a line read differently by batten and by sshd could
//! also hide a second key or drop a restriction. So batten accepts exactly
//! what sshd accepts, and refuses the rest with the reason.

/// The key types a line can start with when it has no options.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// How an option is written.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// A bare word.
    Flag,
    /// A bare word, also as `no-word`.
    Negatable,
    /// `name="value"`.
    Value,
}

/// The options sshd takes in authorized_keys, lower case (sshd ignores
/// case). `cert-authority` and `principals` are left out on purpose: they
/// make the line a certificate authority, which logs nobody in with the key
/// itself, so batten would count a key that opens nothing.
const OPTIONS: &[(&str, Form)] = &[
    ("agent-forwarding", Form::Negatable),
    ("port-forwarding", Form::Negatable),
    ("pty", Form::Negatable),
    ("user-rc", Form::Negatable),
    ("x11-forwarding", Form::Negatable),
    ("touch-required", Form::Negatable),
    ("verify-required", Form::Negatable),
    ("restrict", Form::Flag),
    ("command", Form::Value),
    ("environment", Form::Value),
    ("expiry-time", Form::Value),
    ("from", Form::Value),
    ("permitopen", Form::Value),
    ("permitlisten", Form::Value),
    ("tunnel", Form::Value),
];

/// Options sshd allows once per line.
const ONCE: &[&str] = &["command", "from"];

fn is_key_type(word: &str) -> bool {
    KEY_TYPES.contains(&word)
        || word
            .strip_suffix("-cert-v01@openssh.com")
            .is_some_and(|base| {
                KEY_TYPES
                    .iter()
                    .any(|t| t.trim_end_matches("@openssh.com") == base)
            })
}

/// Split an authorized_keys line into its options (empty when it has none)
/// and the key that follows, checking every option as sshd would.
pub fn split(line: &str) -> Result<(&str, &str), String> {
    let line = line.trim();
    if line.is_empty() {
        return Err("an SSH key cannot be empty; paste the whole line from the .pub file".into());
    }
    let first = line.split([' ', '\t']).next().unwrap_or_default();
    if is_key_type(first) {
        return Ok(("", line));
    }
    if ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|p| first.starts_with(p))
    {
        return Err(format!(
            "{first:?} is not a key type sshd takes; use an ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa key"
        ));
    }
    let i = options_end(line).map_err(|why| match why {
        OptionsEnd::OpenQuote => {
            "the key's options have a quote that is never closed, so sshd would skip this key"
                .to_string()
        }
        OptionsEnd::NothingAfter => format!(
            "{first:?} is not an SSH key type, and nothing follows it; paste the whole line from the .pub file"
        ),
    })?;
    let options = &line[..i];
    check(options)?;
    let key = line[i..].trim_start();
    let word = key.split([' ', '\t']).next().unwrap_or_default();
    if !is_key_type(word) {
        return Err(format!(
            "after the options {options:?} comes {word:?}, not a key type: options are separated by commas, never blanks, so sshd would skip this key"
        ));
    }
    Ok((options, key))
}

/// Where the key starts in a line already in an authorized_keys file, as
/// sshd finds it: at once when the line starts with a key type, else after
/// the options (the first blank outside quotes, `\"` skipped). `None` for
/// a line sshd would skip this way. Unlike [`split`], the options are not
/// judged: the line is not batten's.
pub fn key_start(line: &str) -> Option<&str> {
    let line = line.trim();
    let first = line.split([' ', '\t']).next().unwrap_or_default();
    if is_key_type(first) {
        return Some(line);
    }
    let end = options_end(line).ok()?;
    let key = line[end..].trim_start();
    is_key_type(key.split([' ', '\t']).next().unwrap_or_default()).then_some(key)
}

/// The end of the options at the start of `line`: the first blank outside
/// quotes, with `\"` skipped wherever it is (sshkey_advance_past_options).
/// Otherwise why not: a quote left open, or no blank after them.
fn options_end(line: &str) -> Result<usize, OptionsEnd> {
    let bytes = line.as_bytes();
    let (mut i, mut quoted) = (0, false);
    while i < bytes.len() && (quoted || !matches!(bytes[i], b' ' | b'\t')) {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'"') {
            i += 1;
        } else if bytes[i] == b'"' {
            quoted = !quoted;
        }
        i += 1;
    }
    if quoted {
        Err(OptionsEnd::OpenQuote)
    } else if i == bytes.len() {
        Err(OptionsEnd::NothingAfter)
    } else {
        Ok(i)
    }
}

/// Why a line's options have no end.
enum OptionsEnd {
    OpenQuote,
    NothingAfter,
}

/// Check an options string as `sshauthopt_parse` does.
fn check(options: &str) -> Result<(), String> {
    let mut rest = options;
    let mut seen: Vec<&str> = Vec::new();
    loop {
        let end = rest.find([',', '=']).unwrap_or(rest.len());
        let word = &rest[..end];
        let lower = word.to_ascii_lowercase();
        let known = OPTIONS.iter().find(|(name, form)| {
            lower == *name || (*form == Form::Negatable && lower.strip_prefix("no-") == Some(name))
        });
        let Some(&(name, form)) = known else {
            return Err(match lower.as_str() {
                "" => "the key's options have an empty entry (two commas, or a comma before a blank), so sshd would skip this key".into(),
                "cert-authority" | "principals" => format!(
                    "the key option {word:?} makes this line a certificate authority, which logs nobody in with the key itself; batten installs login keys only"
                ),
                _ => format!(
                    "{word:?} is not a key option sshd knows, so sshd would skip this key; see AUTHORIZED_KEYS FILE FORMAT in man sshd"
                ),
            });
        };
        rest = &rest[end..];
        if form == Form::Value {
            let Some(after) = rest.strip_prefix('=') else {
                return Err(format!(
                    "the key option {name} takes a value, like {name}=\"...\""
                ));
            };
            let (value, after) =
                dequote(after).map_err(|why| format!("the key option {name}: {why}"))?;
            check_value(name, &value)?;
            if ONCE.contains(&name) && seen.contains(&name) {
                return Err(format!(
                    "the key option {name} is given twice, so sshd would skip this key"
                ));
            }
            seen.push(name);
            rest = after;
        } else if rest.starts_with('=') {
            return Err(format!("the key option {word} takes no value"));
        }
        match rest.strip_prefix(',') {
            Some(next) => rest = next,
            None if rest.is_empty() => return Ok(()),
            None => {
                return Err(format!(
                    "after the key option {name} sshd wants a comma or the end of the options, not {:?}",
                    rest.chars().next().unwrap_or(' ')
                ));
            }
        }
    }
}

/// A double-quoted value, as sshd's `opt_dequote`: `\"` is a quote, the
/// next `"` ends it. Returns the value and what follows.
fn dequote(s: &str) -> Result<(String, &str), String> {
    let Some(body) = s.strip_prefix('"') else {
        return Err("the value must be in double quotes".into());
    };
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if body[i + 1..].starts_with('"') => {
                chars.next();
                value.push('"');
            }
            '"' => return Ok((value, &body[i + 1..])),
            c if c.is_control() => return Err("the value holds a control character".into()),
            c => value.push(c),
        }
    }
    Err("the value's quote is never closed".into())
}

/// The checks sshd makes of a value when it reads the line.
fn check_value(name: &str, value: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "the key option {name}=\"{value}\" {why}, so sshd would skip this key"
        ))
    };
    match name {
        "environment" => {
            let ok = value.split_once('=').is_some_and(|(var, _)| {
                !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if !ok {
                return bad("is not NAME=value");
            }
        }
        "expiry-time" => {
            let digits = value.strip_suffix('Z').unwrap_or(value);
            if !(matches!(digits.len(), 8 | 12 | 14) && digits.chars().all(|c| c.is_ascii_digit()))
            {
                return bad("is not a time like YYYYMMDD[HHMM[SS]]");
            }
        }
        "permitopen" | "permitlisten" => {
            let port = match value.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() => port,
                Some(_) => return bad("has no host before the port"),
                None if name == "permitlisten" => value,
                None => return bad("is not host:port"),
            };
            let ok = port == "*" || port.parse::<u16>().is_ok_and(|p| p > 0);
            if !ok {
                return bad("has no valid port (1-65535 or *)");
            }
        }
        "tunnel" if value != "any" && value.parse::<u32>().is_err() => {
            return bad("is not a tunnel number or any");
        }
        "command" | "from" if value.is_empty() => return bad("is empty"),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDi/c0qxbedyyZUrZ9WZmCza4aMNTGgltZLVpTBOs90R c";

    fn with(options: &str) -> String {
        format!("{options} {KEY}")
    }

    #[test]
    fn lines_sshd_reads_are_accepted_with_their_options_whole() {
        for options in [
            "no-pty",
            "restrict,pty",
            "NO-PTY,No-Agent-Forwarding",
            "command=\"echo hi there\"",
            "command=\"say \\\"hi\\\"\",no-pty",
            "from=\"203.0.113.0/24,2001:db8::/32\",no-port-forwarding",
            "environment=\"LANG=C.UTF-8\"",
            "expiry-time=\"20301231\"",
            "permitopen=\"127.0.0.1:8080\",permitlisten=\"8080\"",
            "tunnel=\"0\"",
            "no-touch-required,verify-required",
        ] {
            let line = with(options);
            assert_eq!(split(&line), Ok((options, KEY)), "{options}");
        }
        assert_eq!(split(KEY), Ok(("", KEY)));
        let cert = "ssh-ed25519-cert-v01@openssh.com AAAA c";
        assert_eq!(split(cert), Ok(("", cert)));
    }

    #[test]
    fn lines_sshd_would_skip_or_read_otherwise_are_refused() {
        for (options, why) in [
            ("zzz-bogus", "not a key option sshd knows"),
            ("command=\"true", "never closed"),
            ("command=\"echo \"hi\"\"", "wants a comma"),
            ("command=\"x\\\\\"", "never closed"),
            ("command=x", "double quotes"),
            ("command", "takes a value"),
            ("no-pty=\"x\"", "takes no value"),
            ("no-pty,,pty", "empty entry"),
            ("cert-authority", "certificate authority"),
            ("principals=\"a\"", "certificate authority"),
            ("command=\"a\",command=\"b\"", "given twice"),
            ("environment=\"=x\"", "NAME=value"),
            ("expiry-time=\"soon\"", "YYYYMMDD"),
            ("permitopen=\"8080\"", "host:port"),
            ("permitopen=\"h:99999\"", "valid port"),
            ("tunnel=\"x\"", "tunnel number"),
        ] {
            let err = split(&with(options)).unwrap_err();
            assert!(err.contains(why), "{options}: {err}");
        }
        // A restriction cut off by a blank would leave a key without it.
        let err = split(&format!("restrict from=\"10.0.0.0/8\" {KEY}")).unwrap_err();
        assert!(err.contains("never blanks"), "{err}");
        assert!(split("").unwrap_err().contains("empty"));
        // Lines already in a file: where sshd finds the key, or nothing.
        assert_eq!(key_start(KEY), Some(KEY));
        assert_eq!(key_start(&with("command=\"a \\\"b\\\"\"")), Some(KEY));
        assert_eq!(key_start(&with("command=\"x\\\\\"")), None);
        assert_eq!(key_start("# a comment"), None);
        assert!(split("from=\"x-cert-v01@y\"").is_err());
    }
}
