//! The controller-driven face: wire messages in on stdin, events and answers out on stdout
//! (see `installer_proto::wire` for the session). Diagnostics go to stderr; stdout belongs to
//! the protocol.

use crate::apply::Apply;
use crate::clean::{self, CleanRequest};
use crate::facts;
use crate::receive::{ChunkReader, Totals};
use crate::root::HostRoot;
use crate::sink::WireSink;
use installer_proto::wire::{
    AgentMsg, ControllerMsg, PROTOCOL_VERSION, WireError, read_chunk, read_msg, write_msg,
};
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a session ended badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reading from the controller failed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// Writing to the controller failed.
    #[error("writing to the controller: {0}")]
    Io(#[from] std::io::Error),
    /// The controller speaks another protocol version.
    #[error(
        "the controller speaks protocol {0}, this agent {PROTOCOL_VERSION}; use matching builds"
    )]
    Version(u32),
}

/// Serves one session.
pub fn serve<R: BufRead, W: Write + Send + 'static>(
    root: HostRoot,
    mut input: R,
    output: W,
) -> Result<(), ServeError> {
    let out = Arc::new(Mutex::new(output));
    let send = |msg: &AgentMsg| -> Result<(), ServeError> {
        let mut w = out
            .lock()
            .map_err(|_| std::io::Error::other("output lock poisoned"))?;
        write_msg(&mut *w, msg)?;
        Ok(())
    };
    send(&AgentMsg::Hello {
        protocol_version: PROTOCOL_VERSION,
        agent_version: facts::AGENT_VERSION.to_string(),
        arch: facts::machine(),
    })?;
    let sink = Arc::new(WireSink::new(out.clone()));
    let mut apply: Option<Apply> = None;
    // A run whose steps go on while its files arrive: the steps on their own thread, the
    // files received here.
    let mut running: Option<Running> = None;
    let mut chunk = Vec::new();
    while let Some(msg) = read_msg::<_, ControllerMsg>(&mut input)? {
        if let (Some(r), ControllerMsg::Chunk { len }) = (running.as_mut(), &msg)
            && let Some(incoming) = r.incoming.take()
        {
            read_chunk(&mut input, *len, &mut chunk)?;
            let first = std::mem::take(&mut chunk);
            let result = receive_incoming(&incoming, first, &mut input)?;
            send(&received(result))?;
            continue;
        }
        if let Some(r) = running.take() {
            // Anything else waits for the steps: they hold the apply.
            apply = Some(r.finish());
        }
        match msg {
            ControllerMsg::Hello {
                protocol_version, ..
            } => {
                if protocol_version != PROTOCOL_VERSION {
                    let err = ServeError::Version(protocol_version);
                    send(&AgentMsg::Error {
                        message: err.to_string(),
                    })?;
                    return Err(err);
                }
            }
            ControllerMsg::Facts { data_root, cluster } => {
                let f = facts::gather(&root, &data_root, Some(&cluster));
                send(&AgentMsg::Facts(Box::new(f)))?;
            }
            ControllerMsg::Offer { plan, dry_run } => {
                apply = None; // releases an earlier lock first
                match Apply::offer(root.clone(), *plan, dry_run) {
                    Ok(a) => {
                        let need = a.need().clone();
                        apply = Some(a);
                        send(&AgentMsg::Need(need))?;
                    }
                    Err(e) => send(&refusal(&e))?,
                }
            }
            ControllerMsg::Chunk { len } => {
                read_chunk(&mut input, len, &mut chunk)?;
                let first = std::mem::take(&mut chunk);
                let result = match apply.as_mut() {
                    Some(a) => receive(a, first, &mut input),
                    None => {
                        drain(&mut input)?;
                        Ok(Err(
                            "file content arrived before a plan was offered".to_string()
                        ))
                    }
                }?;
                send(&received(result))?;
            }
            ControllerMsg::FilesEnd => {
                let result = match apply.as_mut() {
                    Some(a) => a
                        .receiver()
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.finish().map_err(|e| e.to_string())),
                    None => Err("no plan was offered".to_string()),
                };
                send(&received(result))?;
            }
            ControllerMsg::Publish { files } => match apply.as_mut() {
                Some(a) => match a.publish(&files) {
                    Ok(published) => send(&AgentMsg::Published(published))?,
                    Err(e) => send(&refusal(&e))?,
                },
                None => send(&AgentMsg::Error {
                    message: "Publish before Offer: no rootfs to publish".into(),
                })?,
            },
            ControllerMsg::Fetch { sources } => match apply.as_mut() {
                Some(a) => match a.fetch(&sources) {
                    Ok(fetched) => send(&AgentMsg::Fetched(fetched))?,
                    Err(e) => send(&refusal(&e))?,
                },
                None => send(&AgentMsg::Error {
                    message: "Fetch before Offer: no plan says what to fetch".into(),
                })?,
            },
            ControllerMsg::Run { force, stop_after } => match apply.as_mut() {
                Some(a) => match a.expect_files() {
                    Ok(Some(incoming)) => {
                        let Some(a) = apply.take() else {
                            unreachable!("matched Some above")
                        };
                        running = Some(Running::start(
                            a,
                            incoming,
                            force,
                            stop_after,
                            sink.clone(),
                            out.clone(),
                        ));
                    }
                    Ok(None) => {
                        let outcome = a.run(force, stop_after, &*sink);
                        send(&AgentMsg::Done(with_usage(outcome)))?;
                    }
                    Err(e) => send(&refusal(&e))?,
                },
                None => send(&AgentMsg::Error {
                    message: "Run before Offer: no plan to run".into(),
                })?,
            },
            ControllerMsg::Clean {
                cluster,
                data_root,
                keep_rootfs,
                plugins,
                env,
                remove_agent,
                force,
            } => {
                apply = None;
                let req = CleanRequest {
                    cluster,
                    data_root,
                    keep_rootfs,
                    plugins,
                    env,
                    remove_agent,
                    force,
                    script_timeout: Duration::from_secs(
                        installer_proto::plan::Timeouts::default().script_secs,
                    ),
                };
                match clean::clean(&root, &req, &*sink) {
                    Ok(outcome) => send(&AgentMsg::Done(with_usage(outcome)))?,
                    Err(e) => send(&refusal(&e))?,
                }
            }
            ControllerMsg::Bye => break,
        }
    }
    if let Some(r) = running.take() {
        r.finish();
    }
    Ok(())
}

/// Steps running on their own thread while their files arrive.
struct Running {
    /// Where the files go, until they are received.
    incoming: Option<crate::apply::Incoming>,
    arrivals: Arc<crate::incoming::Arrivals>,
    steps: std::thread::JoinHandle<Apply>,
}

impl Running {
    /// Runs `apply`'s steps on a thread; it answers `Done` itself.
    fn start<W: Write + Send + 'static>(
        mut apply: Apply,
        incoming: crate::apply::Incoming,
        force: bool,
        stop_after: Option<installer_proto::plan::StepKind>,
        sink: Arc<WireSink<W>>,
        out: Arc<Mutex<W>>,
    ) -> Running {
        let arrivals = incoming.arrivals.clone();
        let steps = std::thread::spawn(move || {
            let outcome = apply.run(force, stop_after, &*sink);
            if let Ok(mut w) = out.lock() {
                // A broken stream is the controller gone; the session ends on its own.
                let _ = write_msg(&mut *w, &AgentMsg::Done(with_usage(outcome)));
            }
            apply
        });
        Running {
            incoming: Some(incoming),
            arrivals,
            steps,
        }
    }

    /// Waits for the steps and hands back the apply. Files that did not come by now will
    /// not: the steps waiting for them are told so.
    fn finish(self) -> Apply {
        self.arrivals
            .fail("the controller sent no more files".to_string());
        match self.steps.join() {
            Ok(apply) => apply,
            // The steps' thread does not panic (no unwrap there); if it did, that is a bug
            // worth the agent's exit.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Receives the stream that starts with `first` into `incoming` while the steps run;
/// a refused stream stops the steps waiting for what it did not bring.
fn receive_incoming<R: BufRead>(
    incoming: &crate::apply::Incoming,
    first: Vec<u8>,
    input: &mut R,
) -> Result<Result<Totals, String>, ServeError> {
    let result = receive_into(incoming.receiver(), first, input)?;
    if let Err(why) = &result {
        incoming.arrivals.fail(why.clone());
    }
    Ok(result)
}

/// The answer to an `Offer` or `Clean` the agent could not take on: `Busy` when another
/// agent holds the host lock (the controller reports that as a refusal), else `Error`.
fn refusal(e: &crate::error::ApplyError) -> AgentMsg {
    let message = e.to_string();
    if e.is_busy() {
        AgentMsg::Busy { message }
    } else {
        AgentMsg::Error { message }
    }
}

/// Reads and discards chunks up to `FilesEnd`, keeping the stream in step after a refusal.
/// The answer to file content or its end: what was received so far, or why not.
fn received(result: Result<Totals, String>) -> AgentMsg {
    match result {
        Ok(t) => AgentMsg::Received {
            files: t.files,
            bytes: t.bytes,
        },
        Err(message) => AgentMsg::Error { message },
    }
}

fn drain<R: BufRead>(input: &mut R) -> Result<(), ServeError> {
    let mut buf = Vec::new();
    while let Some(msg) = read_msg::<_, ControllerMsg>(input)? {
        match msg {
            ControllerMsg::Chunk { len } => read_chunk(input, len, &mut buf)?,
            ControllerMsg::FilesEnd => break,
            _ => {}
        }
    }
    Ok(())
}

/// Receives the tar stream that starts with `first` and runs until `FilesEnd`. The outer
/// `Err` is a broken session; the inner one a refused transfer (reported, session goes on).
fn receive<R: BufRead>(
    apply: &mut Apply,
    first: Vec<u8>,
    input: &mut R,
) -> Result<Result<Totals, String>, ServeError> {
    let receiver = match apply.receiver() {
        Ok(r) => r,
        Err(e) => {
            drain(input)?;
            return Ok(Err(e.to_string()));
        }
    };
    let result = receive_into(receiver, first, input)?;
    if result.is_ok() {
        apply.received();
    }
    Ok(result)
}

/// Feeds the stream that starts with `first` and runs until `FilesEnd` to `receiver` on a
/// worker thread, and finishes it.
fn receive_into<R: BufRead>(
    receiver: crate::receive::Receiver<'_>,
    first: Vec<u8>,
    input: &mut R,
) -> Result<Result<Totals, String>, ServeError> {
    std::thread::scope(|s| -> Result<Result<Totals, String>, ServeError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let worker = s.spawn(move || {
            let mut receiver = receiver;
            receiver.accept_tar_zst(ChunkReader::new(rx))?;
            receiver.finish()
        });
        // Once the worker stops (a refused entry), sends fail; keep reading to FilesEnd.
        let _ = tx.send(first);
        let mut buf = Vec::new();
        loop {
            match read_msg::<_, ControllerMsg>(input)? {
                Some(ControllerMsg::Chunk { len }) => {
                    read_chunk(input, len, &mut buf)?;
                    let _ = tx.send(std::mem::take(&mut buf));
                }
                Some(ControllerMsg::FilesEnd) | None => break,
                Some(_) => {}
            }
        }
        drop(tx);
        Ok(match worker.join() {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("the receiving thread panicked".into()),
        })
    })
}

/// `outcome` with the agent's peak resident memory so far, for the controller's report.
fn with_usage(mut outcome: installer_proto::event::Outcome) -> installer_proto::event::Outcome {
    outcome.peak_rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| peak_rss_kib(&status));
    outcome
}

/// The `VmHWM:` line of a `/proc/<pid>/status` text, in KiB.
fn peak_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_peak_resident_memory_is_read_from_the_status_text() {
        let status =
            "Name:\tinstaller-agent\nVmPeak:\t  20000 kB\nVmHWM:\t    8123 kB\nVmRSS:\t 7000 kB\n";
        assert_eq!(super::peak_rss_kib(status), Some(8123));
        assert_eq!(super::peak_rss_kib("Name:\tx\n"), None);
        let own = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(super::peak_rss_kib(&own).is_some_and(|k| k > 0), "{own}");
    }
}
