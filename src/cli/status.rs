//! `batten status`: batten's state, for people and for scripts.

use clap::Args;
use serde::Serialize;

use super::{Format, RootArgs};
use crate::exit::{Code, Failure};
use crate::host::distro::Distro;
use crate::host::root::Backup;
use crate::input::meta;
use crate::input::sources::{self, Host, InstanceId};
use crate::pipeline::open_root;
use crate::state::{METADATA_FAILURE, RunRecord, State};

/// `batten status [--root DIR] [--format human|json]`
#[derive(Debug, Args)]
pub struct Status {
    /// The system to report on.
    #[command(flatten)]
    pub root: RootArgs,
    /// Output format: human lines or one JSON document.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

impl Status {
    /// Print the state.
    pub fn run(&self) -> Result<Code, Failure> {
        status(&self.root, self.format)
    }
}

#[derive(Serialize)]
struct StatusReport {
    /// One word, as cloud-init's `status --format json` has it: `running`
    /// (armed: batten runs, or will at the next boot), `done` (sealed, and
    /// the last drift check found nothing), `degraded` (sealed, and
    /// something drifted: see `recoverable_errors`), `error` (the last run
    /// failed, sealed or not, or the last drift check could not run or its
    /// repair failed: see `errors`), `disabled` (batten is not installed
    /// in the root).
    status: &'static str,
    /// What went wrong: the last run, when it failed; the last drift
    /// check, when it could not run or its repair failed.
    errors: Vec<String>,
    /// What drifted since the seal, with the evidence.
    recoverable_errors: Vec<String>,
    /// When batten last looked: the last drift check, else the last run.
    last_update: Option<String>,
    root: String,
    distro: Option<Distro>,
    distro_error: Option<String>,
    user_data: Option<String>,
    user_data_source: Option<String>,
    instance_id: Option<InstanceId>,
    sealed: bool,
    /// Sealed, with a seed on the boot partition that runs batten again
    /// when edited.
    watching_card: bool,
    last_run: Option<RunRecord>,
    /// Generated proxy passwords (root only), when there are any.
    credentials: Option<String>,
    /// Where the last run kept the files it replaced.
    backups: Option<String>,
    /// The cloud provider this machine looks like, and why (live only).
    metadata_provider: Option<String>,
    /// Why the metadata service gave nothing on this boot, if it did not.
    metadata_failure: Option<String>,
    /// Automatic updates: the tool installed, or how batten-updates.service
    /// is doing at installing it (its state, live).
    updates: Option<String>,
    /// Checks the image build could only make statically; the first
    /// boot's verify makes them live before the seal.
    static_only: Vec<String>,
    /// Accounts whose known default password batten locked.
    default_passwords_locked: Vec<crate::state::LockedDefault>,
    /// The certificates the proxy's HTTPS sites serve: what to check the
    /// first connection against.
    certificates: Vec<crate::state::SiteCertificate>,
    /// How the last ACME round of each ACME site went.
    acme: Vec<crate::state::AcmeRecord>,
}

/// Gather the state of `args`' root and print it in `format`.
fn status(args: &RootArgs, format: Format) -> Result<Code, Failure> {
    let root = open_root(args)?;
    let host = Host::live();
    let state = State::load(&root).map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
    let (distro, distro_error) = match Distro::detect(&root, args.family) {
        Ok(d) => (Some(d), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let found = sources::find(&root, &host)
        .map_err(|e| Failure::new(Code::InvalidUserData, e.to_string()))?;
    let meta_id = found
        .as_ref()
        .and_then(|f| f.meta_data.as_ref())
        .and_then(|(name, bytes)| meta::parse(name, bytes).ok())
        .and_then(|m| m.instance_id);
    let cmdline = sources::cmdline_for(&root, &host);
    let updates = distro
        .as_ref()
        .map(|d| crate::concerns::updates::verify::summary(&root, d, &crate::host::exec::System));
    let drift = crate::concerns::assure::drift::Findings::load(&root);
    let installed = root
        .metadata(crate::state::BINARY_PATH)
        .ok()
        .flatten()
        .is_some()
        || !state.runs.is_empty();
    let failed_run = state.runs.last().filter(|r| r.outcome == "failed");
    let mut errors: Vec<String> = failed_run
        .map(|r| {
            let failed: Vec<String> = r
                .steps
                .iter()
                .filter(|s| !s.ok)
                .map(|s| format!("run {}: {} failed", r.id, s.what))
                .collect();
            if failed.is_empty() {
                vec![format!("run {} failed (see its journal)", r.id)]
            } else {
                failed
            }
        })
        .unwrap_or_default();
    // After the seal the drift check is what looks: when it could not
    // run, nobody knows the machine is as sealed.
    if state.sealed {
        errors.extend(drift.iter().flat_map(|f| f.errors.iter().cloned()));
    }
    let recoverable_errors: Vec<String> = drift
        .iter()
        .filter(|_| state.sealed)
        .flat_map(|f| &f.items)
        .map(|i| format!("{}: {} (since {})", i.id, i.now, i.since))
        .collect();
    let word = if !installed {
        "disabled"
    } else if !errors.is_empty() {
        "error"
    } else if !state.sealed {
        "running"
    } else if recoverable_errors.is_empty() {
        "done"
    } else {
        "degraded"
    };
    let last_update = drift
        .as_ref()
        .filter(|_| state.sealed)
        .map(|f| f.last_update.clone())
        .or_else(|| state.runs.last().map(|r| r.finished.clone()));
    let report = StatusReport {
        status: word,
        errors,
        recoverable_errors,
        last_update,
        root: root.path().display().to_string(),
        distro,
        distro_error,
        user_data: found.as_ref().map(|f| f.user_data_name.clone()),
        user_data_source: found.as_ref().map(|f| f.source.clone()),
        instance_id: sources::instance_id(&root, meta_id.as_deref(), cmdline.as_deref()),
        sealed: state.sealed,
        watching_card: state.sealed && state.seed_fingerprint.is_some(),
        last_run: state.runs.last().cloned(),
        credentials: root
            .metadata(crate::concerns::proxy::htpasswd::CREDENTIALS)
            .ok()
            .flatten()
            .map(|_| {
                root.host_path(crate::concerns::proxy::htpasswd::CREDENTIALS)
                    .display()
                    .to_string()
            }),
        backups: state.runs.last().map(|r| {
            root.host_path(&Backup::new(&r.id).dir())
                .display()
                .to_string()
        }),
        metadata_provider: root
            .is_host()
            .then(|| crate::metadata::detect(&crate::metadata::Machine::live(None)))
            .flatten()
            .map(|d| format!("{} ({})", d.kind.name(), d.why)),
        metadata_failure: root
            .is_host()
            .then(|| std::fs::read_to_string(METADATA_FAILURE).ok())
            .flatten(),
        updates,
        static_only: state.static_only.clone(),
        default_passwords_locked: state.default_passwords_locked.clone(),
        certificates: state.certificates.clone(),
        acme: state.acme.clone(),
    };
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Format::Human => {
            println!("status:      {}", report.status);
            for e in &report.errors {
                println!("error:       {e}");
            }
            for d in &report.recoverable_errors {
                println!("drift:       {d}");
            }
            println!("root:        {}", report.root);
            match (&report.distro, &report.distro_error) {
                (Some(d), _) => println!("distro:      {} ({:?} family)", d.pretty_name, d.family),
                (None, Some(e)) => println!("distro:      unknown: {e}"),
                _ => {}
            }
            match (&report.user_data, &report.user_data_source) {
                (Some(f), Some(s)) => println!("user-data:   {f} ({s})"),
                _ => println!("user-data:   none found"),
            }
            match &report.instance_id {
                Some(i) => println!("instance-id: {} (from {})", i.id, i.origin),
                None => println!("instance-id: unknown"),
            }
            println!(
                "state:       {}",
                if report.sealed && report.watching_card {
                    "sealed (batten runs again only if the seed on the boot partition is edited)"
                } else if report.sealed {
                    "sealed (batten will not run again for this instance)"
                } else {
                    "armed (batten runs at next boot)"
                }
            );
            match &report.last_run {
                Some(r) => println!(
                    "last run:    {} {} ({} changes, {})",
                    r.id, r.outcome, r.changes, r.source
                ),
                None => println!("last run:    never"),
            }
            if !report.static_only.is_empty() {
                println!(
                    "checked statically only when the image was built (its programs could not run there): {}; verify checks them live before the seal",
                    report.static_only.join(", ")
                );
            }
            if let Some(r) = &report.last_run {
                for step in &r.steps {
                    println!(
                        "             {} {:>6} ms  {}",
                        if step.ok { "ok  " } else { "FAIL" },
                        step.millis,
                        step.what
                    );
                }
            }
            for l in &report.default_passwords_locked {
                println!(
                    "locked:      {}'s password: it was {} (run {})",
                    l.user, l.was, l.run
                );
            }
            for c in &report.certificates {
                println!(
                    "https:       {} SHA256 {} ({}, for {}, until {}; curl --pinnedpubkey {})",
                    c.site,
                    c.fingerprint,
                    if c.self_signed {
                        "self-signed"
                    } else {
                        "issued by a CA"
                    },
                    c.names.join(" "),
                    crate::state::format_utc(c.not_after),
                    c.pin
                );
            }
            for a in &report.acme {
                println!(
                    "acme:        {} ({}) {} at {}: {}",
                    a.site,
                    a.domain,
                    if a.ok { "ok" } else { "FAILED" },
                    a.at,
                    a.said
                );
            }
            if let Some(u) = &report.updates {
                println!("updates:     {u}");
            }
            if let Some(c) = &report.credentials {
                println!("credentials: {c} (root only: generated proxy passwords)");
            }
            if let Some(b) = &report.backups {
                println!("backups:     {b}");
            }
            if let Some(p) = &report.metadata_provider {
                println!("provider:    {p}");
            }
            if let Some(f) = &report.metadata_failure {
                println!("metadata:    FAILED this boot: {}", f.trim());
            }
        }
    }
    // cloud-init's convention for `status`: 1 for an error, 2 for a
    // degraded state (the number batten otherwise uses for usage errors).
    Ok(match report.status {
        "error" => Code::VerifyFailed,
        "degraded" => Code::Usage,
        _ => Code::Ok,
    })
}
