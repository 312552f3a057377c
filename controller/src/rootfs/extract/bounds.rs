//! The bounds of an unpack: the limits it runs under ([`UnpackLimits`]), the meter on the
//! tar stream that caps what the reader takes between two entries, and the running totals
//! checked against the limits and the cache's free space as files are written.

use crate::rootfs::RootfsError;
use installer_proto::human;
use std::cell::Cell;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

/// The environment variable that sets [`UnpackLimits::max_bytes`] (`200G`, `512M`, bytes).
pub const LIMIT_ENV: &str = "INSTALLER_UNPACK_LIMIT";

/// How much of the tar stream the reader may take between two entries: headers, GNU long
/// names and PAX records. Real ones are a few KiB; the tar reader keeps them in memory, so
/// an archive claiming a gigabyte-long name must stop here.
pub(super) const MAX_HEADER_BYTES: u64 = 1 << 20;

/// How often (in bytes written) free space is measured again while a file is written, so
/// a disk filling up for another reason is noticed too.
const RECHECK_EVERY: u64 = 64 << 20;

/// What an unpack may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnpackLimits {
    /// The most file content one archive may unpack to, in bytes.
    pub max_bytes: u64,
    /// The most entries (files, directories, links) one archive may hold.
    pub max_entries: u64,
    /// Free space the unpack must leave on the cache's file system, in bytes.
    pub keep_free: u64,
}

impl Default for UnpackLimits {
    /// 64 GiB, two million entries, 512 MiB left free: far above a real rootfs (a few GiB
    /// with its images), far below what fills a disk by accident.
    fn default() -> Self {
        UnpackLimits {
            max_bytes: 64 << 30,
            max_entries: 2_000_000,
            keep_free: 512 << 20,
        }
    }
}

impl UnpackLimits {
    /// The defaults, with `max_bytes` from [`LIMIT_ENV`] when it is set.
    pub fn from_env() -> Result<UnpackLimits, RootfsError> {
        let mut limits = UnpackLimits::default();
        if let Some(value) = std::env::var_os(LIMIT_ENV).filter(|v| !v.is_empty()) {
            let text = value.to_string_lossy();
            limits.max_bytes = parse_size(&text).ok_or_else(|| RootfsError::Limit {
                value: text.to_string(),
            })?;
        }
        Ok(limits)
    }
}

/// `123`, `10K`, `512M`, `200G`, `1T` (powers of 1024; `KiB`/`KB`/`k` spellings too).
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    number.checked_mul(1u64 << shift)
}

/// Counts what the tar reader takes from the stream (for positions in errors) and caps
/// what it may take on its own between two entries (see [`MAX_HEADER_BYTES`]).
pub(super) struct Meter<R> {
    pub(super) inner: R,
    pub(super) state: Rc<MeterState>,
}

#[derive(Default)]
pub(super) struct MeterState {
    /// Bytes of the tar stream consumed so far.
    pub(super) offset: Cell<u64>,
    /// What the reader may still take before the next entry; `None` while an entry's
    /// content is being copied (that is bounded by the size checks instead).
    pub(super) budget: Cell<Option<u64>>,
}

impl<R: Read> Read for Meter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let budget = self.state.budget.get();
        let want = match budget {
            None => buf.len(),
            Some(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "more than {} of tar headers, long names or PAX records before one entry, or data where an entry has none",
                        human::bytes(MAX_HEADER_BYTES)
                    ),
                ));
            }
            Some(b) => buf.len().min(usize::try_from(b).unwrap_or(usize::MAX)),
        };
        let n = self.inner.read(&mut buf[..want])?;
        if let Some(b) = budget {
            self.state.budget.set(Some(b.saturating_sub(n as u64)));
        }
        self.state.offset.set(self.state.offset.get() + n as u64);
        Ok(n)
    }
}

/// The running totals of an unpack against its limits.
pub(super) struct Space<'a> {
    pub(super) limits: &'a UnpackLimits,
    pub(super) dest: &'a Path,
    pub(super) unpacked: u64,
    pub(super) entries: u64,
    pub(super) since_check: u64,
}

impl Space<'_> {
    pub(super) fn free(&self) -> io::Result<u64> {
        let st = nix::sys::statvfs::statvfs(self.dest).map_err(io::Error::from)?;
        #[allow(clippy::useless_conversion)] // the field types differ between libcs
        let free = u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size()));
        Ok(free)
    }

    /// Admits one more entry.
    pub(super) fn entry(&mut self) -> Result<(), String> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(format!(
                "the archive has more than {} entries",
                self.limits.max_entries
            ));
        }
        Ok(())
    }

    /// Admits a file of `size` bytes about to be written.
    pub(super) fn file(&mut self, size: u64) -> io::Result<Result<(), String>> {
        if self.unpacked.saturating_add(size) > self.limits.max_bytes {
            return Ok(Err(format!(
                "this entry's {} would pass the limit",
                human::bytes(size)
            )));
        }
        self.room(size, "this entry's")
    }

    /// Counts `n` bytes written of a file with `left` bytes still to come.
    pub(super) fn wrote(&mut self, n: u64, left: u64) -> io::Result<Result<(), String>> {
        self.unpacked += n;
        self.since_check += n;
        if self.since_check < RECHECK_EVERY {
            return Ok(Ok(()));
        }
        self.since_check = 0;
        self.room(left, "the rest of this entry,")
    }

    fn room(&self, need: u64, what: &str) -> io::Result<Result<(), String>> {
        let free = self.free()?;
        Ok(if free.saturating_sub(need) < self.limits.keep_free {
            Err(format!(
                "{what} {} would leave less than {} free",
                human::bytes(need),
                human::bytes(self.limits.keep_free)
            ))
        } else {
            Ok(())
        })
    }
}

/// `512.0 MiB (536870912 bytes)`; plain bytes below 1 KiB.
pub(super) fn size(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else {
        format!("{} ({n} bytes)", human::bytes(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("10K"), Some(10 << 10));
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("200GiB"), Some(200 << 30));
        assert_eq!(parse_size(" 1 T "), Some(1 << 40));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("1.5G"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }
}
