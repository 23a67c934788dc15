//! `batten.assure`: the drift checks after the seal: their period, where
//! node_exporter reads their figures, and whether the timer repairs what
//! drifted in batten's own files.

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
                if let Some(dir) =
                    checked(c, v, &p, |s| grammar::absolute_path(s).map(str::to_string))
                {
                    a.textfile_dir = dir;
                }
            }
            "repair" => {
                if let Some(on) = boolean(c, v, &p) {
                    a.repair = on;
                }
            }
            _ => {} // each_entry hands over listed keys only
        }
    });
    a
}

#[cfg(test)]
mod tests {
    use super::super::tests::run;

    #[test]
    fn interval_dir_and_repair() {
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
            "{repair: maybe}",
            "{reapir: false}",
        ] {
            let (_, e, _) = run(&format!("batten:\n  assure: {bad}\n"));
            assert!(!e.is_empty(), "{bad}");
        }
        let (ud, e, _) = run("batten:\n  assure: {repair: true}\n");
        assert!(e.is_empty(), "{e:?}");
        assert!(ud.unwrap().batten.assure.repair);
    }
}
