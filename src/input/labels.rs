//! Filesystem labels read straight from a device's superblock, for the
//! moment early in the boot when the kernel has the seed disk but udev has
//! not yet made its `/dev/disk/by-label` link. Only the filesystems a seed
//! comes on are known: ISO 9660, FAT and ext2/3/4.

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Enough of the device to reach the ISO 9660 volume descriptor.
const PROBE_BYTES: usize = 32768 + 2048;

/// The label of the filesystem on `device`, if it is one batten knows and
/// it has one. Never blocks on an empty CD drive, never writes.
pub fn read_label(device: &Path) -> Option<String> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(device)
        .ok()?;
    use std::os::unix::fs::FileTypeExt as _;
    if !file.metadata().ok()?.file_type().is_block_device() {
        return None;
    }
    let mut bytes = Vec::with_capacity(PROBE_BYTES);
    (&mut file)
        .take(PROBE_BYTES as u64)
        .read_to_end(&mut bytes)
        .ok()?;
    label_of(&bytes)
}

/// The label in the first bytes of a filesystem.
pub fn label_of(bytes: &[u8]) -> Option<String> {
    iso9660(bytes).or_else(|| ext(bytes)).or_else(|| fat(bytes))
}

fn field(bytes: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    bytes.get(at..at + len)
}

/// Trailing spaces and NULs are padding; an empty label is no label.
fn text(raw: &[u8]) -> Option<String> {
    let end = raw
        .iter()
        .rposition(|b| *b != b' ' && *b != 0)
        .map_or(0, |i| i + 1);
    let label = std::str::from_utf8(&raw[..end]).ok()?;
    (!label.is_empty()).then(|| label.to_string())
}

/// The primary volume descriptor at sector 16: type 1, "CD001", volume id.
fn iso9660(bytes: &[u8]) -> Option<String> {
    let pvd = field(bytes, 32768, 2048)?;
    (pvd[0] == 1 && &pvd[1..6] == b"CD001")
        .then(|| text(&pvd[40..72]))
        .flatten()
}

/// The ext2/3/4 superblock at 1024: magic 0xEF53, 16-byte volume name.
fn ext(bytes: &[u8]) -> Option<String> {
    let sb = field(bytes, 1024, 1024)?;
    (sb[0x38..0x3A] == [0x53, 0xEF])
        .then(|| text(&sb[0x78..0x88]))
        .flatten()
}

/// The FAT boot sector: the label at 0x47 (FAT32) or 0x2B (FAT12/16),
/// where "NO NAME" means none.
fn fat(bytes: &[u8]) -> Option<String> {
    let boot = field(bytes, 0, 512)?;
    if boot[510..512] != [0x55, 0xAA] {
        return None;
    }
    let at = if &boot[0x52..0x57] == b"FAT32" {
        0x47
    } else if &boot[0x36..0x39] == b"FAT" {
        0x2B
    } else {
        return None;
    };
    text(&boot[at..at + 11]).filter(|l| l != "NO NAME")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank() -> Vec<u8> {
        vec![0; PROBE_BYTES]
    }

    #[test]
    fn iso9660_volume_id() {
        let mut b = blank();
        b[32768] = 1;
        b[32769..32774].copy_from_slice(b"CD001");
        b[32768 + 40..32768 + 72].copy_from_slice(&[b' '; 32]);
        b[32768 + 40..32768 + 46].copy_from_slice(b"cidata");
        assert_eq!(label_of(&b).as_deref(), Some("cidata"));
    }

    #[test]
    fn ext4_volume_name() {
        let mut b = blank();
        b[1024 + 0x38] = 0x53;
        b[1024 + 0x39] = 0xEF;
        b[1024 + 0x78..1024 + 0x80].copy_from_slice(b"config-2");
        assert_eq!(label_of(&b).as_deref(), Some("config-2"));
    }

    #[test]
    fn fat_labels_and_no_name() {
        let mut b = blank();
        b[510] = 0x55;
        b[511] = 0xAA;
        b[0x52..0x5A].copy_from_slice(b"FAT32   ");
        b[0x47..0x52].copy_from_slice(b"CIDATA     ");
        assert_eq!(label_of(&b).as_deref(), Some("CIDATA"));
        let mut b16 = blank();
        b16[510] = 0x55;
        b16[511] = 0xAA;
        b16[0x36..0x3E].copy_from_slice(b"FAT16   ");
        b16[0x2B..0x36].copy_from_slice(b"NO NAME    ");
        assert_eq!(label_of(&b16), None);
    }

    #[test]
    fn nothing_known_or_too_short() {
        assert_eq!(label_of(&blank()), None);
        assert_eq!(label_of(&[0u8; 100]), None);
    }
}
