//! The drift timer's period from the user-data (`batten.assure.interval`):
//! a drop-in for `batten-verify.timer`, or none for the default 5 minutes;
//! and the check that the timer is there to watch.

use crate::concerns::report::{Inputs, Report, Status};
use crate::host::root::{Owner, Root};
use crate::input::model::{DEFAULT_INTERVAL, UserData};
use crate::plan::{Action, PlanError};

/// The drop-in that sets another period.
pub const DROPIN: &str = "/etc/systemd/system/batten-verify.timer.d/60-batten-interval.conf";
/// The timer's enable link (`install` makes it, the seal keeps it).
pub const TIMER_LINK: &str = "/etc/systemd/system/timers.target.wants/batten-verify.timer";

/// The drop-in's text for `minutes`.
pub fn dropin_text(minutes: u32) -> String {
    format!(
        "# Written by batten (batten.assure.interval): the drift check every {minutes} min.\n\
         [Timer]\n\
         OnUnitActiveSec=\n\
         OnUnitActiveSec={minutes}min\n"
    )
}

/// The timer itself, as `install` puts it in.
pub const TIMER_UNIT: &str = "/etc/systemd/system/batten-verify.timer";

/// The timer's period: a drop-in when the user-data asks for another
/// than the default, none otherwise. On the running system a changed
/// drop-in is followed by a daemon-reload and a restart of the timer
/// where it runs: systemd reads a drop-in only when it reloads, so the
/// new period would otherwise wait for the next boot. Never for `--root`.
pub fn plan(ud: &UserData, root: &Root) -> Result<Vec<Action>, PlanError> {
    let live = root.is_host() && matches!(root.metadata(TIMER_UNIT), Ok(Some(_)));
    plan_for(ud, root, live)
}

/// [`plan`], with whether the timer runs here (`live`) decided by the
/// caller, so the restart can be tested without the running system.
fn plan_for(ud: &UserData, root: &Root, live: bool) -> Result<Vec<Action>, PlanError> {
    let minutes = ud.batten.assure.interval_minutes;
    let mut actions: Vec<Action> = if minutes == DEFAULT_INTERVAL {
        match root.metadata(DROPIN)? {
            Some(_) => vec![Action::Remove {
                path: DROPIN.to_string(),
                why: "the drift check runs every 5 minutes again".into(),
            }],
            None => Vec::new(),
        }
    } else {
        Action::write_if_changed(
            root,
            DROPIN,
            dropin_text(minutes).into_bytes(),
            Owner {
                uid: 0,
                gid: 0,
                mode: 0o644,
            },
            false,
            &format!("the drift check every {minutes} minutes"),
        )?
        .into_iter()
        .collect()
    };
    if live && !actions.is_empty() {
        actions.push(Action::RestartUnits {
            units: vec!["batten-verify.timer".to_string()],
            why: format!(
                "the drift check every {minutes} minutes from now on, not from the next boot"
            ),
        });
    }
    Ok(actions)
}

/// Whether the drift timer is enabled (where batten is installed: a root
/// made by `batten run` alone has no units).
pub fn verify(inp: &Inputs, r: &mut Report) {
    if !matches!(inp.root.metadata(crate::state::BINARY_PATH), Ok(Some(_))) {
        return;
    }
    let (status, why) = match inp.root.metadata(TIMER_LINK) {
        Ok(Some(_)) => (
            Status::Pass,
            format!(
                "enabled: drift checks every {} min after the seal",
                inp.user_data.batten.assure.interval_minutes
            ),
        ),
        Ok(None) => (
            Status::Warn,
            "not enabled: nobody is told if the hardening drifts; `batten install` enables it"
                .to_string(),
        ),
        Err(e) => (Status::Fail, e.to_string()),
    };
    r.add("assure.timer", status, "batten-verify.timer", why);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    #[test]
    fn another_period_is_a_dropin_and_the_default_none() {
        let (_d, root) = scratch_root(&[]);
        let ud = |t: &str| crate::input::load("u", t.as_bytes()).unwrap().user_data;
        assert!(plan(&ud("#cloud-config\n"), &root).unwrap().is_empty());
        let actions = plan(
            &ud("#cloud-config\nbatten:\n  assure: {interval: 15}\n"),
            &root,
        )
        .unwrap();
        let Some(Action::Write { path, contents, .. }) = actions.first() else {
            panic!("{actions:?}");
        };
        assert_eq!(path, DROPIN);
        assert!(
            String::from_utf8_lossy(contents)
                .ends_with("[Timer]\nOnUnitActiveSec=\nOnUnitActiveSec=15min\n")
        );
        // An image (--root): the drop-in alone; its first boot reads it.
        assert_eq!(actions.len(), 1, "{actions:?}");
    }

    #[test]
    fn a_changed_period_reloads_systemd_and_restarts_the_running_timer() {
        let (_d, root) = scratch_root(&[]);
        let ud = |t: &str| crate::input::load("u", t.as_bytes()).unwrap().user_data;
        let fifteen = ud("#cloud-config\nbatten:\n  assure: {interval: 15}\n");
        let actions = plan_for(&fifteen, &root, true).unwrap();
        assert!(
            matches!(actions.as_slice(), [Action::Write { .. }, Action::RestartUnits { units, .. }] if units == &["batten-verify.timer"]),
            "{actions:?}"
        );
        // Unchanged: nothing to reload.
        let (_d, root) = scratch_root(&[(DROPIN, &dropin_text(15))]);
        assert!(plan_for(&fifteen, &root, true).unwrap().is_empty());
        // Back to the default: the drop-in goes, and the timer is told.
        let actions = plan_for(&ud("#cloud-config\n"), &root, true).unwrap();
        assert!(
            matches!(
                actions.as_slice(),
                [Action::Remove { .. }, Action::RestartUnits { .. }]
            ),
            "{actions:?}"
        );
    }
}
