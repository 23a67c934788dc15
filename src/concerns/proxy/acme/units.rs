//! `batten-acme.service` and `batten-acme.timer`: the ACME round after the
//! network is up at boot, then twice a day. Written by the plan only when
//! a site asks for ACME (and removed when none does any more), since they
//! are per root, like `batten-updates.service`.
//!
//! - Ordered `After=network-online.target nginx.service`; nothing is
//!   ordered after it and it has no `Before=` or `Requires=` on ssh, so
//!   sshd and the panel start as if it did not exist; and without default
//!   dependencies, so `multi-user.target` does not wait for its round
//!   (certbot's install and the CA can take many minutes) either
//!   ([`crate::host::systemd::NOT_WAITED_FOR`]).
//! - certbot is installed first where the image lacks it (the
//!   distribution's package), so a domain in the user-data is enough; when
//!   that install fails the round still runs and records that certbot is
//!   missing, so status and verify say so, not only the journal.
//! - Bounded: `TimeoutStartSec` for the oneshot round (certbot itself is
//!   also run under `timeout`); a failed round is retried by the timer,
//!   and the self-signed certificate stays meanwhile.

use crate::host::distro::Family;
use crate::host::root::{Owner, Root};
use crate::plan::{Action, PlanError};

/// The service's name.
pub const SERVICE: &str = "batten-acme.service";
/// The timer's name.
pub const TIMER: &str = "batten-acme.timer";
/// Where the service is written.
pub const SERVICE_PATH: &str = "/etc/systemd/system/batten-acme.service";
/// Where the timer is written.
pub const TIMER_PATH: &str = "/etc/systemd/system/batten-acme.timer";
/// The service's enable link: a round at every boot, once the network is up.
pub const SERVICE_LINK: &str = "/etc/systemd/system/multi-user.target.wants/batten-acme.service";
/// The timer's enable link.
pub const TIMER_LINK: &str = "/etc/systemd/system/timers.target.wants/batten-acme.timer";

/// The command that installs certbot where it is missing; `None` where
/// batten knows no package for it.
pub fn install_command(family: Family) -> Option<&'static str> {
    match family {
        Family::Debian => Some(
            "command -v certbot >/dev/null || { apt-get update && apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 certbot; }",
        ),
        Family::Rhel => Some("command -v certbot >/dev/null || dnf -y install certbot"),
        Family::Alpine => None,
    }
}

/// The service's text.
pub fn service_text(family: Family) -> String {
    let install = install_command(family)
        // `-`: a failed install does not stop the round, which then records
        // that certbot is missing for `batten status` and verify.
        .map(|c| format!("ExecStartPre=-/bin/sh -c '{c}'\n"))
        .unwrap_or_default();
    let env = match family {
        Family::Debian => "Environment=DEBIAN_FRONTEND=noninteractive\n",
        _ => "",
    };
    format!(
        "# Written by batten (batten.proxy, tls.acme): obtains and renews the\n\
         # proxy's ACME certificates once the network is up. Nothing waits for\n\
         # this unit; the self-signed certificate serves until it succeeds.\n\
         [Unit]\n\
         Description=batten: ACME certificates for the proxy\n\
         {not_waited_for}\
         After=network-online.target nginx.service\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         {env}\
         {install}\
         ExecStart=/usr/local/sbin/batten acme\n\
         TimeoutStartSec=30min\n\
         StandardOutput=journal+console\n\
         StandardError=journal+console\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        not_waited_for = crate::host::systemd::NOT_WAITED_FOR,
    )
}

/// The timer's text: twice a day, spread over an hour so a fleet does not
/// knock on the CA at once.
pub fn timer_text() -> String {
    "# Written by batten (batten.proxy, tls.acme): renews the proxy's ACME\n\
     # certificates (certbot renews within 30 days of expiry).\n\
     [Unit]\n\
     Description=batten: renew the proxy's ACME certificates\n\
     \n\
     [Timer]\n\
     OnCalendar=*-*-* 00/12:00:00\n\
     RandomizedDelaySec=1h\n\
     Persistent=true\n\
     \n\
     [Install]\n\
     WantedBy=timers.target\n"
        .to_string()
}

/// Plan the units: written and enabled when `wanted` (a site asks for
/// ACME), removed when not; on the running system started at once.
pub fn plan(
    root: &Root,
    family: Family,
    wanted: bool,
    notes: &mut Vec<String>,
) -> Result<Vec<Action>, PlanError> {
    let mut actions = Vec::new();
    if !wanted {
        for path in [SERVICE_LINK, TIMER_LINK, SERVICE_PATH, TIMER_PATH] {
            if root.metadata(path)?.is_some() {
                actions.push(Action::Remove {
                    path: path.to_string(),
                    why: "no proxy site asks for ACME any more".into(),
                });
            }
        }
        return Ok(actions);
    }
    if family == Family::Alpine {
        notes.push("Alpine has no systemd units for batten: run `batten acme` from cron twice a day to obtain and renew the ACME certificates (the self-signed one serves until then)".into());
        return Ok(actions);
    }
    let owner = Owner {
        uid: 0,
        gid: 0,
        mode: 0o644,
    };
    let mut start = Vec::new();
    for (path, text, link, unit) in [
        (SERVICE_PATH, service_text(family), SERVICE_LINK, SERVICE),
        (TIMER_PATH, timer_text(), TIMER_LINK, TIMER),
    ] {
        let written = Action::write_if_changed(
            root,
            path,
            text.into_bytes(),
            owner,
            false,
            &format!("{unit}: ACME certificates after the network is up"),
        )?;
        let unlinked = root.metadata(link)?.is_none();
        if written.is_some() || unlinked {
            start.push(unit.to_string());
        }
        actions.extend(written);
        if unlinked {
            actions.push(Action::Symlink {
                path: link.to_string(),
                target: path.to_string(),
                why: format!("enable {unit}"),
            });
        }
    }
    if root.is_host() && !start.is_empty() {
        actions.push(Action::StartUnits {
            units: start,
            why: "ACME certificates from this boot on".into(),
        });
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    #[test]
    fn never_before_sshd_and_certbot_installed_where_missing() {
        let text = service_text(Family::Debian);
        assert!(
            text.contains("\nAfter=network-online.target nginx.service\n"),
            "{text}"
        );
        let settings: String = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(!settings.contains("ssh"), "{text}");
        crate::host::systemd::assert_not_waited_for(&text);
        assert!(text.contains("\nExecStartPre=-/bin/sh -c 'command -v certbot >/dev/null || { apt-get update && apt-get install"));
        assert!(text.contains("\nExecStart=/usr/local/sbin/batten acme\nTimeoutStartSec=30min\n"));
        assert!(service_text(Family::Rhel).contains("dnf -y install certbot'\n"));
        assert!(timer_text().contains("\nOnCalendar=*-*-* 00/12:00:00\nRandomizedDelaySec=1h\n"));
    }

    #[test]
    fn written_and_enabled_when_wanted_removed_when_not() {
        let (dir, root) = scratch_root(&[]);
        let actions = plan(&root, Family::Debian, true, &mut Vec::new()).unwrap();
        let links: Vec<&str> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Symlink { path, .. } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(links, [SERVICE_LINK, TIMER_LINK]);
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::StartUnits { .. })),
            "an image starts nothing"
        );
        for p in [SERVICE_PATH, SERVICE_LINK] {
            let p = dir.path().join(p.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let gone = plan(&root, Family::Debian, false, &mut Vec::new()).unwrap();
        assert_eq!(gone.len(), 2, "{gone:?}");
        let mut notes = Vec::new();
        assert!(
            plan(&root, Family::Alpine, true, &mut notes)
                .unwrap()
                .is_empty()
        );
        assert!(notes[0].contains("cron"), "{notes:?}");
    }
}
