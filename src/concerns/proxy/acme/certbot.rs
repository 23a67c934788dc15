//! certbot's command line for one site, and what its output says when it
//! failed. Every value in the command passed the ACME grammars
//! (`input::grammar::acme`) and goes as its own argument: no shell.

use crate::input::model::Acme;

/// Where certbot keeps the certificates it obtained (its default).
pub const LIVE: &str = "/etc/letsencrypt/live";

/// The words after `certbot` for the site called `name`. `force` renews
/// even when the certificate is not due.
pub fn args(name: &str, acme: &Acme, webroot: &str, force: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "certonly",
        "--webroot",
        "--webroot-path",
        webroot,
        "--domain",
        &acme.domain,
        "--cert-name",
        name,
        "--server",
        &acme.server,
        "--non-interactive",
        "--agree-tos",
        "--no-eff-email",
        "--keep-until-expiring",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match &acme.email {
        Some(email) => args.extend(["--email".to_string(), email.clone()]),
        None => args.push("--register-unsafely-without-email".to_string()),
    }
    if force {
        args.push("--force-renewal".to_string());
    }
    args
}

/// The files certbot keeps for the certificate named `name`: the chain and
/// its key.
pub fn live_files(name: &str) -> (String, String) {
    (
        format!("{LIVE}/{name}/fullchain.pem"),
        format!("{LIVE}/{name}/privkey.pem"),
    )
}

/// Why certbot failed, in its own words: the CA's `Type:` and `Detail:`
/// lines (on standard output) when there are any, else the last lines of
/// its error output.
pub fn reason(stdout: &str, stderr: &str) -> String {
    let detail: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .map(str::trim)
        .filter(|l| l.starts_with("Detail:") || l.starts_with("Type:"))
        .collect();
    if !detail.is_empty() {
        return detail.join("; ");
    }
    let last: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Saving debug log"))
        .collect();
    match last.len() {
        0 => "certbot failed without saying why (see /var/log/letsencrypt)".to_string(),
        n => last[n.saturating_sub(3)..].join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme(email: Option<&str>) -> Acme {
        Acme {
            email: email.map(str::to_string),
            ..Acme::lets_encrypt("panel.example.org")
        }
    }

    #[test]
    fn the_command_names_everything_and_asks_nothing() {
        let a = args(
            "batten-80-panel",
            &acme(Some("ops@example.org")),
            "/var/lib/batten-acme",
            false,
        );
        assert_eq!(
            a.join(" "),
            "certonly --webroot --webroot-path /var/lib/batten-acme --domain panel.example.org --cert-name batten-80-panel --server https://acme-v02.api.letsencrypt.org/directory --non-interactive --agree-tos --no-eff-email --keep-until-expiring --email ops@example.org"
        );
        let a = args("s", &acme(None), "/w", true);
        assert!(a.ends_with(&[
            "--register-unsafely-without-email".to_string(),
            "--force-renewal".to_string()
        ]));
    }

    #[test]
    fn the_ca_s_words_are_kept() {
        let stdout = "Certbot failed to authenticate some domains (authenticator: webroot).\n  Domain: panel.example.org\n  Type:   connection\n  Detail: 203.0.113.2: Fetching http://panel.example.org/.well-known/acme-challenge/x: Connection refused\n";
        assert_eq!(
            reason(
                stdout,
                "Saving debug log to /var/log/letsencrypt/letsencrypt.log\nSome challenges have failed."
            ),
            "Type:   connection; Detail: 203.0.113.2: Fetching http://panel.example.org/.well-known/acme-challenge/x: Connection refused"
        );
        assert_eq!(
            reason(
                "",
                "Saving debug log to x\nAn unexpected error occurred:\nrequests.exceptions.ConnectionError: refused"
            ),
            "An unexpected error occurred:; requests.exceptions.ConnectionError: refused"
        );
    }
}
