//! `batten.assure`: the drift checks after the seal: their period and
//! where node_exporter reads their figures. Repair by the timer is not
//! built yet, so asking for it is an error, not a silent no.

use super::checker::Checker;
use super::values::{boolean, checked, each_entry};
use crate::input::grammar;
use crate::input::model::Assure;
use crate::input::yaml::{Node, Value};

const ASSURE_KEYS: &[&str] = &["interval", "textfile_dir", "repair"];

/// `batten.assure: {interval, textfile_dir, repair}`.
pub(super) fn assure(c: &mut Checker, node: &Node, path: &str) -> Assure {
    let mut a = Assure::default();
    each_entry(c, node, path, ASSURE_KEYS, |c, key, v, p| {
        match key {
        "interval" => match &v.value {
            Value::Int(n) if (1..=1440).contains(n) => a.interval_minutes = *n as u32,
            _ => c.error(
                v.pos,
                &p,
                "the interval is a number of minutes from 1 to 1440 (a day)",
            ),
        },
        "textfile_dir" => {
            if let Some(dir) = checked(c, v, &p, |s| grammar::absolute_path(s).map(str::to_string))
            {
                a.textfile_dir = dir;
            }
        }
        "repair" if boolean(c, v, &p) == Some(true) => c.error(
            v.pos,
            &p,
            "repair by the drift timer is not built in this batten yet: drift is reported (journal, batten.prom, batten status), and `batten run --force` repairs it; remove repair or set it to false",
        ),
        _ => {} // each_entry hands over listed keys only
    }
    });
    a
}

#[cfg(test)]
mod tests {
    use super::super::tests::run;

    #[test]
    fn interval_dir_and_no_repair_yet() {
        let (ud, e, _) = run("batten:\n  assure: {interval: 15, textfile_dir: /srv/metrics}\n");
        let a = ud.unwrap().batten.assure;
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            (a.interval_minutes, a.textfile_dir.as_str()),
            (15, "/srv/metrics")
        );
        for bad in [
            "{interval: 0}",
            "{interval: 2000}",
            "{interval: 5m}",
            "{textfile_dir: metrics}",
            "{repair: true}",
            "{reapir: false}",
        ] {
            let (_, e, _) = run(&format!("batten:\n  assure: {bad}\n"));
            assert!(!e.is_empty(), "{bad}");
        }
        let (_, e, _) = run("batten:\n  assure: {repair: false}\n");
        assert!(e.is_empty(), "{e:?}");
    }
}
