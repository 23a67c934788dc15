//! `batten verify`: check the result live and report it; `--seal` then
//! switches the first boot off.

use clap::Args;

use super::{Format, RootArgs};
use crate::concerns::assure::baseline::Baseline;
use crate::concerns::assure::ruleset::Loaded;
use crate::exit::{Code, Failure};
use crate::pipeline::boot_status::{self, BootStatus};
use crate::pipeline::open_root;
use crate::state::{self, SealError};
use crate::verify::Status;

/// `batten verify [--root DIR] [--seal] [--format human|json]`
#[derive(Debug, Args)]
pub struct Verify {
    /// The system to verify.
    #[command(flatten)]
    pub root: RootArgs,
    /// Seal the instance when every check passes, and keep the report as
    /// the baseline drift checks compare with.
    #[arg(long, conflicts_with = "drift")]
    pub seal: bool,
    /// Compare with the sealed baseline and report drift: in the journal,
    /// node_exporter's textfile (/var/lib/prometheus/node-exporter/
    /// batten.prom) and `batten status`. Read-only; what batten-verify.timer
    /// runs. Exit 1 when something drifted.
    #[arg(long)]
    pub drift: bool,
    /// Output format: human lines or one JSON document.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

impl Verify {
    /// Verify, report, and seal when asked and everything passed.
    pub fn run(&self) -> Result<Code, Failure> {
        if self.drift {
            return super::drift::drift(&self.root, self.format);
        }
        verify(&self.root, self.seal, self.format)
    }
}

/// Verify `args`' root against the user-data its last run acted on.
fn verify(args: &RootArgs, seal: bool, format: Format) -> Result<Code, Failure> {
    let root = open_root(args)?;
    if seal && root.is_host() {
        // What the first boot's run left so as not to delay sshd: the
        // first boot's verify stage (`verify --seal`) does it; a plain
        // verify changes nothing.
        crate::host::after_sshd::run_pending(&crate::host::exec::System);
    }
    let (distro, user_data, report) = crate::pipeline::recorded::report(&root, args.family)?;
    // batten's rules as loaded: the seal keeps their digest for the drift
    // check, and the JSON report shows what a seal would keep; the human
    // report does not show them, so nft is not asked for it.
    let ruleset = (seal || matches!(format, Format::Json))
        .then(|| {
            crate::concerns::firewall::verify::loaded_listing(&crate::verify::Inputs {
                root: &root,
                distro: &distro,
                user_data: &user_data,
                runner: &crate::host::exec::System,
            })
        })
        .flatten()
        .and_then(Result::ok)
        .map(Loaded::of);
    match format {
        Format::Human => print!("{}", report.render()),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "ok": report.ok(),
                "checks": report.checks,
                "ruleset": ruleset,
            }))
            .unwrap_or_default()
        ),
    }
    if !seal {
        return Ok(if report.ok() {
            Code::Ok
        } else {
            Code::VerifyFailed
        });
    }
    let was_sealed = state::State::load(&root).is_ok_and(|s| s.sealed);
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| format!("{}: {}: {}", c.id, c.what, c.why))
        .collect();
    // A seed on the Pi's boot partition is watched after the seal.
    let card = crate::input::sources::find(&root, &crate::input::sources::Host::live())
        .ok()
        .flatten()
        .filter(|found| found.on_boot_partition())
        .map(|found| found.fingerprint());
    let watch = card.is_some();
    let sealed = if failed.is_empty() {
        state::seal(&root, card).map_err(|e| match e {
            SealError::StaticOnly(_) | SealError::CardNotApplied => {
                Failure::new(Code::VerifyFailed, e.to_string())
            }
            e => Failure::new(Code::ApplyFailed, e.to_string()),
        })
    } else if was_sealed {
        Err(Failure::new(
            Code::VerifyFailed,
            "verification failed on a sealed machine: batten does not run again by itself; fix what failed, or `batten rearm` makes the next boot run batten",
        ))
    } else {
        Err(Failure::new(
            Code::VerifyFailed,
            "not sealed: verification failed; the machine stays armed and batten runs at the next boot",
        ))
    };
    // The owner of a headless Pi reads the outcome on the card.
    let (word, errors) = match &sealed {
        Ok(_) => ("sealed", Vec::new()),
        Err(failure) if failed.is_empty() => ("not-sealed", vec![failure.message.clone()]),
        Err(_) => ("not-sealed", failed),
    };
    // The run's notes stay for the owner to read.
    let mut status = BootStatus::new(&root, "verify", word, errors);
    status.notes = boot_status::previous(&root)
        .map(|p| p.notes)
        .unwrap_or_default();
    boot_status::record(&root, &status);
    match sealed {
        Ok(instance) => {
            // What the drift checks compare with from now on.
            if let Err(e) = Baseline::of(&report, instance.clone(), ruleset).save(&root) {
                eprintln!(
                    "batten: sealed, but the baseline for drift checks could not be kept: {e}"
                );
            }
            let instance = instance.as_deref().unwrap_or("(unknown)");
            if watch {
                eprintln!(
                    "sealed instance {instance}: batten runs again only if the seed on the boot partition is edited (`batten rearm` undoes the seal)"
                );
            } else {
                eprintln!(
                    "sealed instance {instance}: batten will not run again for it (`batten rearm` undoes this)"
                );
            }
            Ok(Code::Ok)
        }
        // A failed check was reported above; it is exit 1, not an error.
        Err(failure) if !report.ok() => {
            eprintln!("batten: {failure}");
            Ok(Code::VerifyFailed)
        }
        Err(failure) => Err(failure),
    }
}
