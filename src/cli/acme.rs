//! `batten acme`: one ACME round for every proxy site that names a domain
//! (what `batten-acme.service` and its timer run): certificates obtained
//! or renewed by certbot, put in place, nginx reloaded, the outcome
//! recorded for `batten status` and verify.

use clap::Args;

use crate::concerns::proxy::acme::obtain::{self, Outcome};
use crate::concerns::proxy::tls;
use crate::exit::{Code, Failure};
use crate::host::exec::{Call, Runner, System};
use crate::input::model::{Tls, site_name};
use crate::pipeline::open_path;
use crate::state::{self, AcmeRecord, State};

/// `batten acme [--force-renewal]`
#[derive(Debug, Args)]
pub struct Acme {
    /// Renew every ACME certificate now, even when it is not due (certbot
    /// otherwise renews within 30 days of expiry).
    #[arg(long)]
    pub force_renewal: bool,
}

impl Acme {
    /// One round; exit 70 when a site has no certificate from its CA.
    pub fn run(&self) -> Result<Code, Failure> {
        acme(self.force_renewal)
    }
}

fn acme(force: bool) -> Result<Code, Failure> {
    let root = open_path(std::path::Path::new("/"))?;
    let user_data = crate::pipeline::recorded::user_data(&root)?;
    let sites: Vec<_> = user_data
        .batten
        .proxy
        .iter()
        .filter_map(|s| match &s.tls {
            Tls::Acme(a) => Some((site_name(s), a.clone())),
            _ => None,
        })
        .collect();
    if sites.is_empty() {
        println!("batten acme: no proxy site asks for an ACME certificate; nothing to do");
        return Ok(Code::Ok);
    }
    let mut records = Vec::new();
    let mut installed = false;
    for (name, acme) in &sites {
        println!(
            "batten acme: {name}: asking {} for {}",
            acme.server, acme.domain
        );
        let outcome = obtain::obtain(&System, &root, name, acme, force);
        let (ok, said) = match &outcome {
            Outcome::Installed(d) => {
                installed = true;
                (
                    true,
                    format!(
                        "certificate installed, SHA256 {}, until {}",
                        d.fingerprint,
                        state::format_utc(d.not_after)
                    ),
                )
            }
            Outcome::Current(d) => (
                true,
                format!(
                    "certificate current, until {}",
                    state::format_utc(d.not_after)
                ),
            ),
            Outcome::Failed(why) => (
                false,
                format!(
                    "no certificate from the CA: {why}; the site keeps serving its current certificate"
                ),
            ),
        };
        println!("batten acme: {name}: {said}");
        records.push(AcmeRecord {
            site: name.clone(),
            domain: acme.domain.clone(),
            at: state::now_utc(),
            ok,
            said,
        });
    }
    if installed && let Err(e) = reload_nginx(&System) {
        println!("batten acme: {e}; nginx serves the new certificate after its next reload");
    }
    let mut st = State::load(&root).map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
    let certificates = tls::record(&root, &tls::sites(&user_data));
    if certificates != st.certificates {
        print!("{}", tls::fingerprint_block(&certificates));
    }
    st.certificates = certificates;
    st.acme = records.clone();
    st.save(&root).map_err(|e| {
        Failure::new(
            Code::ApplyFailed,
            format!("could not record the round: {e}"),
        )
    })?;
    if records.iter().all(|r| r.ok) {
        Ok(Code::Ok)
    } else {
        Err(Failure::new(
            Code::ApplyFailed,
            "an ACME certificate could not be obtained (see above); batten-acme.timer tries again",
        ))
    }
}

/// Reload nginx so it serves the new pair: through systemd where it runs
/// the machine, else nginx's own signal (`nginx -s reload`).
fn reload_nginx(runner: &dyn Runner) -> Result<(), String> {
    if std::path::Path::new("/run/systemd/system").is_dir() {
        return crate::host::daemon::reload(runner, "nginx.service");
    }
    let out = runner
        .run(&Call {
            program: "nginx",
            args: &["-s", "reload"],
            stdin: None,
        })
        .map_err(|e| e.to_string())?;
    if out.success {
        Ok(())
    } else {
        Err(format!("nginx -s reload failed: {}", out.stderr))
    }
}
