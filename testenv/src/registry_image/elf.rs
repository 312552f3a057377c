//! Just enough ELF reading to assemble a runnable image: a dynamically linked binary's
//! interpreter (`PT_INTERP`) and the libraries it names (`DT_NEEDED`). Only 64-bit
//! little-endian files are read, which covers x86-64 and aarch64, the machines the product
//! supports.

use std::path::Path;

/// What a dynamically linked ELF file needs at run time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// The program interpreter, e.g. `/lib64/ld-linux-x86-64.so.2`; `None` for static
    /// binaries and shared libraries.
    pub interpreter: Option<String>,
    /// The `DT_NEEDED` sonames, in file order.
    pub needed: Vec<String>,
}

/// Why a file could not be read as ELF.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a 64-bit little-endian ELF file, or is cut short.
    #[error("{path}: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
}

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_LOAD: u32 = 1;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;

/// Reads the interpreter and needed libraries of the ELF file at `path`.
pub fn needs(path: &Path) -> Result<Needs, ElfError> {
    let data = std::fs::read(path).map_err(|source| ElfError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&data).map_err(|reason| ElfError::Malformed {
        path: path.display().to_string(),
        reason,
    })
}

fn parse(data: &[u8]) -> Result<Needs, &'static str> {
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        return Err("not an ELF file");
    }
    if data[4] != 2 || data[5] != 1 {
        return Err("not a 64-bit little-endian ELF file");
    }
    let phoff = u64_at(data, 0x20)? as usize;
    let phentsize = u16_at(data, 0x36)? as usize;
    let phnum = u16_at(data, 0x38)? as usize;

    struct Segment {
        kind: u32,
        offset: u64,
        vaddr: u64,
        filesz: u64,
    }
    let mut segments = Vec::with_capacity(phnum);
    for i in 0..phnum {
        let base = phoff + i * phentsize;
        segments.push(Segment {
            kind: u32_at(data, base)?,
            offset: u64_at(data, base + 0x08)?,
            vaddr: u64_at(data, base + 0x10)?,
            filesz: u64_at(data, base + 0x20)?,
        });
    }

    let mut needs = Needs::default();
    if let Some(interp) = segments.iter().find(|s| s.kind == PT_INTERP) {
        let bytes = slice(data, interp.offset, interp.filesz)?;
        needs.interpreter = Some(c_string(bytes, 0)?);
    }
    let Some(dynamic) = segments.iter().find(|s| s.kind == PT_DYNAMIC) else {
        return Ok(needs);
    };
    let table = slice(data, dynamic.offset, dynamic.filesz)?;
    let mut strtab_addr = None;
    let mut needed_offsets = Vec::new();
    for entry in table.chunks_exact(16) {
        let tag = u64_at(entry, 0)?;
        let value = u64_at(entry, 8)?;
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed_offsets.push(value),
            DT_STRTAB => strtab_addr = Some(value),
            _ => {}
        }
    }
    if needed_offsets.is_empty() {
        return Ok(needs);
    }
    // DT_STRTAB holds a virtual address; the loadable segment containing it maps it back
    // to a file offset.
    let addr = strtab_addr.ok_or("DT_NEEDED entries without a DT_STRTAB")?;
    let load = segments
        .iter()
        .find(|s| s.kind == PT_LOAD && s.vaddr <= addr && addr < s.vaddr + s.filesz)
        .ok_or("DT_STRTAB outside every loadable segment")?;
    let strtab = (addr - load.vaddr + load.offset) as usize;
    for off in needed_offsets {
        needs.needed.push(c_string(data, strtab + off as usize)?);
    }
    Ok(needs)
}

fn slice(data: &[u8], offset: u64, len: u64) -> Result<&[u8], &'static str> {
    let start = usize::try_from(offset).map_err(|_| "offset too large")?;
    let len = usize::try_from(len).map_err(|_| "length too large")?;
    data.get(start..start.saturating_add(len))
        .ok_or("a segment points past the end of the file")
}

fn c_string(data: &[u8], start: usize) -> Result<String, &'static str> {
    let rest = data.get(start..).ok_or("a string points past the end")?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or("unterminated string")?;
    String::from_utf8(rest[..end].to_vec()).map_err(|_| "a name is not UTF-8")
}

fn u16_at(data: &[u8], at: usize) -> Result<u16, &'static str> {
    let b = data.get(at..at + 2).ok_or("file cut short")?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, &'static str> {
    let b = data.get(at..at + 4).ok_or("file cut short")?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(data: &[u8], at: usize) -> Result<u64, &'static str> {
    let b = data.get(at..at + 8).ok_or("file cut short")?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_le_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_test_binary() {
        // The test binary itself is a dynamically linked ELF file of this machine.
        let exe = std::env::current_exe().unwrap();
        let needs = needs(&exe).unwrap();
        assert!(needs.interpreter.is_some(), "{needs:?}");
        assert!(
            needs.needed.iter().any(|n| n.starts_with("libc.so")),
            "{needs:?}"
        );
    }

    #[test]
    fn rejects_non_elf() {
        assert_eq!(parse(b"#!/bin/sh\n"), Err("not an ELF file"));
        let mut short = b"\x7fELF\x02\x01".to_vec();
        short.resize(64, 0);
        // phnum 0: a valid header with nothing in it.
        assert_eq!(parse(&short), Ok(Needs::default()));
    }
}
