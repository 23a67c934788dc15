//! The proxy's plan: nginx sites in front of the panels, their password
//! files and generated credentials, and nothing left of stale sites.

use super::htpasswd::{self, Credential};
use super::{acme, nginx, tls};
use crate::concerns::Planning;
use crate::host::daemon::Daemon;
use crate::host::distro::{Distro, Family};
use crate::host::root::{Owner, Root};
use crate::input::model::{Upstream, UserData, site_name};
use crate::plan::{Action, PlanError};

/// Where a distribution keeps nginx sites.
struct Layout {
    /// Directory of site files.
    sites: &'static str,
    /// Directory of enable links (Debian family), if any.
    enabled: Option<&'static str>,
    /// The http-level drop-in directory (for the websocket map).
    http_dropins: &'static str,
    /// Extension of site files.
    extension: &'static str,
    /// The group nginx's workers run as.
    group: &'static str,
}

fn layout(distro: &Distro) -> Layout {
    match distro.family {
        Family::Debian => Layout {
            sites: "/etc/nginx/sites-available",
            enabled: Some("/etc/nginx/sites-enabled"),
            http_dropins: "/etc/nginx/conf.d",
            extension: "",
            group: "www-data",
        },
        Family::Rhel => Layout {
            sites: "/etc/nginx/conf.d",
            enabled: None,
            http_dropins: "/etc/nginx/conf.d",
            extension: ".conf",
            group: "nginx",
        },
        Family::Alpine => Layout {
            sites: "/etc/nginx/http.d",
            enabled: None,
            http_dropins: "/etc/nginx/http.d",
            extension: ".conf",
            group: "nginx",
        },
    }
}

/// Validation knows only the SSH ports the user-data names; the image's
/// sshd_config may move sshd elsewhere, and nginx on that port (or a panel
/// bound there behind it) would lock the owner out.
fn refuse_ssh_ports(ud: &UserData, ssh_ports: &[u16]) -> Result<(), PlanError> {
    for (i, site) in ud.batten.proxy.iter().enumerate() {
        let upstream = match site.upstream {
            Upstream::Loopback { port, .. } => Some(port),
            Upstream::Unix { .. } => None,
        };
        // A TLS site asked for 80 serves HTTPS on 443 and redirects on 80.
        for (what, port) in [
            ("listen", Some(site.serving_port())),
            ("listen (its redirect from HTTP)", site.redirect_port()),
            ("upstream", upstream),
        ] {
            match port {
                Some(port) if ssh_ports.contains(&port) => {
                    return Err(PlanError::refused(format!(
                        "batten.proxy[{i}].{what}: port {port} is where sshd listens in this image (its sshd_config); pick another port for the proxy; nothing was changed"
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn write_if_changed(
    root: &Root,
    path: &str,
    contents: Vec<u8>,
    owner: Owner,
    secret: bool,
    why: &str,
) -> Result<Option<Action>, PlanError> {
    Action::write_if_changed(root, path, contents, owner, secret, why).map_err(PlanError::Root)
}

/// Plan the proxy: site files, enable links, htpasswd files, credentials,
/// the distribution's default site out of the way, then `nginx -t` and a
/// reload. `ssh_ports` are the ports sshd will listen on after this run,
/// the image's own included: a site there would take sshd's place.
pub fn plan(cx: &Planning, notes: &mut Vec<String>) -> Result<Vec<Action>, PlanError> {
    let (ud, root, distro, accounts) = (cx.user_data, cx.root, cx.distro, cx.accounts);
    let ssh_ports = cx.ssh_ports;
    refuse_ssh_ports(ud, ssh_ports)?;
    let nginx_installed = root.metadata("/etc/nginx/nginx.conf")?.is_some();
    if ud.batten.proxy.is_empty() {
        // Sites batten made for a proxy the user-data no longer lists go.
        let mut actions = if nginx_installed {
            stale_sites(root, &layout(distro), &[])?
        } else {
            Vec::new()
        };
        if !actions.is_empty() {
            actions.push(Action::CheckConfig(Daemon::Nginx));
            if root.is_host() {
                actions.push(Action::Reload {
                    unit: "nginx.service".into(),
                });
            }
        }
        actions.extend(acme::units::plan(root, distro.family, false, notes)?);
        return Ok(actions);
    }
    if !nginx_installed {
        return Err(PlanError::missing(
            "batten.proxy needs nginx, which is not installed in the root; install nginx in the image (the proxy must be in place before the network comes up); nothing was changed",
        ));
    }
    let l = layout(distro);
    let gid = accounts.group(l.group).map(|g| g.gid).ok_or_else(|| {
        PlanError::failed(format!("the group {} nginx runs as is not in /etc/group, so nginx could not read the password file; nothing was changed", l.group),
        )
    })?;
    let mut actions = Vec::new();
    let old_credentials = root
        .read_to_string(htpasswd::CREDENTIALS)?
        .map(|t| htpasswd::parse_credentials(&t))
        .unwrap_or_default();
    let mut credentials: Vec<Credential> = old_credentials.clone();
    let mut generated = Vec::new();
    let mut our_ports = Vec::new();

    let map_path = format!("{}/batten-websocket.conf", l.http_dropins);
    actions.extend(write_if_changed(
        root,
        &map_path,
        nginx::UPGRADE_MAP.as_bytes().to_vec(),
        Owner {
            uid: 0,
            gid: 0,
            mode: 0o644,
        },
        false,
        "websocket upgrades for the proxied panels",
    )?);

    for site in &ud.batten.proxy {
        let name = site_name(site);
        our_ports.extend(site.ports());
        actions.extend(tls::plan(root, site, &name, cx.hostname, notes)?);
        let htpasswd_path = format!("/etc/nginx/{name}.htpasswd");
        let existing = root.read_to_string(&htpasswd_path)?.unwrap_or_default();
        let current = htpasswd::parse(&existing);
        let mut entries = Vec::new();
        for user in &site.users {
            let hash = match &user.password_hash {
                Some(h) => h.clone(),
                None => {
                    let known = credentials
                        .iter()
                        .find(|c| c.site == name && c.user == user.name)
                        .map(|c| c.password.clone());
                    let password = match known {
                        Some(p) => p,
                        None => {
                            let p = htpasswd::random_password().map_err(PlanError::failed)?;
                            credentials.push(Credential {
                                site: name.clone(),
                                user: user.name.clone(),
                                password: p.clone(),
                            });
                            generated.push(format!("{name}: {}", user.name));
                            p
                        }
                    };
                    // Keep the hash already there when it still matches, so a
                    // second run changes nothing.
                    match current.iter().find(|(u, _)| *u == user.name) {
                        Some((_, h)) if crate::crypt::verifies(&password, h) => h.clone(),
                        _ => crate::crypt::sha512_crypt(&password).map_err(PlanError::failed)?,
                    }
                }
            };
            entries.push((user.name.clone(), hash));
        }
        let text = htpasswd::merged(&existing, &entries);
        actions.extend(write_if_changed(
            root,
            &htpasswd_path,
            text.into_bytes(),
            Owner {
                uid: 0,
                gid,
                mode: 0o640,
            },
            true,
            &format!("basic-auth users of {name}, readable by nginx only"),
        )?);
        let site_path = format!("{}/{name}{}", l.sites, l.extension);
        actions.extend(write_if_changed(
            root,
            &site_path,
            nginx::render(site, &htpasswd_path, tls::files(site, &name).as_ref()).into_bytes(),
            Owner {
                uid: 0,
                gid: 0,
                mode: 0o644,
            },
            false,
            &format!(
                "{name}: port {} behind basic auth{}",
                site.serving_port(),
                if site.tls.is_on() {
                    " over HTTPS"
                } else {
                    ", plain HTTP"
                }
            ),
        )?);
        if let Some(enabled) = l.enabled {
            let link = format!("{enabled}/{name}");
            if root.metadata(&link)?.is_none() {
                actions.push(Action::Symlink {
                    path: link,
                    target: site_path.clone(),
                    why: format!("enable {name}"),
                });
            }
        }
    }
    if credentials != old_credentials {
        // First: a password is on record before any htpasswd file lets it
        // in, so a run killed in between never leaves one nobody knows.
        actions.insert(
            0,
            Action::Write {
                path: htpasswd::CREDENTIALS.to_string(),
                contents: htpasswd::render_credentials(&credentials).into_bytes(),
                owner: crate::state::private_owner(0o600),
                before: root.read_with_owner(htpasswd::CREDENTIALS)?,
                secret: true,
                check: None,
                why: "generated proxy passwords, for root".to_string(),
            },
        );
    }
    if !generated.is_empty() {
        notes.push(format!(
            "new random passwords for {}: read them in {} (root only)",
            generated.join(", "),
            htpasswd::CREDENTIALS
        ));
    }
    let names: Vec<String> = ud.batten.proxy.iter().map(site_name).collect();
    actions.extend(stale_sites(root, &l, &names)?);
    actions.extend(default_site_out_of_the_way(root, &l, &our_ports, notes)?);
    if !actions.is_empty() {
        actions.push(Action::CheckConfig(Daemon::Nginx));
        if root.is_host() {
            actions.push(Action::Reload {
                unit: "nginx.service".into(),
            });
        }
    }
    let any_acme = ud
        .batten
        .proxy
        .iter()
        .any(|s| matches!(s.tls, crate::input::model::Tls::Acme(_)));
    actions.extend(acme::units::plan(root, distro.family, any_acme, notes)?);
    Ok(actions)
}

/// Site files, links and htpasswd files batten made for sites the
/// user-data no longer has (a renamed server_name, a changed port): left
/// in place they would go on proxying without anyone meaning them to.
fn stale_sites(root: &Root, l: &Layout, current: &[String]) -> Result<Vec<Action>, PlanError> {
    let mut actions = Vec::new();
    let ours = |n: &str| n.starts_with("batten-") && n != "batten-websocket.conf";
    let mut dirs = vec![l.sites];
    if let Some(enabled) = l.enabled {
        dirs.push(enabled);
    }
    for dir in dirs {
        for file in root.list_dir(dir)?.unwrap_or_default() {
            let name = file.strip_suffix(l.extension).unwrap_or(&file);
            if !l.extension.is_empty() && !file.ends_with(l.extension) {
                continue;
            }
            if ours(&file) && !current.iter().any(|c| c == name) {
                actions.push(Action::Remove {
                    path: format!("{dir}/{file}"),
                    why: format!("{name} is no longer in batten.proxy"),
                });
            }
        }
    }
    for file in root.list_dir("/etc/nginx")?.unwrap_or_default() {
        if let Some(name) = file.strip_suffix(".htpasswd")
            && ours(name)
            && !current.iter().any(|c| c == name)
        {
            actions.push(Action::Remove {
                path: format!("/etc/nginx/{file}"),
                why: format!("{name} is no longer in batten.proxy"),
            });
        }
    }
    // Its made key and certificate: nothing serves them any more.
    for file in root.list_dir(tls::DIR)?.unwrap_or_default() {
        if let Some(name) = file
            .strip_suffix(".crt")
            .or_else(|| file.strip_suffix(".key"))
            && ours(name)
            && !current.iter().any(|c| c == name)
        {
            actions.push(Action::Remove {
                path: format!("{}/{file}", tls::DIR),
                why: format!("{name} is no longer in batten.proxy"),
            });
        }
    }
    // Links first, then the files they point to.
    actions.sort_by_key(|a| match a {
        Action::Remove { path, .. } if path.contains("sites-enabled") => 0,
        _ => 1,
    });
    Ok(actions)
}

/// The distribution's default site answers on 80 without a password;
/// when a batten site listens there, disable the default (its link goes
/// to the backup) and say so.
fn default_site_out_of_the_way(
    root: &Root,
    l: &Layout,
    ports: &[u16],
    notes: &mut Vec<String>,
) -> Result<Vec<Action>, PlanError> {
    let Some(enabled) = l.enabled else {
        if ports.contains(&80) {
            notes.push("the distribution's nginx.conf may hold a default server on port 80; batten's site is chosen by server_name".into());
        }
        return Ok(Vec::new());
    };
    let link = format!("{enabled}/default");
    if root.metadata(&link)?.is_none() {
        return Ok(Vec::new());
    }
    let text = root
        .read_following_within(&link)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let clash: Vec<u16> = nginx::listen_ports(&text)
        .into_iter()
        .filter(|p| ports.contains(p))
        .collect();
    if clash.is_empty() {
        return Ok(Vec::new());
    }
    notes.push(format!(
        "the default nginx site also listens on port {}: batten disables it (the link is kept in the run's backup)",
        clash.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
    ));
    Ok(vec![Action::Remove {
        path: link,
        why: "the default site would answer without a password".into(),
    }])
}
