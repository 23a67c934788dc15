//! The user-data a root's last run acted on, as that run read it: batten's
//! own copy, rendered with the instance data it kept. What verify, the
//! drift check and `batten acme` hold the machine to.

use crate::exit::{Code, Failure};
use crate::host::root::Root;
use crate::input;
use crate::input::jinja::InstanceData;
use crate::input::model::UserData;
use crate::pipeline::print_issues;
use crate::pipeline::sources::renderer;
use crate::state::{INSTANCE_DATA_COPY, USER_DATA_COPY};

/// The user-data the root's last run acted on (batten's copy), as that
/// run read it: what verify and `batten acme` work from.
pub fn user_data(root: &Root) -> Result<UserData, Failure> {
    // The intent is the user-data the last run acted on.
    let copy = root
        .read(USER_DATA_COPY)
        .map_err(|e| Failure::new(Code::VerifyFailed, e.to_string()))?
        .unwrap_or_default();
    let instance_data = root
        .read(INSTANCE_DATA_COPY)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .map_or_else(|| InstanceData::placeholder(None), InstanceData::from_json)
        .rendered_by(renderer());
    match input::load_with(USER_DATA_COPY, &copy, &instance_data) {
        Ok(l) => Ok(l.user_data),
        Err(invalid) => {
            print_issues("error", &invalid.errors);
            Err(Failure::new(
                Code::VerifyFailed,
                format!("{USER_DATA_COPY} no longer validates; run batten again"),
            ))
        }
    }
}

/// Verify `root` against the user-data its last run acted on: the
/// distribution, that user-data and the report, for `verify` and its
/// drift check alike.
pub fn report(
    root: &Root,
    family: Option<crate::host::distro::Family>,
) -> Result<(crate::host::distro::Distro, UserData, crate::verify::Report), Failure> {
    let distro = crate::host::distro::Distro::detect(root, family)
        .map_err(|e| Failure::new(Code::Usage, e.to_string()))?;
    let user_data = user_data(root)?;
    let report = crate::verify::verify(&crate::verify::Inputs {
        root,
        distro: &distro,
        user_data: &user_data,
        runner: &crate::host::exec::System,
    });
    Ok((distro, user_data, report))
}
