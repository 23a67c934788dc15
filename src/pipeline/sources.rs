//! Where the user-data comes from (a file given on the command line, the
//! seed locations, the cloud's metadata service) and what it means once
//! loaded: the instance data jinja templates see, and the validated
//! user-data.

use std::io::Read as _;
use std::path::Path;

use log::warn;

use super::options::{MetadataArgs, SourceArgs};
use super::print_issues;
use crate::exit::{Code, Failure};
use crate::host::root::Root;
use crate::input::decode::MAX_USER_DATA_BYTES;
use crate::input::jinja::{InstanceData, Known};
use crate::input::sources::{self, Found, Host, InstanceId};
use crate::input::{self, Loaded, meta};

/// Read a file named on the command line (`-`: standard input), at most
/// as much as user-data may be; its name for messages and its bytes.
pub fn read_input(path: &Path) -> Result<(String, Vec<u8>), Failure> {
    let mut bytes = Vec::new();
    let name = if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_USER_DATA_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::new(Code::Usage, format!("cannot read standard input: {e}")))?;
        "<stdin>".to_string()
    } else {
        let file = std::fs::File::open(path).map_err(|e| {
            Failure::new(Code::Usage, format!("cannot read {}: {e}", path.display()))
        })?;
        file.take(MAX_USER_DATA_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                Failure::new(Code::Usage, format!("cannot read {}: {e}", path.display()))
            })?;
        path.display().to_string()
    };
    if bytes.len() > MAX_USER_DATA_BYTES {
        return Err(Failure::new(
            Code::InvalidUserData,
            format!(
                "{name}: larger than {MAX_USER_DATA_BYTES} bytes; this is not user-data batten will read"
            ),
        ));
    }
    Ok((name, bytes))
}

/// User-data from the provider's metadata service. `None` (after saying
/// why) when no provider is recognised: the machine stays as it is. A
/// provider that does not answer is a failure, and nothing is changed.
pub fn fetch_metadata(
    metadata: &MetadataArgs,
    default_user: Option<&str>,
) -> Result<Option<Found>, Failure> {
    let machine = crate::metadata::Machine::live(metadata.dmi_dir.as_deref());
    let detected = match metadata.provider {
        Some(kind) => crate::metadata::Detected {
            kind,
            why: "--provider".to_string(),
        },
        None => match crate::metadata::detect(&machine) {
            Some(d) => d,
            None => {
                warn!(
                    "no metadata service to ask: DMI and the kernel command line name no provider batten knows (ec2, openstack, hetzner, digitalocean, gce); nothing was changed, and --provider NAME names one"
                );
                return Ok(None);
            }
        },
    };
    println!(
        "metadata provider: {} ({})",
        detected.kind.name(),
        detected.why
    );
    let mut limits = crate::metadata::http::Limits::default();
    if let Some(seconds) = metadata.metadata_budget {
        limits.overall = std::time::Duration::from_secs(seconds);
        limits.per_request = limits.per_request.min(limits.overall);
    }
    crate::metadata::fetch(
        detected.kind,
        crate::metadata::METADATA_ADDRESS,
        limits,
        default_user,
    )
    .map(Some)
    .map_err(|e| {
        Failure::new(
            Code::ApplyFailed,
            format!(
                "the {} metadata service gave no user-data: {e}; nothing was changed, the machine stays armed (sshd as the image has it, the first stage's firewall loaded), and the next boot tries again",
                detected.kind.name()
            ),
        )
    })
}

/// Write a small file under /run (the live system's, gone at reboot) for
/// the units and `status`; a failure is only worth a warning.
pub fn write_run_file(path: &str, text: &str) {
    let path = Path::new(path);
    if let Err(e) = std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/run")))
        .and_then(|()| std::fs::write(path, text))
    {
        warn!("could not write {}: {e}", path.display());
    }
}

/// Find the user-data: `--user-data`, else the seed locations.
pub fn locate(root: &Root, source: &SourceArgs, host: &Host) -> Result<Option<Found>, Failure> {
    let mut found = match &source.user_data {
        Some(path) => {
            let (name, bytes) = read_input(path)?;
            Some(Found {
                source: format!("--user-data {name}"),
                user_data_name: name,
                user_data: bytes,
                meta_data: None,
                platform: "unknown",
                in_root: None,
            })
        }
        None => sources::find(root, host)
            .map_err(|e| Failure::new(Code::InvalidUserData, e.to_string()))?,
    };
    if let (Some(found), Some(path)) = (found.as_mut(), &source.meta_data) {
        let (name, bytes) = read_input(path)?;
        found.meta_data = Some((name, bytes));
    }
    Ok(found)
}

/// What to say when no user-data was found, with where batten looked.
pub fn nothing_found() -> String {
    format!(
        "no user-data found; looked in: {}. Pass --user-data FILE to use another file",
        sources::searched_locations().join(", ")
    )
}

/// The instance data a jinja template in the user-data is rendered with:
/// what batten knows of this instance (see `input::jinja`).
pub fn instance_data(
    root: &Root,
    found: &Found,
    meta: &meta::MetaData,
    instance: &InstanceId,
) -> InstanceData {
    let meta_data = meta.document.clone();
    let from_meta = meta_data.as_ref().and_then(|m| {
        ["local-hostname", "local_hostname", "hostname"]
            .iter()
            .find_map(|k| m.get(*k).and_then(serde_json::Value::as_str))
            .map(str::to_string)
    });
    let from_image = root
        .read_to_string("/etc/hostname")
        .ok()
        .flatten()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    let hostname = from_meta.or(from_image);
    // The kernel's machine name, on the machine itself (an image's is not
    // known before it boots).
    let machine = root
        .is_host()
        .then(|| std::fs::read_to_string("/proc/sys/kernel/arch").ok())
        .flatten()
        .map(|m| m.trim().to_string())
        .or_else(|| root.is_host().then(|| std::env::consts::ARCH.to_string()));
    InstanceData::new(&Known {
        instance_id: &instance.id,
        platform: found.platform,
        subplatform: &found.source,
        local_hostname: hostname.as_deref(),
        meta_data,
        machine,
    })
    .rendered_by(renderer())
}

/// Load and validate the user-data, printing its warnings; invalid
/// user-data is exit 65 with every problem printed.
pub fn load_or_exit(found: &Found, instance_data: &InstanceData) -> Result<Loaded, Failure> {
    match input::load_with(&found.user_data_name, &found.user_data, instance_data) {
        Ok(loaded) => {
            print_issues("warning", &loaded.warnings);
            Ok(loaded)
        }
        Err(invalid) => {
            print_issues("error", &invalid.errors);
            print_issues("warning", &invalid.warnings);
            Err(Failure::new(
                Code::InvalidUserData,
                format!(
                    "{}: {} problems; nothing was changed. Fix them and run again (`batten validate FILE` checks a file)",
                    found.user_data_name,
                    invalid.errors.len()
                ),
            )
            .with_details(invalid.errors.iter().map(|i| i.to_string()).collect()))
        }
    }
}

/// This binary, to render templates in a limited child of itself.
pub fn renderer() -> input::jinja::Renderer {
    std::env::current_exe().map_or(
        input::jinja::Renderer::InProcess,
        input::jinja::Renderer::Child,
    )
}
