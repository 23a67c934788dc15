//! Which batten binary goes into an image: the one built for the image's
//! own userland, read from the image's programs (`/bin/sh`), never from
//! `uname` (a 32-bit Pi OS on a Pi 4 runs a 64-bit kernel over an armhf
//! userland) nor from the machine that bakes the image.
//!
//! The binary is the one named with `--binary`, else this very binary when
//! it is for the same machine, else a `batten-<target>` file beside it,
//! where `scripts/build-static.sh` puts the static builds. For 32-bit ARM
//! the ARMv6 build (`batten-arm-...`) comes before the ARMv7 one: only it
//! runs on every 32-bit Pi (Pi 1, Zero, Zero W).

use std::path::{Path, PathBuf};

use crate::host::elf::{elf_interpreter, elf_machine, machine_name};
use crate::host::root::Root;

/// The binary chosen for an image.
#[derive(Debug)]
pub struct Chosen {
    /// Where it was read from, for the message.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// What the owner should know (a dynamically linked binary, an image
    /// whose machine could not be read).
    pub notes: Vec<String>,
}

/// Why no binary could be chosen; nothing was installed.
#[derive(Debug, thiserror::Error)]
pub enum ChooseError {
    /// `--binary` names a file that cannot be read.
    #[error("--binary {path}: {error}")]
    Unreadable {
        /// The file.
        path: String,
        /// What the system said.
        error: std::io::Error,
    },
    /// The binary given is not for the image's machine.
    #[error(
        "{path} is a program for {binary}, but the image's programs are for {image}; give the {image} build with --binary (scripts/build-static.sh makes it)"
    )]
    Mismatch {
        /// The file.
        path: String,
        /// What it is for.
        binary: String,
        /// What the image is.
        image: String,
    },
    /// No binary for the image's machine is at hand.
    #[error(
        "the image's programs are for {image}, and this batten is for {this}; build batten for {image} (scripts/build-static.sh puts batten-<target> files beside this binary, where install finds them) or give it with --binary FILE"
    )]
    NoneFor {
        /// What the image is.
        image: String,
        /// What the running binary is.
        this: String,
    },
}

/// The image's machine, as its `/bin/sh` says: (e_machine, 64-bit).
pub fn image_machine(root: &Root) -> Option<(u16, bool)> {
    let sh = root.read_following_within("/bin/sh").ok()??;
    elf_machine(&sh)
}

/// Choose the binary for `root`: `given` (`--binary`), else `running`
/// (this binary's path and bytes) when it fits, else a `batten-*` file in
/// `running`'s directory built for the image's machine.
pub fn choose(
    root: &Root,
    given: Option<&Path>,
    running: (&Path, Vec<u8>),
) -> Result<Chosen, ChooseError> {
    let image = image_machine(root);
    let name = |m: (u16, bool)| machine_name(m.0, m.1);
    let mut notes = Vec::new();
    let (path, bytes) = match given {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|error| ChooseError::Unreadable {
                path: path.display().to_string(),
                error,
            })?;
            if let (Some(image), binary) = (image, elf_machine(&bytes))
                && binary != Some(image)
            {
                return Err(ChooseError::Mismatch {
                    path: path.display().to_string(),
                    binary: binary.map_or_else(|| "no machine (not an ELF program)".into(), name),
                    image: name(image),
                });
            }
            (path.to_path_buf(), bytes)
        }
        None => {
            let (path, bytes) = running;
            let this = elf_machine(&bytes);
            match image {
                None => {
                    notes.push(format!(
                        "the image has no /bin/sh that says its machine; installed this batten ({}), which must be the image's",
                        this.map_or_else(|| "unknown machine".into(), name)
                    ));
                    (path.to_path_buf(), bytes)
                }
                // On 32-bit ARM a build beside this one may be the ARMv6 one,
                // which runs on every Pi where this (ARMv7?) one may not.
                Some(image) if image == (40, false) && beside(path, image).is_some() => {
                    beside(path, image).unwrap_or((path.to_path_buf(), bytes))
                }
                Some(image) if this == Some(image) => (path.to_path_buf(), bytes),
                Some(image) => beside(path, image).ok_or_else(|| ChooseError::NoneFor {
                    image: name(image),
                    this: this.map_or_else(|| "an unknown machine".into(), name),
                })?,
            }
        }
    };
    if elf_interpreter(&bytes).is_some() {
        notes.push(format!(
            "{} is linked dynamically: it runs in the image only with the C library it was built against; the static builds (scripts/build-static.sh) run anywhere",
            path.display()
        ));
    }
    Ok(Chosen { path, bytes, notes })
}

/// The `batten-<target>` file beside `running` built for `machine`; for
/// 32-bit ARM the ARMv6 build first, since it runs on every 32-bit Pi.
fn beside(running: &Path, machine: (u16, bool)) -> Option<(PathBuf, Vec<u8>)> {
    let dir = running.parent()?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("batten-"))
        })
        .collect();
    // `batten-arm-...` (ARMv6) sorts before `batten-armv7-...`.
    found.sort();
    found.into_iter().find_map(|path| {
        let bytes = std::fs::read(&path).ok()?;
        (elf_machine(&bytes) == Some(machine)).then_some((path, bytes))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    /// The first bytes of an ELF program for `machine`; enough to be read.
    fn elf(machine: u16, wide: bool) -> Vec<u8> {
        let mut b = b"\x7fELF".to_vec();
        b.extend([if wide { 2 } else { 1 }, 1, 1, 0]);
        b.extend([0u8; 10]);
        b.extend(machine.to_le_bytes());
        b.extend([0u8; 40]);
        b
    }

    /// A root whose /bin/sh is a program for `machine`, reached through
    /// the merged-/usr link as on Debian.
    fn image(machine: u16, wide: bool) -> (tempfile::TempDir, Root) {
        let (dir, root) = scratch_root(&[]);
        std::fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
        std::fs::write(dir.path().join("usr/bin/dash"), elf(machine, wide)).unwrap();
        std::os::unix::fs::symlink("dash", dir.path().join("usr/bin/sh")).unwrap();
        std::os::unix::fs::symlink("usr/bin", dir.path().join("bin")).unwrap();
        (dir, root)
    }

    #[test]
    fn the_image_says_its_machine_and_the_build_beside_this_one_is_taken() {
        let (_image_dir, root) = image(183, true);
        assert_eq!(image_machine(&root), Some((183, true)));
        let builds = tempfile::tempdir().unwrap();
        let running = builds.path().join("batten");
        std::fs::write(
            builds.path().join("batten-aarch64-unknown-linux-musl"),
            elf(183, true),
        )
        .unwrap();
        std::fs::write(
            builds.path().join("batten-x86_64-unknown-linux-musl"),
            elf(62, true),
        )
        .unwrap();
        let chosen = choose(&root, None, (&running, elf(62, true))).unwrap();
        assert!(chosen.path.ends_with("batten-aarch64-unknown-linux-musl"));
        assert!(chosen.notes.is_empty(), "{:?}", chosen.notes);
    }

    #[test]
    fn a_32_bit_arm_image_gets_the_armv6_build_that_runs_on_every_pi() {
        let (_image_dir, root) = image(40, false);
        let builds = tempfile::tempdir().unwrap();
        for name in [
            "batten-armv7-unknown-linux-gnueabihf",
            "batten-arm-unknown-linux-gnueabi",
        ] {
            std::fs::write(builds.path().join(name), elf(40, false)).unwrap();
        }
        let running = builds.path().join("batten");
        let chosen = choose(&root, None, (&running, elf(62, true))).unwrap();
        assert!(chosen.path.ends_with("batten-arm-unknown-linux-gnueabi"));
    }

    #[test]
    fn a_binary_for_another_machine_is_refused_with_both_named() {
        let (_image_dir, root) = image(183, true);
        let builds = tempfile::tempdir().unwrap();
        let running = builds.path().join("batten");
        let e = choose(&root, None, (&running, elf(62, true))).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("for aarch64") && text.contains("for x86_64"),
            "{text}"
        );
        let given = builds.path().join("wrong");
        std::fs::write(&given, elf(40, false)).unwrap();
        let text = choose(&root, Some(&given), (&running, elf(62, true)))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("32-bit ARM") && text.contains("aarch64"),
            "{text}"
        );
    }

    #[test]
    fn the_same_machine_takes_this_binary_and_an_unreadable_image_says_so() {
        let (_image_dir, root) = image(62, true);
        let running = Path::new("/nonexistent/batten");
        let chosen = choose(&root, None, (running, elf(62, true))).unwrap();
        assert_eq!(chosen.path, running);
        let (_dir, bare) = scratch_root(&[]);
        let chosen = choose(&bare, None, (running, elf(62, true))).unwrap();
        assert!(chosen.notes[0].contains("no /bin/sh"), "{:?}", chosen.notes);
    }
}
