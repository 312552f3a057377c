//! The machines the product supports, as the three places name them: `uname -m` on a host,
//! the arch subtree of a rootfs (Go's names, as sealer uses them) and the `e_machine` of an
//! ELF header, which is what tells a binary built for another host apart.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// Per-architecture subtree names (Go's names, as sealer uses them).
pub const ARCH_DIRS: [&str; 2] = ["amd64", "arm64"];

/// Maps `uname -m` to the rootfs arch subtree name: `x86_64` → `amd64`, `aarch64` →
/// `arm64`. `None` for machines the product does not support.
pub fn arch_dir_for(uname_machine: &str) -> Option<&'static str> {
    match uname_machine {
        "x86_64" | "amd64" => Some("amd64"),
        "aarch64" | "arm64" => Some("arm64"),
        _ => None,
    }
}

/// The `uname -m` machine an ELF header is built for, when it is an ELF file of a machine we
/// know; `Some("other(N)")`-style names are not invented: unknown machines give the raw
/// number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElfMachine {
    /// x86-64 (`e_machine` 62).
    X86_64,
    /// AArch64 (`e_machine` 183).
    Aarch64,
    /// Any other machine number.
    Other(u16),
}

impl ElfMachine {
    /// The `uname -m` spelling.
    pub fn uname(&self) -> String {
        match self {
            ElfMachine::X86_64 => "x86_64".into(),
            ElfMachine::Aarch64 => "aarch64".into(),
            ElfMachine::Other(n) => format!("ELF machine {n}"),
        }
    }

    /// Whether a host reporting `uname_machine` can run this binary.
    pub fn runs_on(&self, uname_machine: &str) -> bool {
        arch_dir_for(uname_machine) == arch_dir_for(&self.uname())
            && arch_dir_for(uname_machine).is_some()
    }
}

/// Reads the ELF machine from the first bytes of a file; `None` if it is not ELF (scripts).
pub fn elf_machine(header: &[u8]) -> Option<ElfMachine> {
    if header.len() < 20 || &header[..4] != b"\x7fELF" {
        return None;
    }
    // EI_DATA: 1 little-endian, 2 big-endian. e_machine is the u16 at offset 18.
    let raw = [header[18], header[19]];
    let machine = match header[5] {
        2 => u16::from_be_bytes(raw),
        _ => u16::from_le_bytes(raw),
    };
    Some(match machine {
        62 => ElfMachine::X86_64,
        183 => ElfMachine::Aarch64,
        n => ElfMachine::Other(n),
    })
}

/// Reads the ELF machine of a file on disk.
pub fn elf_machine_of(path: &Path) -> io::Result<Option<ElfMachine>> {
    let mut header = [0u8; 20];
    let mut file = fs::File::open(path)?;
    let mut read = 0;
    while read < header.len() {
        let n = file.read(&mut header[read..])?;
        if n == 0 {
            break;
        }
        read += n;
    }
    Ok(elf_machine(&header[..read]))
}

/// The smallest header [`elf_machine`] reads as `machine` (64-bit little-endian): a
/// "binary" of a given machine for tests and fixtures, without a cross toolchain.
pub fn header_for(machine: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2;
    h[5] = 1;
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_machine_is_read_and_checked() {
        assert_eq!(elf_machine(&header_for(62)), Some(ElfMachine::X86_64));
        assert_eq!(elf_machine(&header_for(183)), Some(ElfMachine::Aarch64));
        assert_eq!(elf_machine(b"#!/bin/sh\necho hi\n"), None);
        assert!(ElfMachine::X86_64.runs_on("x86_64"));
        assert!(!ElfMachine::X86_64.runs_on("aarch64"));
    }

    #[test]
    fn big_endian_headers_and_files_on_disk_are_read() {
        let mut be = header_for(0);
        be[5] = 2;
        be[18..20].copy_from_slice(&183u16.to_be_bytes());
        assert_eq!(elf_machine(&be), Some(ElfMachine::Aarch64));
        let dir = tempfile::tempdir().unwrap();
        let (bin, short) = (dir.path().join("bin"), dir.path().join("short"));
        fs::write(&bin, header_for(62)).unwrap();
        fs::write(&short, b"\x7fELF").unwrap();
        assert_eq!(elf_machine_of(&bin).unwrap(), Some(ElfMachine::X86_64));
        assert_eq!(elf_machine_of(&short).unwrap(), None);
        assert_eq!(ElfMachine::Other(243).uname(), "ELF machine 243");
        assert!(!ElfMachine::Other(243).runs_on("riscv64"));
    }
}
