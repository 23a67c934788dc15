//! Each site's certificate files: which ones nginx is given, and for
//! `tls: auto` and ACME sites the key and self-signed certificate batten
//! makes, once per machine, before nginx starts.
//!
//! A made pair lives in [`DIR`] under the site's name. An ACME site's
//! certificate, once a CA has issued it, is copied over the same two files
//! (`batten acme`), so nginx's configuration never changes and a reload
//! switches it. A pair already there is kept while it is valid for
//! [`KEEP_MARGIN`] more and, for `auto`, names what the site needs, so the
//! fingerprint an owner checked stays the same from run to run.

use log::warn;

use super::certificate::{self, Described};
use super::nginx::TlsFiles;
use crate::host::root::{Owner, Root};
use crate::input::model::{ProxySite, Tls};
use crate::plan::{Action, PlanError};
use crate::state::SiteCertificate;

/// Where made certificates and keys live (`install --generalize` empties it).
pub const DIR: &str = crate::state::MADE_CERTIFICATES;
/// Where the redirect server answers ACME HTTP-01 challenges from; nginx's
/// workers read it, so it is not under batten's private state.
pub const ACME_WEBROOT: &str = "/var/lib/batten-acme";
/// A certificate closer than this to its end is replaced (30 days).
pub const KEEP_MARGIN: u64 = 30 * 24 * 3600;

/// The made pair's paths for the site called `name`.
pub fn own_paths(name: &str) -> (String, String) {
    (format!("{DIR}/{name}.crt"), format!("{DIR}/{name}.key"))
}

/// The files nginx is given for `site`; `None` for `tls: off`.
pub fn files(site: &ProxySite, name: &str) -> Option<TlsFiles> {
    let (certificate, key) = own_paths(name);
    match &site.tls {
        Tls::Off => None,
        Tls::Files { certificate, key } => Some(TlsFiles {
            certificate: certificate.clone(),
            key: key.clone(),
            acme_webroot: None,
        }),
        Tls::Auto => Some(TlsFiles {
            certificate,
            key,
            acme_webroot: None,
        }),
        Tls::Acme(_) => Some(TlsFiles {
            certificate,
            key,
            acme_webroot: Some(ACME_WEBROOT.to_string()),
        }),
    }
}

/// The machine's names a made certificate carries: the host name the
/// instance's meta-data gives (`local-hostname`, which cloud-init sets as
/// the host name and a cloud's DNS knows), then the image's own
/// `/etc/hostname` when it differs; each only when a certificate can
/// carry it.
pub fn machine_names(root: &Root, from_meta_data: Option<&str>) -> Vec<String> {
    let image = root
        .read_to_string("/etc/hostname")
        .ok()
        .flatten()
        .and_then(|t| t.lines().next().map(str::to_string));
    let mut names: Vec<String> = Vec::new();
    for name in [from_meta_data.map(str::to_string), image]
        .into_iter()
        .flatten()
    {
        let name = name.trim().to_ascii_lowercase();
        let fits = crate::input::grammar::server_name(&name)
            .is_ok_and(|n| n != "_" && !n.starts_with("*."));
        if fits && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The names a made certificate is for: an ACME site's domain, the site's
/// server names (not `_`), then the machine's names ([`machine_names`]);
/// `localhost` when there is none at all.
pub fn names_for(site: &ProxySite, machine: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if let Tls::Acme(acme) = &site.tls {
        names.push(acme.domain.clone());
    }
    for n in site.server_names.iter().map(|n| n.to_ascii_lowercase()) {
        if n != "_" && !names.contains(&n) {
            names.push(n);
        }
    }
    for h in machine {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    if names.is_empty() {
        names.push("localhost".to_string());
    }
    names
}

/// The sites of `ud` that serve HTTPS, by name, with their files.
pub fn sites(ud: &crate::input::model::UserData) -> Vec<(String, TlsFiles)> {
    ud.batten
        .proxy
        .iter()
        .filter_map(|site| {
            let name = crate::input::model::site_name(site);
            files(site, &name).map(|f| (name, f))
        })
        .collect()
}

/// The certificates `sites` serve now, as the state records them; a
/// certificate that cannot be read is left out (nginx -t has refused it).
pub fn record(root: &Root, sites: &[(String, TlsFiles)]) -> Vec<SiteCertificate> {
    sites
        .iter()
        .filter_map(|(site, files)| {
            let d = read(root, &files.certificate)?;
            Some(SiteCertificate {
                site: site.clone(),
                path: files.certificate.clone(),
                fingerprint: d.fingerprint,
                pin: d.pin,
                names: d.names,
                not_after: d.not_after,
                self_signed: d.self_signed,
            })
        })
        .collect()
}

/// The block printed on the console when a run made or changed a site's
/// certificate, beside the SSH host keys' block, so the owner can check
/// the first HTTPS connection the same way.
pub fn fingerprint_block(certificates: &[SiteCertificate]) -> String {
    let mut out = String::from("-----BEGIN HTTPS CERTIFICATE FINGERPRINTS-----\n");
    for c in certificates {
        let kind = if c.self_signed {
            "self-signed"
        } else {
            "issued by a CA"
        };
        out.push_str(&format!(
            "{} SHA256 {} ({kind}, for {}; curl --pinnedpubkey {})\n",
            c.site,
            c.fingerprint,
            c.names.join(" "),
            c.pin
        ));
    }
    out.push_str("-----END HTTPS CERTIFICATE FINGERPRINTS-----\n");
    out
}

/// The certificate at `path` in the root, described; `None` when absent or
/// unreadable as one.
pub fn read(root: &Root, path: &str) -> Option<Described> {
    let text = root.read_to_string(path).ok()??;
    certificate::describe(&text).ok()
}

/// Whether the pair already in place serves `site` as it should: both
/// files there, and for `auto` a self-signed certificate for every name
/// wanted, valid for the margin. An ACME site keeps the CA's
/// certificate for its domain for as long as it is valid at all (renewing
/// it is certbot's job, within the last 30 days: a self-signed one in its
/// place would turn every browser away), and the self-signed one until
/// then while it is valid for the margin.
fn keep(root: &Root, site: &ProxySite, name: &str, names: &[String]) -> bool {
    let (certificate, key) = own_paths(name);
    let Some(d) = read(root, &certificate) else {
        return false;
    };
    if !matches!(root.metadata(&key), Ok(Some(_))) {
        return false;
    }
    let now = crate::state::now_secs();
    let for_the_margin = d.not_after >= now + KEEP_MARGIN;
    match &site.tls {
        // Every name wanted, maybe more: a later run that does not know
        // the meta-data's host name (a repair) keeps the fingerprint the
        // owner checked.
        Tls::Auto => d.self_signed && names.iter().all(|n| d.names.contains(n)) && for_the_margin,
        Tls::Acme(acme) if !d.self_signed => {
            d.names.first() == Some(&acme.domain) && d.not_after > now
        }
        Tls::Acme(acme) => d.names.first() == Some(&acme.domain) && for_the_margin,
        _ => for_the_margin,
    }
}

/// Plan the site's certificate: for `auto` and ACME, a key and a
/// self-signed certificate made unless a fitting pair is in place; for
/// `off`, a warning. The key is a secret: 0600 root, never shown in a diff.
pub fn plan(
    root: &Root,
    site: &ProxySite,
    name: &str,
    hostname: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<Vec<Action>, PlanError> {
    match &site.tls {
        Tls::Off => {
            let note = format!(
                "WARNING: {name} serves plain HTTP (tls: off): its password travels in clear text with every request"
            );
            warn!("{note}");
            notes.push(note);
            return Ok(Vec::new());
        }
        Tls::Files { .. } => return Ok(Vec::new()),
        Tls::Auto | Tls::Acme(_) => {}
    }
    let names = names_for(site, &machine_names(root, hostname));
    if keep(root, site, name, &names) {
        return Ok(Vec::new());
    }
    let made = certificate::self_signed(&names)
        .map_err(|e| PlanError::failed(format!("making {name}'s certificate: {e}")))?;
    let (certificate_path, key_path) = own_paths(name);
    let root_owned = |mode| Owner {
        uid: 0,
        gid: 0,
        mode,
    };
    let mut actions = Vec::new();
    actions.extend(Action::write_if_changed(
        root,
        &key_path,
        made.key_pem.into_bytes(),
        root_owned(0o600),
        true,
        &format!("{name}'s TLS key, made here (ECDSA P-256), root only"),
    )?);
    actions.extend(Action::write_if_changed(
        root,
        &certificate_path,
        made.certificate_pem.into_bytes(),
        root_owned(0o644),
        false,
        &format!("{name}'s self-signed certificate for {}", names.join(", ")),
    )?);
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;
    use crate::input::model::{Acme, ProxyUser, Upstream};

    fn site(tls: Tls) -> ProxySite {
        ProxySite {
            listen: 80,
            server_names: vec!["Panel.example.org".into(), "_".into()],
            upstream: Upstream::Loopback {
                address: "127.0.0.1".parse().unwrap(),
                port: 8080,
            },
            realm: "r".into(),
            users: vec![ProxyUser {
                name: "admin".into(),
                password_hash: None,
            }],
            tls,
            allow_from: vec![],
        }
    }

    fn acme() -> Tls {
        Tls::Acme(Acme::lets_encrypt("panel.batten.test"))
    }

    #[test]
    fn names_and_files_per_mode() {
        assert_eq!(
            names_for(&site(Tls::Auto), &["host1".to_string()]),
            ["panel.example.org", "host1"]
        );
        assert_eq!(
            names_for(&site(acme()), &[]),
            ["panel.batten.test", "panel.example.org"]
        );
        let mut bare = site(Tls::Auto);
        bare.server_names.clear();
        assert_eq!(names_for(&bare, &[]), ["localhost"]);
        assert_eq!(files(&site(Tls::Off), "s"), None);
        assert_eq!(
            files(&site(Tls::Auto), "batten-80").unwrap().certificate,
            "/etc/ssl/batten/batten-80.crt"
        );
        assert_eq!(
            files(&site(acme()), "s").unwrap().acme_webroot.as_deref(),
            Some(ACME_WEBROOT)
        );
    }

    #[test]
    fn a_pair_is_made_once_and_kept() {
        let (dir, root) = scratch_root(&[("/etc/hostname", "host1\n")]);
        let s = site(Tls::Auto);
        let actions = plan(&root, &s, "batten-80-panel", None, &mut Vec::new()).unwrap();
        assert_eq!(actions.len(), 2, "{actions:?}");
        for a in &actions {
            let Action::Write {
                path,
                contents,
                owner,
                secret,
                ..
            } = a
            else {
                panic!("{a:?}");
            };
            let p = dir.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, contents).unwrap();
            assert_eq!(*secret, path.ends_with(".key"), "{path}");
            assert_eq!(owner.mode, if *secret { 0o600 } else { 0o644 });
        }
        let d = read(&root, "/etc/ssl/batten/batten-80-panel.crt").unwrap();
        assert_eq!(d.names, ["panel.example.org", "host1"]);
        assert!(
            plan(&root, &s, "batten-80-panel", None, &mut Vec::new())
                .unwrap()
                .is_empty()
        );
        // The meta-data naming the same host keeps it; another host name
        // wants another certificate.
        assert!(
            plan(&root, &s, "batten-80-panel", Some("host1"), &mut Vec::new())
                .unwrap()
                .is_empty()
        );
        std::fs::write(dir.path().join("etc/hostname"), "host2\n").unwrap();
        assert_eq!(
            plan(&root, &s, "batten-80-panel", None, &mut Vec::new())
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn a_run_that_knows_fewer_names_keeps_the_certificate() {
        let (dir, root) = scratch_root(&[("/etc/hostname", "debian\n")]);
        let s = site(Tls::Auto);
        // The first boot: the meta-data named the host web1.
        for a in plan(&root, &s, "x", Some("web1"), &mut Vec::new()).unwrap() {
            let Action::Write { path, contents, .. } = a else {
                panic!("{a:?}");
            };
            let p = dir.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, contents).unwrap();
        }
        let names = read(&root, "/etc/ssl/batten/x.crt").unwrap().names;
        assert_eq!(names, ["panel.example.org", "web1", "debian"]);
        // A repair plans without the meta-data: the fingerprint stays.
        assert!(
            plan(&root, &s, "x", None, &mut Vec::new())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn off_warns_and_files_make_nothing() {
        let (_d, root) = scratch_root(&[]);
        let mut notes = Vec::new();
        assert!(
            plan(&root, &site(Tls::Off), "s", None, &mut notes)
                .unwrap()
                .is_empty()
        );
        assert!(
            notes[0].contains("password travels in clear text"),
            "{notes:?}"
        );
        let files = Tls::Files {
            certificate: "/etc/ssl/x.crt".into(),
            key: "/etc/ssl/x.key".into(),
        };
        assert!(
            plan(&root, &site(files), "s", None, &mut Vec::new())
                .unwrap()
                .is_empty()
        );
    }

    /// openssl in `dir`, for certificates batten does not make itself.
    fn openssl(dir: &std::path::Path, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl (scripts/test.sh installs it)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    #[test]
    fn a_cas_certificate_is_kept_to_its_end_a_self_signed_one_is_not() {
        let (dir, root) = scratch_root(&[]);
        let certs = dir.path().join("etc/ssl/batten");
        std::fs::create_dir_all(&certs).unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        std::fs::write(
            certs.join("san.ext"),
            "subjectAltName=DNS:panel.batten.test\n",
        )
        .unwrap();
        // A CA's certificate for the ACME domain with 10 days left: inside
        // certbot's renewal window, still what browsers trust.
        openssl(
            &certs,
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-subj",
                    "/CN=test CA",
                    "-days",
                    "90",
                ],
            ]
            .concat(),
        );
        openssl(
            &certs,
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "s.key",
                    "-out",
                    "s.csr",
                    "-subj",
                    "/CN=panel.batten.test",
                ],
            ]
            .concat(),
        );
        openssl(
            &certs,
            &[
                "x509",
                "-req",
                "-in",
                "s.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "10",
                "-extfile",
                "san.ext",
                "-out",
                "s.crt",
            ],
        );
        let d = read(&root, "/etc/ssl/batten/s.crt").unwrap();
        assert!(!d.self_signed && d.names == ["panel.batten.test"], "{d:?}");
        let kept = plan(&root, &site(acme()), "s", None, &mut Vec::new()).unwrap();
        assert_eq!(kept, Vec::new(), "the CA's certificate was replaced");
        // The same 10 days on a self-signed one: made again.
        openssl(
            &certs,
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "s.key",
                    "-out",
                    "s.crt",
                    "-subj",
                    "/CN=panel.batten.test",
                    "-addext",
                    "subjectAltName=DNS:panel.batten.test",
                    "-days",
                    "10",
                ],
            ]
            .concat(),
        );
        assert!(read(&root, "/etc/ssl/batten/s.crt").unwrap().self_signed);
        let made = plan(&root, &site(acme()), "s", None, &mut Vec::new()).unwrap();
        assert_eq!(made.len(), 2, "{made:?}");
    }

    #[test]
    fn the_meta_data_host_name_comes_first_and_only_names_a_certificate_carries() {
        let (_dir, root) = scratch_root(&[("/etc/hostname", "debian\n")]);
        assert_eq!(
            machine_names(&root, Some("Web1.example.net")),
            ["web1.example.net", "debian"]
        );
        assert_eq!(machine_names(&root, Some("debian")), ["debian"]);
        assert_eq!(machine_names(&root, Some("bad name;")), ["debian"]);
        let (_dir, bare) = scratch_root(&[]);
        assert_eq!(machine_names(&bare, None), Vec::<String>::new());
    }
}
