//! `batten verify`: check the result on the real daemons and the loaded
//! ruleset, not on the files batten wrote, and report it.
//!
//! Each concern checks its own part (`concerns::*::verify`); what is left
//! here looks across them: the sockets that listen, and whether the
//! firewall lets anyone reach them.

pub mod sockets;

pub use crate::concerns::report::{Check, Inputs, Report, Status};

/// Run every check that applies.
pub fn verify(inp: &Inputs) -> Report {
    let mut r = Report::default();
    for concern in crate::concerns::ALL {
        (concern.verify)(inp, &mut r);
    }
    if inp.root.is_host() {
        sockets(inp, &mut r);
    } else {
        r.add(
            "sockets",
            Status::Skip,
            "listening sockets",
            "--root: the image's sockets do not exist yet",
        );
    }
    r
}

/// Every listening socket, and what the firewall makes of it.
fn sockets(inp: &Inputs, r: &mut Report) {
    use crate::verify::sockets::Reach;
    let listeners = match crate::verify::sockets::listeners() {
        Ok(l) => l,
        Err(e) => {
            r.add("sockets", Status::Fail, "listening sockets", e);
            return;
        }
    };
    let ssh_ports =
        crate::concerns::ssh::listening_ports(inp.root, inp.user_data).unwrap_or_else(|_| vec![22]);
    let rules = crate::concerns::firewall::Ruleset::from_user_data(inp.user_data, ssh_ports);
    let firewall_on = inp.user_data.batten.firewall.enabled;
    for l in listeners {
        let who = l
            .process
            .as_ref()
            .map(|(pid, name)| format!("{name} (pid {pid})"))
            .unwrap_or_else(|| "unknown process".into());
        let id = format!("sockets.{}.{}", l.protocol, l.local);
        let what = format!("{} {} {}", l.protocol, l.local, who);
        let reach = crate::verify::sockets::reach(&l, &rules);
        let upstream = l.protocol == "tcp" && rules.upstream_ports.contains(&l.local.port());
        let (status, why) = match reach {
            Reach::LoopbackOnly => (Status::Pass, "loopback only".to_string()),
            _ if !firewall_on => (Status::Warn, "public, and the firewall is off".to_string()),
            Reach::Allowed => (Status::Pass, "public, allowed by the firewall".to_string()),
            Reach::AllowedFromSome => (Status::Pass, "public, allowed from listed sources only".to_string()),
            Reach::Dropped if upstream => (
                Status::Warn,
                "a proxy upstream listening publicly; the firewall drops it, but bind it to 127.0.0.1".to_string(),
            ),
            Reach::Dropped => (Status::Warn, "listens publicly, but the firewall drops it".to_string()),
        };
        r.add(&id, status, what, why);
    }
}
