//! Reading an ELF program's header: which machine it is for, and the
//! loader it needs. An image's programs say what the image is (its
//! userland, which a Pi's kernel may not share), and whether this machine
//! can run them.

/// An ELF program's machine, as (e_machine, 64-bit).
pub fn elf_machine(bytes: &[u8]) -> Option<(u16, bool)> {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return None;
    }
    let raw = [bytes[18], bytes[19]];
    let machine = if bytes[5] == 2 {
        u16::from_be_bytes(raw)
    } else {
        u16::from_le_bytes(raw)
    };
    Some((machine, bytes[4] == 2))
}

/// A dynamically linked ELF program's loader (its PT_INTERP), as a path.
pub fn elf_interpreter(bytes: &[u8]) -> Option<String> {
    elf_machine(bytes)?;
    let wide = bytes[4] == 2;
    let big = bytes[5] == 2;
    let num = |at: usize, len: usize| -> Option<usize> {
        let raw = bytes.get(at..at.checked_add(len)?)?;
        let mut v: u64 = 0;
        for i in 0..len {
            let b = if big { raw[i] } else { raw[len - 1 - i] };
            v = (v << 8) | u64::from(b);
        }
        usize::try_from(v).ok()
    };
    let (phoff, entsize, count) = if wide {
        (num(32, 8)?, num(54, 2)?, num(56, 2)?)
    } else {
        (num(28, 4)?, num(42, 2)?, num(44, 2)?)
    };
    for i in 0..count.min(64) {
        let at = phoff.checked_add(i.checked_mul(entsize)?)?;
        if num(at, 4)? != 3 {
            continue;
        }
        let field = |delta: usize, len: usize| num(at.checked_add(delta)?, len);
        let (offset, size) = if wide {
            (field(8, 8)?, field(32, 8)?)
        } else {
            (field(4, 4)?, field(16, 4)?)
        };
        let text = bytes.get(offset..offset.checked_add(size)?)?;
        let text = text.split(|b| *b == 0).next()?;
        return String::from_utf8(text.to_vec()).ok();
    }
    None
}

/// The name of an ELF machine, for messages.
pub fn machine_name(machine: u16, wide: bool) -> String {
    match (machine, wide) {
        (62, true) => "x86_64".into(),
        (3, false) => "i386".into(),
        (183, true) => "aarch64".into(),
        (40, false) => "32-bit ARM".into(),
        (243, true) => "riscv64".into(),
        (m, w) => format!("ELF machine {m} ({}-bit)", if w { 64 } else { 32 }),
    }
}

/// This machine's own ELF machine.
pub fn host_machine() -> Option<(u16, bool)> {
    match std::env::consts::ARCH {
        "x86_64" => Some((62, true)),
        "x86" => Some((3, false)),
        "aarch64" => Some((183, true)),
        "arm" => Some((40, false)),
        "riscv64" => Some((243, true)),
        _ => None,
    }
}
