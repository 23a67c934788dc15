//! Assurance: batten's promise kept after the first boot. At the seal the
//! verify report is recorded as the baseline ([`baseline`]); from then on
//! `batten verify --drift` (run by `batten-verify.timer`, read-only) runs
//! the same checks and compares ([`drift`]): a check that got worse since
//! the seal has drifted, a failing check that did not exist then is newly
//! unsafe (a listener nobody asked for, say); batten's loaded ruleset is
//! held to the digest recorded at the seal ([`ruleset`]). What it finds goes where
//! fleets already look: the journal, one line per drifted item with a
//! stable message id ([`journal`]); node_exporter's textfile collector
//! ([`textfile`]); and `batten status --format json`.
//!
//! Nothing here changes the machine unless `batten.assure.repair` asks
//! the timer to re-apply batten's own files ([`repair`]); otherwise
//! `batten run --force` repairs by hand.

pub mod baseline;
pub mod drift;
pub mod journal;
pub mod plan;
pub mod repair;
pub mod ruleset;
pub mod textfile;
