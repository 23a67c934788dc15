//! The grammars of an ACME request's values: the domain a certificate is
//! asked for, the contact address and the directory URL. They reach
//! nginx's `server_name` and certbot's command line, so each admits only
//! the characters its kind of value needs.

use super::dns_label;

/// A DNS name a public certificate can be issued for: two or more labels
/// of letters, digits and `-`, no wildcard (HTTP-01 cannot prove one), no
/// trailing dot. Returned in lower case, as certificates and nginx treat
/// names without regard to case.
pub fn domain(s: &str) -> Result<String, String> {
    let wrong = || {
        format!(
            "{s:?} is not a domain a certificate can be issued for: write a full name such as panel.example.org (letters, digits and '-', no wildcard)"
        )
    };
    if s.len() > 253 || s.starts_with("*.") {
        return Err(wrong());
    }
    let labels: Vec<&str> = s.split('.').collect();
    let ok = labels.len() >= 2
        && labels.iter().all(|label| dns_label(label))
        && !labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(wrong())
    }
}

/// A contact address for the ACME account: `local@domain`, the local part
/// of letters, digits and `. _ % + -` (no quotes, spaces or other
/// characters a command line or a config file could read otherwise).
pub fn email(s: &str) -> Result<&str, String> {
    let wrong = |why: &str| format!("{s:?} is not an e-mail address batten takes: {why}");
    let (local, host) = s.split_once('@').ok_or_else(|| wrong("it has no '@'"))?;
    if local.is_empty()
        || local.len() > 64
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || local.starts_with('-')
        || !local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-'))
    {
        return Err(wrong(
            "before the '@' use only letters, digits and . _ % + -",
        ));
    }
    domain(host).map_err(|_| wrong("after the '@' write a domain such as example.org"))?;
    Ok(s)
}

/// An ACME directory URL: `https://`, a host name or address with an
/// optional port, and a path of plain characters (letters, digits and
/// `/ . _ ~ -`). No query, no user name, no plain HTTP: the directory is
/// where the account key's requests go.
pub fn directory_url(s: &str) -> Result<&str, String> {
    let wrong = |why: &str| format!("{s:?} is not an ACME directory URL batten takes: {why}");
    let rest = s
        .strip_prefix("https://")
        .ok_or_else(|| wrong("it must start with https://"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            host.parse::<std::net::Ipv4Addr>().is_ok()
                || (!host.is_empty() && host.split('.').all(dns_label))
        }
    };
    if !host_ok {
        return Err(wrong("its host is not a name or an address"));
    }
    if let Some(p) = port
        && !p.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(wrong("its port is not a number from 1 to 65535"));
    }
    if !path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '~' | '-'))
        || path.split('/').any(|c| c == "..")
    {
        return Err(wrong(
            "its path may hold only letters, digits and / . _ ~ - (no query)",
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert_eq!(domain("Panel.Example.org").unwrap(), "panel.example.org");
        assert!(domain("panel.batten.test").is_ok());
        for bad in [
            "localhost",
            "*.example.org",
            "a..b",
            "-a.example.org",
            "a.example.org.",
            "a b.example.org",
            "a.example.org;",
            "a.example.org\nssl off",
            "1.2.3.4",
            "",
        ] {
            assert!(domain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails() {
        assert!(email("ops+certs@example.org").is_ok());
        for bad in [
            "ops",
            "@example.org",
            "ops@localhost",
            "o ps@example.org",
            "\"ops\"@example.org",
            "ops@example.org --server x",
            "ops;rm@example.org",
            "ops@@example.org",
            ".ops@example.org",
            "-ops@example.org",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn directory_urls() {
        for good in [
            "https://acme-v02.api.letsencrypt.org/directory",
            "https://198.51.100.3:14000/dir",
            "https://[2001:db8::3]:14000/dir",
            "https://ca.internal",
        ] {
            assert!(directory_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://acme.example.org/directory",
            "https://user@acme.example.org/directory",
            "https://acme.example.org/directory?x=1",
            "https://acme.example.org:0/dir",
            "https://acme.example.org/dir ectory",
            "https://acme.example.org/../dir",
            "https://",
            "ftp://a.b/",
        ] {
            assert!(directory_url(bad).is_err(), "{bad:?}");
        }
    }
}
