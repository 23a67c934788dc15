//! One ACME round for one site: certbot asked, and the pair it holds
//! copied over the site's own when it differs.

use super::certbot;
use crate::concerns::proxy::certificate::{self, Described};
use crate::concerns::proxy::tls::{self, ACME_WEBROOT};
use crate::host::exec::{Call, ExecError, Runner};
use crate::host::root::{Owner, Root};
use crate::input::model::Acme;

/// How long certbot may take for one site (it retries the CA itself).
pub const CERTBOT_SECONDS: &str = "300";

/// What a round came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The CA's certificate is now the site's (new or renewed).
    Installed(Described),
    /// The site already serves the certificate certbot holds.
    Current(Described),
    /// No certificate from the CA this time; why, in certbot's words.
    Failed(String),
}

/// Ask certbot for the site called `name` and put what it holds in place.
/// The self-signed pair stays until certbot has a certificate.
pub fn obtain(runner: &dyn Runner, root: &Root, name: &str, acme: &Acme, force: bool) -> Outcome {
    let dir = Owner {
        uid: 0,
        gid: 0,
        mode: 0o755,
    };
    if let Err(e) = root.create_dir_all(ACME_WEBROOT, dir) {
        return Outcome::Failed(format!("cannot make {ACME_WEBROOT}: {e}"));
    }
    let mut words: Vec<String> = vec![CERTBOT_SECONDS.to_string()];
    if let Some(ca) = &acme.server_ca {
        // certbot's HTTP library trusts this file for the directory's HTTPS.
        words.extend(["env".to_string(), format!("REQUESTS_CA_BUNDLE={ca}")]);
    }
    words.push("certbot".to_string());
    words.extend(certbot::args(name, acme, ACME_WEBROOT, force));
    let args: Vec<&str> = words.iter().map(String::as_str).collect();
    let out = match runner.run(&Call {
        program: "timeout",
        args: &args,
        stdin: None,
    }) {
        Ok(out) => out,
        Err(ExecError::Missing(_)) => {
            return Outcome::Failed("timeout (coreutils) is not installed".into());
        }
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    if !out.success {
        if out.stderr.contains("No such file or directory") && out.stderr.contains("certbot") {
            return Outcome::Failed(
                "certbot is not installed: batten-acme.service installs it once the network is up (if that failed, `journalctl -u batten-acme.service` says why), or install it yourself (apt-get install certbot)".into(),
            );
        }
        return Outcome::Failed(certbot::reason(&out.stdout, &out.stderr));
    }
    install(root, name)
}

/// Copy certbot's chain and key for `name` over the site's own pair when
/// they differ: the key first (0600 root), then the certificate, each
/// replaced atomically, so nginx never reads a certificate without its key
/// for long and never a half-written file.
pub fn install(root: &Root, name: &str) -> Outcome {
    let (chain_path, key_path) = certbot::live_files(name);
    let read = |path: &str| match root.read_following_within(path) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(format!("certbot succeeded but {path} is missing")),
        Err(e) => Err(format!("{path}: {e}")),
    };
    let (chain, key) = match (read(&chain_path), read(&key_path)) {
        (Ok(c), Ok(k)) => (c, k),
        (Err(e), _) | (_, Err(e)) => return Outcome::Failed(e),
    };
    let described = match certificate::describe(&String::from_utf8_lossy(&chain)) {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(format!("{chain_path}: {e}")),
    };
    let (own_cert, own_key) = tls::own_paths(name);
    if matches!(root.read(&own_cert), Ok(Some(ref now)) if *now == chain) {
        return Outcome::Current(described);
    }
    let owner = |mode| Owner {
        uid: 0,
        gid: 0,
        mode,
    };
    for (path, bytes, mode) in [(&own_key, &key, 0o600), (&own_cert, &chain, 0o644)] {
        if let Err(e) = root.write_atomic(path, bytes, owner(mode), None) {
            return Outcome::Failed(format!("writing {path}: {e}"));
        }
    }
    Outcome::Installed(described)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::exec::fake::Fake;
    use crate::host::root::scratch_root;

    fn acme() -> Acme {
        Acme {
            server: "https://ca.batten.test:14000/dir".into(),
            server_ca: Some("/etc/ssl/test-ca.pem".into()),
            ..Acme::lets_encrypt("panel.batten.test")
        }
    }

    #[test]
    fn a_missing_certbot_is_named_with_where_to_look() {
        let (_d, root) = scratch_root(&[("/etc/ssl/batten/s.crt", "self-signed")]);
        // What timeout (coreutils) says when it cannot start certbot.
        let fake = Fake::new(|_| {
            Err("timeout: failed to run command 'certbot': No such file or directory".into())
        });
        let Outcome::Failed(said) = obtain(&fake, &root, "s", &acme(), false) else {
            panic!("a round without certbot succeeded");
        };
        assert!(
            said.starts_with("certbot is not installed")
                && said.contains("journalctl -u batten-acme.service"),
            "{said}"
        );
    }

    #[test]
    fn a_refusal_keeps_the_pair_and_says_why() {
        let (_d, root) = scratch_root(&[("/etc/ssl/batten/s.crt", "self-signed")]);
        let fake = Fake::new(|_| Err("Saving debug log to x\nSome challenges have failed.".into()));
        let outcome = obtain(&fake, &root, "s", &acme(), false);
        assert_eq!(
            outcome,
            Outcome::Failed("Some challenges have failed.".into())
        );
        let call = &fake.calls()[0];
        assert!(
            call.starts_with(
                "timeout 300 env REQUESTS_CA_BUNDLE=/etc/ssl/test-ca.pem certbot certonly --webroot"
            ),
            "{call}"
        );
        assert_eq!(
            root.read_to_string("/etc/ssl/batten/s.crt")
                .unwrap()
                .unwrap(),
            "self-signed"
        );
    }

    #[test]
    fn certbot_s_pair_replaces_the_self_signed_one_once() {
        let made = certificate::self_signed(&["panel.batten.test".to_string()]).unwrap();
        let (dir, root) = scratch_root(&[
            ("/etc/ssl/batten/s.crt", "self-signed"),
            ("/etc/ssl/batten/s.key", "old key"),
            (
                "/etc/letsencrypt/archive/s/fullchain1.pem",
                &made.certificate_pem,
            ),
            ("/etc/letsencrypt/archive/s/privkey1.pem", &made.key_pem),
        ]);
        let live = dir.path().join("etc/letsencrypt/live/s");
        std::fs::create_dir_all(&live).unwrap();
        std::os::unix::fs::symlink("../../archive/s/fullchain1.pem", live.join("fullchain.pem"))
            .unwrap();
        std::os::unix::fs::symlink("../../archive/s/privkey1.pem", live.join("privkey.pem"))
            .unwrap();
        let Outcome::Installed(d) = install(&root, "s") else {
            panic!("not installed");
        };
        assert_eq!(d.names, ["panel.batten.test"]);
        assert_eq!(
            root.read_to_string("/etc/ssl/batten/s.key")
                .unwrap()
                .unwrap(),
            made.key_pem
        );
        let (_, owner) = root
            .read_with_owner("/etc/ssl/batten/s.key")
            .unwrap()
            .unwrap();
        assert_eq!(owner.mode & 0o777, 0o600);
        assert!(matches!(install(&root, "s"), Outcome::Current(_)));
    }
}
