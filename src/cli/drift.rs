//! `batten verify --drift`: the sealed promise checked again, read-only,
//! and what drifted reported where fleets look.

use super::{Format, RootArgs};
use crate::concerns::assure::baseline::Baseline;
use crate::concerns::assure::drift::{self, Findings, Kind};
use crate::concerns::assure::{journal, textfile};
use crate::exit::{Code, Failure};
use crate::host::exec::System;
use crate::pipeline::boot_status::{self, BootStatus};
use crate::pipeline::open_root;
use crate::state::{self, State};

/// Check `args`' root against its sealed baseline.
pub fn drift(args: &RootArgs, format: Format) -> Result<Code, Failure> {
    let root = open_root(args)?;
    let Some(baseline) = Baseline::load(&root) else {
        println!(
            "batten verify --drift: this instance is not sealed yet (or was sealed before drift checks existed): nothing to compare with; the first boot's verify seals it, or `batten rearm` and a reboot"
        );
        return Ok(Code::Ok);
    };
    let now = state::now_utc();
    let before = Findings::load(&root);
    let (distro, user_data, mut report) =
        match crate::pipeline::recorded::report(&root, args.family) {
            Ok(checked) => checked,
            Err(failure) => {
                // `batten status` must not go on saying `done`: the last
                // findings stay, with why this check could not run.
                let mut findings = before.unwrap_or_default();
                findings.last_update = now;
                findings.errors = vec![format!(
                    "the drift check could not run: {}",
                    failure.message
                )];
                if let Err(e) = findings.save(&root) {
                    eprintln!("batten: the findings could not be kept for `batten status`: {e}");
                }
                return Err(failure);
            }
        };
    let inputs = crate::verify::Inputs {
        root: &root,
        distro: &distro,
        user_data: &user_data,
        runner: &System,
    };
    add_ruleset(&mut report, &inputs, &baseline);
    let sealed = baseline.sealed_checks();
    let mut errors = Vec::new();
    let mut items = drift::compare(&sealed, &report.checks, before.as_ref(), &now);
    let mut repair_tried = Vec::new();
    if user_data.batten.assure.repair {
        use crate::concerns::assure::repair::{on_firewall, tried_key, untried};
        let tried_before = before
            .as_ref()
            .map(|f| f.repair_tried.clone())
            .unwrap_or_default();
        let fresh = untried(&items, &tried_before);
        if !fresh.is_empty() {
            let firewall_drifted = fresh.iter().any(|i| on_firewall(&i.id));
            match repair(args, &root, &baseline, firewall_drifted) {
                Ok(said) => {
                    let message = format!("batten drift: repair: {said}");
                    eprintln!("{message}");
                    if root.is_host() {
                        journal::send(5, journal::REPAIRED, &message, &[]);
                    }
                }
                Err(e) => {
                    eprintln!("batten drift: repair failed: {e}");
                    errors.push(format!("the drift check's repair failed: {e}"));
                }
            }
            // What is left after the repair is what gets reported.
            report = crate::verify::verify(&inputs);
            add_ruleset(&mut report, &inputs, &baseline);
            items = drift::compare(&sealed, &report.checks, before.as_ref(), &now);
        }
        // Every item still there was tried (now or before): the next
        // period reports it and leaves it.
        repair_tried = items.iter().map(tried_key).collect();
    }
    for item in &items {
        let kind = match item.kind {
            Kind::Drifted => "drifted",
            Kind::NewlyUnsafe => "newly unsafe",
        };
        let message = format!(
            "batten drift: {} {kind} since {}: {}: {}{}",
            item.id,
            item.since,
            item.what,
            item.now,
            item.was
                .as_deref()
                .map(|w| format!(" (at the seal: {w})"))
                .unwrap_or_default()
        );
        if root.is_host() {
            journal::send(4, journal::DRIFTED, &message, &[("BATTEN_CHECK", &item.id)]);
        } else {
            eprintln!("{message}");
        }
    }
    let summary = if items.is_empty() {
        format!(
            "batten drift: nothing drifted since the seal ({} checks)",
            report.checks.len()
        )
    } else {
        format!(
            "batten drift: {} item(s) drifted since the seal; `batten run --force` re-applies the sealed user-data",
            items.len()
        )
    };
    if root.is_host() {
        let priority = if items.is_empty() { 6 } else { 4 };
        journal::send(priority, journal::SUMMARY, &summary, &[]);
    }
    let st = State::load(&root).unwrap_or_default();
    let drifted: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let text = textfile::render(&textfile::Figures {
        checks: &report.checks,
        drifted: &drifted,
        at: state::now_secs(),
        instance_id: baseline.instance_id.as_deref(),
        default_passwords_locked: st.default_passwords_locked.len(),
    });
    if let Err(e) = textfile::write(&root, &user_data.batten.assure.textfile_dir, &text) {
        eprintln!("batten: the textfile for node_exporter could not be written: {e}");
    }
    // A headless Pi's owner reads the same on the card (written only when
    // its news changes: FAT is best written seldom).
    if crate::input::pi_os::boot_partition(&root).is_some() {
        let errors = items
            .iter()
            .map(|i| format!("drift: {}: {} (since {})", i.id, i.now, i.since))
            .collect();
        let word = if items.is_empty() {
            "sealed"
        } else {
            "degraded"
        };
        let mut status = BootStatus::new(&root, "drift", word, errors);
        status.instance_id = baseline.instance_id.clone();
        status.notes = boot_status::previous(&root)
            .map(|p| p.notes)
            .unwrap_or_default();
        boot_status::record(&root, &status);
    }
    let findings = Findings {
        last_update: now,
        items,
        repair_tried,
        errors,
    };
    if let Err(e) = findings.save(&root) {
        eprintln!("batten: the findings could not be kept for `batten status`: {e}");
    }
    match format {
        Format::Human => {
            for item in &findings.items {
                println!(
                    "DRIFT {} ({:?}, since {}): {}",
                    item.id, item.kind, item.since, item.now
                );
            }
            println!("{summary}");
        }
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&findings).unwrap_or_default()
        ),
    }
    Ok(if findings.items.is_empty() {
        Code::Ok
    } else {
        Code::VerifyFailed
    })
}

/// The loaded ruleset held to the seal's digest, as one more check, when
/// the seal recorded one and batten's rules are there to read (live, the
/// firewall on).
fn add_ruleset(
    report: &mut crate::verify::Report,
    inputs: &crate::verify::Inputs,
    baseline: &Baseline,
) {
    use crate::concerns::assure::ruleset::{Loaded, check_now};
    let Some(sealed) = &baseline.ruleset else {
        return;
    };
    if let Some(now) = crate::concerns::firewall::verify::loaded_listing(inputs) {
        report.checks.push(check_now(sealed, now.map(Loaded::of)));
    }
}

/// What a repair plans from: the sealed copy of the user-data and the
/// sealed instance-id as meta-data, both in memory (never a file in /tmp).
fn repair_source(user_data: Vec<u8>, instance_id: Option<&str>) -> crate::input::sources::Found {
    crate::input::sources::Found {
        source: format!("{} (repair by the drift check)", state::USER_DATA_COPY),
        user_data_name: state::USER_DATA_COPY.to_string(),
        user_data,
        // JSON, which meta-data's YAML reads too: the id quoted whatever
        // it holds. With none recorded, the root's own id is used.
        meta_data: instance_id.map(|id| {
            (
                "meta-data (the sealed instance-id)".to_string(),
                serde_json::json!({ "instance-id": id })
                    .to_string()
                    .into_bytes(),
            )
        }),
        platform: "unknown",
        in_root: None,
    }
}

/// Re-apply the sealed user-data's steps on batten's own files
/// (`concerns::assure::repair`), as a recorded run of the same instance;
/// what it says it did and left.
fn repair(
    args: &RootArgs,
    root: &crate::host::root::Root,
    baseline: &Baseline,
    firewall_drifted: bool,
) -> Result<String, Failure> {
    use crate::pipeline::run::{Started, carry_out};
    use crate::pipeline::{Prepare, Purpose, prepare};
    // The same instance: its id as the seal recorded it, so the repair
    // never reads as a new machine. The meta-data stays in memory: a file
    // with a predictable name in /tmp could be a link planted by another
    // user (safety rule 4), and the user-data copy is read through the
    // root's handles, which refuse links.
    let user_data = root
        .read(state::USER_DATA_COPY)
        .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?
        .ok_or_else(|| {
            Failure::new(
                Code::ApplyFailed,
                format!(
                    "{} is missing: there is no sealed user-data to re-apply",
                    state::USER_DATA_COPY
                ),
            )
        })?;
    let found = repair_source(user_data, baseline.instance_id.as_deref());
    let source = crate::pipeline::options::SourceArgs {
        user_data: None,
        meta_data: None,
    };
    let prepared = prepare(args, &source, Purpose::Run { force: true }, Some(found));
    let Prepare::Ready(mut prepared) = prepared? else {
        return Ok("nothing to re-apply".into());
    };
    let (kept, left) = crate::concerns::assure::repair::split(
        std::mem::take(&mut prepared.plan.actions),
        firewall_drifted,
    );
    let left = if left.is_empty() {
        String::new()
    } else {
        format!("; left as they are (not batten's): {}", left.join(", "))
    };
    if kept.is_empty() {
        return Ok(format!("none of batten's own files drifted{left}"));
    }
    let n = kept.len();
    prepared.plan.actions = kept;
    let ran = carry_out(*prepared, Started::now(), true)?;
    Ok(format!(
        "re-applied {n} step(s) on batten's own files (run {}){left}",
        ran.run_id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repair_passes_the_sealed_instance_id_in_memory() {
        let found = repair_source(Vec::new(), Some("iid-drift"));
        let (name, bytes) = found.meta_data.unwrap();
        assert_eq!(
            crate::input::meta::parse(&name, &bytes)
                .unwrap()
                .instance_id
                .as_deref(),
            Some("iid-drift")
        );
        assert!(repair_source(Vec::new(), None).meta_data.is_none());
    }
}
