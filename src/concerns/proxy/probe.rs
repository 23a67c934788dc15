//! Requests verify sends to the proxy on loopback: plain HTTP with its own
//! few lines of client, HTTPS through curl with the site's key pinned (the
//! certificate itself is self-signed or from any CA: what matters is that
//! the site answers with the one batten put there).

use std::io::{Read, Write};
use std::time::Duration;

use crate::host::exec::{Call, ExecError, Runner};

/// One HTTP/1.0 request to `port` on 127.0.0.1; the status code and the
/// `Location` header, if any.
pub fn http(port: u16, host: &str, auth: Option<&str>) -> Result<(u16, Option<String>), String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("cannot connect: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut request = format!("GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: batten-verify\r\n");
    if let Some(a) = auth {
        use base64::Engine;
        request.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(a)
        ));
    }
    request.push_str("\r\n");
    conn.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if head.is_empty() => return Err(e.to_string()),
            Err(_) => break,
        }
    }
    parse_head(&String::from_utf8_lossy(&head))
}

/// The status code and `Location` of a response's head.
pub fn parse_head(text: &str) -> Result<(u16, Option<String>), String> {
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            format!(
                "not an HTTP answer: {:?}",
                text.lines().next().unwrap_or("")
            )
        })?;
    let location = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("location")
            .then(|| v.trim().to_string())
    });
    Ok((code, location))
}

/// What an HTTPS request found.
#[derive(Debug, PartialEq, Eq)]
pub enum Https {
    /// The site answered with this status code over TLS, with the pinned key.
    Status(u16),
    /// The TLS server's key is not the pinned one.
    OtherKey,
    /// curl is not installed, so HTTPS cannot be checked here.
    NoCurl,
}

/// One HTTPS request through curl to `port` on 127.0.0.1, for the name
/// `host`, pinning the server's key to `pin` (`sha256//...`). The password
/// goes to curl on its standard input, never on a command line other
/// users can read.
pub fn https(
    runner: &dyn Runner,
    port: u16,
    host: &str,
    pin: &str,
    auth: Option<(&str, &str)>,
) -> Result<Https, String> {
    let resolve = format!("{host}:{port}:127.0.0.1");
    let url = format!("https://{host}:{port}/");
    let config = match auth {
        Some((user, password)) => format!(
            "user = \"{}\"\n",
            curl_quoted(&format!("{user}:{password}"))
        ),
        None => String::new(),
    };
    let args = [
        "--silent",
        "--show-error",
        "--insecure",
        "--pinnedpubkey",
        pin,
        "--max-time",
        "10",
        "--output",
        "/dev/null",
        "--write-out",
        "%{http_code}",
        "--resolve",
        &resolve,
        "--config",
        "-",
        &url,
    ];
    let out = match runner.run(&Call {
        program: "curl",
        args: &args,
        stdin: Some(config.as_bytes()),
    }) {
        Ok(out) => out,
        Err(ExecError::Missing(_)) => return Ok(Https::NoCurl),
        Err(e) => return Err(e.to_string()),
    };
    if !out.success {
        // curl's exit 90: "SSL: public key does not match pinned public key".
        if out.stderr.contains("pinned public key") {
            return Ok(Https::OtherKey);
        }
        return Err(format!("curl: {}", out.stderr.trim()));
    }
    out.stdout
        .trim()
        .parse()
        .map(Https::Status)
        .map_err(|_| format!("curl printed no status code: {:?}", out.stdout))
}

/// A value inside double quotes in curl's config syntax.
fn curl_quoted(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::exec::fake::Fake;

    #[test]
    fn heads_are_read() {
        assert_eq!(
            parse_head(
                "HTTP/1.1 301 Moved Permanently\r\nServer: nginx\r\nLocation: https://a.b/\r\n\r\n"
            ),
            Ok((301, Some("https://a.b/".into())))
        );
        assert!(parse_head("").is_err());
    }

    #[test]
    fn the_password_goes_on_stdin_and_a_wrong_key_is_named() {
        let fake = Fake::new(|line| {
            assert!(!line.contains("s3"), "{line}");
            Ok("401".into())
        });
        assert_eq!(
            https(
                &fake,
                443,
                "panel.example.org",
                "sha256//x=",
                Some(("admin", "s3\"cret"))
            ),
            Ok(Https::Status(401))
        );
        let line = &fake.calls()[0];
        assert!(
            line.contains("--resolve panel.example.org:443:127.0.0.1"),
            "{line}"
        );
        assert!(line.contains("--pinnedpubkey sha256//x="), "{line}");
        assert_eq!(curl_quoted("a\"b\\c"), "a\\\"b\\\\c");
        let fake = Fake::new(|_| {
            Err("curl: (90) SSL: public key does not match pinned public key".into())
        });
        assert_eq!(
            https(&fake, 443, "h", "sha256//x=", None),
            Ok(Https::OtherKey)
        );
    }
}
