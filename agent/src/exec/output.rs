//! Reading a child's stdout and stderr as lines, in one thread.
//!
//! One reader for both pipes keeps the lines in the order the child wrote them as far as
//! the kernel shows it. Two reader threads would race: a script that prints thirty lines
//! and then its error could see the error land in the tail before the thirty lines and be
//! pushed out of it.

use installer_proto::event::Stream;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io::Read;
use std::os::fd::AsFd;

/// Bytes taken from a pipe per wakeup.
const CHUNK: usize = 64 * 1024;

/// One pipe being read.
struct Pipe<R> {
    stream: Stream,
    reader: R,
    /// Bytes after the last newline seen.
    partial: Vec<u8>,
}

impl<R: Read> Pipe<R> {
    /// Reads once; returns `false` at end of file (after handing over the unfinished line).
    fn read_once(
        &mut self,
        buf: &mut [u8],
        on_line: &mut dyn FnMut(Stream, String) -> bool,
    ) -> Option<bool> {
        let n = match self.reader.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Some(true),
            Err(_) => 0,
        };
        if n == 0 {
            if !self.partial.is_empty() {
                let rest = std::mem::take(&mut self.partial);
                if !on_line(self.stream, to_line(&rest)) {
                    return None;
                }
            }
            return Some(false);
        }
        self.partial.extend_from_slice(&buf[..n]);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            if !on_line(self.stream, to_line(&line[..end])) {
                return None;
            }
        }
        Some(true)
    }
}

/// A line as text: invalid UTF-8 replaced, a trailing `\r` dropped.
fn to_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches('\r')
        .to_string()
}

/// Hands every line of `stdout` and `stderr` to `on_line` until both are closed or
/// `on_line` returns `false`.
///
/// When both pipes have data at the same wakeup, stdout's is taken first: a failing script
/// usually writes its error to stderr last, and this keeps that error at the end.
pub(super) fn pump<O, E>(stdout: O, stderr: E, mut on_line: impl FnMut(Stream, String) -> bool)
where
    O: Read + AsFd,
    E: Read + AsFd,
{
    let mut out = Some(Pipe {
        stream: Stream::Stdout,
        reader: stdout,
        partial: Vec::new(),
    });
    let mut err = Some(Pipe {
        stream: Stream::Stderr,
        reader: stderr,
        partial: Vec::new(),
    });
    let mut buf = vec![0u8; CHUNK];
    while out.is_some() || err.is_some() {
        let ready = {
            let mut fds = Vec::with_capacity(2);
            if let Some(p) = &out {
                fds.push(PollFd::new(p.reader.as_fd(), PollFlags::POLLIN));
            }
            if let Some(p) = &err {
                fds.push(PollFd::new(p.reader.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                // Nothing sensible can be read any more.
                Err(_) => return,
            }
            let mut ready = fds
                .iter()
                .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()));
            let out_ready = out.is_some() && ready.next().unwrap_or(false);
            let err_ready = err.is_some() && ready.next().unwrap_or(false);
            (out_ready, err_ready)
        };
        if (ready.0 && !take(&mut out, &mut buf, &mut on_line))
            || (ready.1 && !take(&mut err, &mut buf, &mut on_line))
        {
            return;
        }
    }
}

/// Reads once from a ready pipe, closing it at end of file; `false` when `on_line` asked to
/// stop.
fn take<R: Read>(
    pipe: &mut Option<Pipe<R>>,
    buf: &mut [u8],
    on_line: &mut dyn FnMut(Stream, String) -> bool,
) -> bool {
    let Some(p) = pipe.as_mut() else {
        return true;
    };
    match p.read_once(buf, on_line) {
        Some(true) => true,
        Some(false) => {
            *pipe = None;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn lines_of(script: &str) -> Vec<(Stream, String)> {
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let mut lines = Vec::new();
        pump(stdout, stderr, |s, l| {
            lines.push((s, l));
            true
        });
        child.wait().unwrap();
        lines
    }

    #[test]
    fn an_error_written_after_many_lines_comes_last() {
        for _ in 0..50 {
            let lines = lines_of("for i in $(seq 1 30); do echo line $i; done; echo boom >&2");
            assert_eq!(lines.len(), 31);
            assert_eq!(lines[30], (Stream::Stderr, "boom".to_string()));
        }
    }

    #[test]
    fn an_unfinished_last_line_and_crlf_are_kept_as_lines() {
        let lines = lines_of("printf 'a\\r\\nb'; printf 'c' >&2");
        assert!(lines.contains(&(Stream::Stdout, "a".to_string())));
        assert!(lines.contains(&(Stream::Stdout, "b".to_string())));
        assert!(lines.contains(&(Stream::Stderr, "c".to_string())));
    }

    #[test]
    fn a_false_from_the_callback_stops_reading() {
        let mut child = Command::new("sh")
            .args(["-c", "seq 1 100000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let mut seen = 0;
        pump(stdout, stderr, |_, _| {
            seen += 1;
            seen < 5
        });
        assert_eq!(seen, 5);
        let _ = child.kill();
        let _ = child.wait();
    }
}
