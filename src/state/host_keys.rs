//! Whose SSH host keys the root holds, so a re-run keeps a machine's
//! identity and a clone gets its own.
//!
//! A run records the keys it makes at once (a run killed after making
//! them must keep them), and puts the previous record back when its
//! rollback takes the keys away again.

use super::{BOOT_RECORD, State, this_boot};

/// For whom a run makes host keys.
pub enum KeysFor {
    /// The instance the user-data belongs to.
    Instance(String),
    /// This boot, before any instance is known (the baseline); the keys
    /// are the machine's until an instance claims them.
    Boot,
}

/// The host keys' record as it was, to put back after a rollback.
#[derive(Clone, PartialEq)]
pub struct KeysRecord(Option<String>, Vec<String>);

impl State {
    /// The host keys' record now.
    pub fn keys_record(&self) -> KeysRecord {
        KeysRecord(
            self.host_keys_instance.clone(),
            self.baseline_host_keys.clone(),
        )
    }

    /// Put back a record taken with [`State::keys_record`]; whether it
    /// changed anything.
    pub fn restore_keys_record(&mut self, record: KeysRecord) -> bool {
        if self.keys_record() == record {
            return false;
        }
        (self.host_keys_instance, self.baseline_host_keys) = (record.0, record.1);
        true
    }

    /// Record that keys were just made for `keys_for`: `generated` names
    /// their private key files.
    pub fn claim_host_keys(&mut self, keys_for: &KeysFor, generated: &[String]) {
        match keys_for {
            KeysFor::Instance(id) => self.host_keys_instance = Some(id.clone()),
            KeysFor::Boot => {
                // An instance's record stays: its keys are its own already,
                // and the one made here is this machine's too.
                let record = self.host_keys_instance.as_deref();
                if record.is_some_and(|r| !r.starts_with(BOOT_RECORD)) {
                    return;
                }
                let boot = this_boot();
                if record != boot.as_deref() {
                    self.baseline_host_keys.clear();
                }
                self.host_keys_instance = boot;
                self.baseline_host_keys.extend(generated.iter().cloned());
            }
        }
    }
}
