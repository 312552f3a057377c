//! Reading the Clusterfile from disk: a regular file only, at most [`MAX_BYTES`], UTF-8.
//!
//! The path is checked before it is opened and the opened file again, because the path
//! could be replaced in between; the open itself is non-blocking, so not even that
//! replacement (a FIFO with no writer) can make `installer` hang.

use super::ClusterfileError;
use super::bounds::MAX_BYTES;
use std::fs::{self, File, Metadata};
use std::io::Read;
use std::path::Path;

/// The text of the Clusterfile at `path`.
pub(super) fn read(path: &Path) -> Result<String, ClusterfileError> {
    let io = |source| ClusterfileError::Read {
        path: path.to_path_buf(),
        source,
    };
    regular(path, &fs::metadata(path).map_err(io)?)?;
    let file = open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    regular(path, &meta)?;
    // One byte more than the limit tells a file at the limit from a larger one.
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_BYTES + 1) as usize);
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let name = path.display().to_string();
    too_large(&name, &bytes)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let (line, column) = position_of_byte(bytes, at);
        ClusterfileError::Invalid {
            file: name,
            line,
            column,
            message: format!(
                "byte 0x{:02X} is not UTF-8 text; expected a Clusterfile saved as UTF-8",
                bytes[at]
            ),
        }
    })
}

/// Refuses `bytes` longer than [`MAX_BYTES`], pointing at where the limit is passed.
pub(super) fn too_large(name: &str, bytes: &[u8]) -> Result<(), ClusterfileError> {
    if bytes.len() as u64 <= MAX_BYTES {
        return Ok(());
    }
    let (line, column) = position_of_byte(bytes, MAX_BYTES as usize);
    Err(ClusterfileError::Invalid {
        file: name.to_string(),
        line,
        column,
        message: format!(
            "the Clusterfile goes on past {MAX_BYTES} bytes (4 MiB) here, the most installer reads; expected a Clusterfile of a few KiB (is -f naming the right file?)"
        ),
    })
}

/// The 1-based line and column (in characters) of byte `at`; bytes that are not UTF-8
/// count as one character each.
fn position_of_byte(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    // A character starts at every byte that is not a UTF-8 continuation byte.
    let column = 1 + before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count();
    (line, column)
}

/// Refuses anything but a regular file, naming what it is.
fn regular(path: &Path, meta: &Metadata) -> Result<(), ClusterfileError> {
    if meta.is_file() {
        return Ok(());
    }
    Err(ClusterfileError::NotAFile {
        path: path.to_path_buf(),
        what: kind(meta),
    })
}

#[cfg(unix)]
fn kind(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn kind(meta: &Metadata) -> &'static str {
    if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Opens for reading without blocking: opening a FIFO with no writer would wait forever.
/// (Reads from a regular file are not affected by the flag.)
#[cfg(unix)]
fn open(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
}

#[cfg(not(unix))]
fn open(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_positions_count_characters() {
        let text = "ab\nxé\u{FF}z".as_bytes();
        assert_eq!(position_of_byte(text, 0), (1, 1));
        assert_eq!(position_of_byte(text, 3), (2, 1));
        // 'é' is two bytes, one column.
        assert_eq!(position_of_byte(text, 6), (2, 3));
        assert_eq!(position_of_byte(b"\n\n\xff", 2), (3, 1));
    }
}
