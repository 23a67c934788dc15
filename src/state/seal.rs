//! Sealing: after verify passed, the instance is recorded as done and the
//! first-boot units are switched off, so batten does nothing on later
//! boots of the same instance (`rearm` undoes it).

use super::{State, StateError, UNITS};
use crate::host::root::{Root, RootError};

/// Why an instance was not sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Checks the image build could only make statically are still to be
    /// made live by the machine's own first boot.
    #[error(
        "not sealed: {} could only be checked statically here; the machine's first boot checks them live and seals",
        .0.join(", ")
    )]
    StaticOnly(Vec<String>),
    /// The seed on the boot partition is not the one a run applied: it was
    /// edited, and the run with it failed or was refused.
    #[error(
        "not sealed: the seed on the boot partition was edited since batten last applied it, and the run with it did not succeed (batten-status.txt and `batten status` say why); fix it, and the next boot runs batten again"
    )]
    CardNotApplied,
    /// The state could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// A unit's enable link could not be removed.
    #[error(transparent)]
    Root(#[from] RootError),
}

/// The unit that stays enabled on a sealed machine whose seed is on a boot
/// partition: it checks the card at each boot (a sealed, unedited card
/// costs a glance at state.json and the seed) and runs again when the
/// owner edited the seed on another computer; verify then seals again.
const CARD_WATCH: &[&str] = &["batten.service", "batten-verify.service"];

/// Seal the root's instance; its id when sealed. Call only when verify
/// passed. `card` is the digest of a seed on a boot partition, which keeps
/// batten watching the card.
pub fn seal(root: &Root, card: Option<String>) -> Result<Option<String>, SealError> {
    let mut state = State::load(root)?;
    // A check the image build could make only statically is made live by
    // the machine's own verify; an image's verify cannot stand in.
    if !root.is_host() && !state.static_only.is_empty() {
        return Err(SealError::StaticOnly(state.static_only));
    }
    if let Some(card) = &card
        && state.applied_seed.as_ref() != Some(card)
    {
        return Err(SealError::CardNotApplied);
    }
    // A watched card seals again at every boot: nothing to write then.
    if state.sealed && state.seed_fingerprint == card && state.static_only.is_empty() {
        return Ok(state.instance_id);
    }
    // Made live now: nothing is left for later.
    state.static_only.clear();
    state.sealed = true;
    let watch = card.is_some();
    state.seed_fingerprint = card;
    state.save(root)?;
    for (_, _, link) in UNITS {
        let unit = link.rsplit('/').next().unwrap_or(link);
        if !(watch && CARD_WATCH.contains(&unit)) {
            root.remove_file(link, None)?;
        }
    }
    // A machine from an older image whose binary was replaced in place.
    root.remove_file(super::install::OLD_METADATA_LINK, None)?;
    Ok(state.instance_id)
}
