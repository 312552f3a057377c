//! One apply on this host: validate the plan, take the cluster lock, learn what content the
//! host lacks, receive it, then run the steps in order — skipping those whose inputs did not
//! change, stopping at the first failure (the next apply resumes there).

use crate::clusters::{self, ClusterRef};
use crate::error::ApplyError;
use crate::fsutil;
use crate::incoming::{self, Arrivals};
use crate::journal::{Journal, StepRecord};
use crate::lock::HostLock;
use crate::owner::{self, Ownership};
use crate::paths::ClusterPaths;
use crate::receive::Receiver;
use crate::recover;
use crate::root::HostRoot;
use crate::sink::Sink;
use crate::steps::{self, Ctx, Step};
use installer_proto::event::{Event, Outcome};
use installer_proto::manifest::join_rel;
use installer_proto::plan::{Plan, StepKind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Where the files a running apply still expects go: owned, so they can be received while
/// the steps run on another thread.
pub(crate) struct Incoming {
    /// The plan's manifest.
    pub manifest: installer_proto::manifest::Manifest,
    /// The staging directory.
    pub staging: PathBuf,
    /// The files to come.
    pub wanted: Vec<String>,
    /// Told of each verified file.
    pub arrivals: Arc<Arrivals>,
}

impl Incoming {
    /// A receiver for the files to come.
    pub(crate) fn receiver(&self) -> Receiver<'_> {
        Receiver::new(&self.manifest, &self.wanted, &self.staging).telling(self.arrivals.clone())
    }
}

pub(crate) use installer_proto::wire::Need;

/// An apply in progress.
pub(crate) struct Apply {
    root: HostRoot,
    plan: Plan,
    paths: ClusterPaths,
    dry_run: bool,
    need: Need,
    journal: Option<Journal>,
    /// The last watched step's after-state, while no other step has run since.
    carry: Option<crate::steps::watched::Carry>,
    /// The files still arriving while this apply's steps run.
    incoming: Option<Arc<Arrivals>>,
    _lock: Option<HostLock>,
}

impl Apply {
    /// Accepts a plan: validates it and, unless `dry_run`, takes the host lock, claims the
    /// cluster directory (refusing one this product did not create, and files another
    /// cluster on this host owns), opens the journal and clears what a crashed agent left.
    pub(crate) fn offer(root: HostRoot, plan: Plan, dry_run: bool) -> Result<Apply, ApplyError> {
        plan.validate()?;
        let paths = ClusterPaths::new(&root, &plan.data_root, &plan.cluster);
        let ownership = owner::check(&paths, &plan.cluster);
        if let Ownership::Foreign(why) = &ownership {
            return Err(ApplyError::Foreign(format!(
                "{why}; apply never takes over a directory it did not create — choose another spec.dataRoot or cluster name, or move it aside"
            )));
        }
        let me = ClusterRef {
            cluster: plan.cluster.clone(),
            data_root: plan.data_root.clone(),
        };
        let (lock, journal) = if dry_run {
            (None, None)
        } else {
            let lock = HostLock::take(&root, &format!("apply of cluster {}", plan.cluster))?;
            let bins: Vec<String> = steps::bin::bin_files(&plan)
                .map(|e| {
                    format!(
                        "{}/{}",
                        steps::bin::BIN_DIR,
                        e.path.trim_start_matches("bin/")
                    )
                })
                .collect();
            let names: Vec<String> = plan
                .hosts_entries
                .iter()
                .flat_map(|e| e.names.iter().cloned())
                .collect();
            if let Some(what) = clusters::overlap(&root, &me, &bins, &names) {
                return Err(ApplyError::Overlap(format!(
                    "{what}; two clusters whose files overlap cannot share a host — clean that cluster first, or give this one other hosts"
                )));
            }
            let created = match ownership {
                Ownership::Absent => {
                    let created = fsutil::create_dirs(&paths.cluster_dir)?;
                    owner::claim(&paths, &plan.cluster, true)?;
                    created
                }
                Ownership::Empty => {
                    owner::claim(&paths, &plan.cluster, false)?;
                    Vec::new()
                }
                _ => Vec::new(),
            };
            let mut journal = Journal::open(&paths.state, &plan.cluster, &plan.data_root)?;
            // The cluster directory itself goes with the marker; only its parents are
            // recorded, so clean removes them when they are empty.
            let host: Vec<String> = created
                .iter()
                .filter(|p| **p != paths.cluster_dir)
                .map(|p| root.host_path_of(p))
                .collect();
            if !host.is_empty() {
                journal.update(|r| {
                    for h in host {
                        if !r.created_dirs.contains(&h) {
                            r.created_dirs.push(h);
                        }
                    }
                })?;
            }
            clusters::register(&root, &me)?;
            recover::after_crash(&root, &paths, &mut journal)?;
            (Some(lock), Some(journal))
        };
        let mut apply = Apply {
            root,
            plan,
            paths,
            dry_run,
            need: Need::default(),
            journal,
            carry: None,
            incoming: None,
            _lock: lock,
        };
        apply.need = apply.compute_need();
        Ok(apply)
    }

    /// What the host lacks.
    pub(crate) fn need(&self) -> &Need {
        &self.need
    }

    /// Compares the manifest with the rootfs copy (and content already staged by an
    /// interrupted transfer).
    fn compute_need(&self) -> Need {
        let mut index = crate::index::load(&self.paths.state);
        let mut need = Need::default();
        for entry in self.plan.manifest.files() {
            let want = entry.sha256().unwrap_or_default();
            let staged = join_rel(&self.paths.staging, &entry.path)
                .ok()
                .and_then(|p| installer_proto::manifest::sha256_file(&p).ok());
            let placed = join_rel(&self.paths.rootfs, &entry.path)
                .ok()
                .and_then(|p| index.file_hash(&p).ok().flatten());
            if staged.as_deref() == Some(want) || placed.as_deref() == Some(want) {
                need.have_files += 1;
                need.have_bytes += entry.size();
            } else {
                need.files.push(entry.path.clone());
                need.bytes += entry.size();
            }
        }
        if !self.dry_run {
            // Only a cache: failing to save it costs time on the next apply, nothing else.
            let _ = index.save();
        }
        need
    }

    /// A receiver for the needed files.
    pub(crate) fn receiver(&self) -> Result<Receiver<'_>, ApplyError> {
        self.staging("a dry run receives no files")?;
        Ok(Receiver::new(
            &self.plan.manifest,
            &self.need.files,
            &self.paths.staging,
        ))
    }

    /// The staging directory, made when missing; refused in a dry run (`why`), which
    /// writes nothing.
    fn staging(&self, why: &str) -> Result<&std::path::Path, ApplyError> {
        if self.dry_run {
            return Err(ApplyError::Protocol(why.into()));
        }
        std::fs::create_dir_all(&self.paths.staging)
            .map_err(fsutil::ctx(&self.paths.staging, "creating"))?;
        Ok(&self.paths.staging)
    }

    /// Pushes `files` into this registry host's registry for the other hosts (see
    /// [`crate::fanout`]).
    pub(crate) fn publish(
        &mut self,
        files: &[installer_proto::fanout::BlobRef],
    ) -> Result<installer_proto::fanout::Published, ApplyError> {
        let journal = self
            .journal
            .as_mut()
            .ok_or_else(|| ApplyError::Protocol("a dry run publishes nothing".into()))?;
        Ok(crate::fanout::publish(
            &self.plan,
            &self.paths,
            journal,
            files,
        ))
    }

    /// Fetches what this host lacks from the registry at `sources`; what could not be
    /// fetched stays needed (the controller's stream sends it).
    pub(crate) fn fetch(
        &mut self,
        sources: &[String],
    ) -> Result<installer_proto::fanout::Fetched, ApplyError> {
        let staging = self.staging("a dry run fetches nothing")?;
        let wanted = self.need.files.clone();
        let fetched = crate::fanout::fetch(&self.plan, staging, &wanted, sources);
        let left: std::collections::BTreeSet<&str> =
            fetched.left.iter().map(String::as_str).collect();
        self.need.files.retain(|f| left.contains(f.as_str()));
        self.need.bytes = self
            .need
            .files
            .iter()
            .filter_map(|f| self.plan.manifest.get(f))
            .map(|e| e.size())
            .sum();
        Ok(fetched)
    }

    /// When files are still needed: the steps will run while they arrive. Returns where
    /// they go (for the receiving side); the steps wait for what each needs.
    pub(crate) fn expect_files(&mut self) -> Result<Option<Incoming>, ApplyError> {
        if self.dry_run || self.need.files.is_empty() || self.incoming.is_some() {
            return Ok(None);
        }
        self.staging("a dry run receives no files")?;
        let arrivals = Arc::new(Arrivals::new(&self.need.files));
        self.incoming = Some(arrivals.clone());
        Ok(Some(Incoming {
            manifest: self.plan.manifest.clone(),
            staging: self.paths.staging.clone(),
            wanted: self.need.files.clone(),
            arrivals,
        }))
    }

    /// Waits until the files a step of `kind` needs arrived (`None`: every file) and moves
    /// what arrived into place; why not, when the transfer stopped first.
    fn await_files(&self, kind: Option<StepKind>) -> Result<(), String> {
        let Some(arrivals) = &self.incoming else {
            return Ok(());
        };
        arrivals.wait_for(&|p| kind.is_none_or(|k| incoming::needs(k, p)))?;
        steps::place::place_late(&self.plan, &self.paths, &arrivals.take_arrived())?;
        Ok(())
    }

    /// Marks the needed files as received (after the receiver finished).
    pub(crate) fn received(&mut self) {
        self.need.files.clear();
    }

    /// Reads the current content of a rootfs file (staged first, then placed).
    fn read(&self, rel: &str) -> Option<String> {
        let staged = join_rel(&self.paths.staging, rel).ok()?;
        std::fs::read_to_string(&staged)
            .ok()
            .or_else(|| std::fs::read_to_string(join_rel(&self.paths.rootfs, rel).ok()?).ok())
    }

    /// Runs (or, in a dry run, reports) the steps up to and including `stop_after`'s kind.
    pub(crate) fn run(
        &mut self,
        force: bool,
        stop_after: Option<StepKind>,
        sink: &dyn Sink,
    ) -> Outcome {
        let mut outcome = Outcome {
            ok: true,
            ..Outcome::default()
        };
        let steps: Vec<Step> = steps::steps_for(&self.plan)
            .into_iter()
            .filter(|s| stop_after.is_none_or(|k| s.kind <= k))
            .collect();
        if let Some(journal) = self.journal.as_mut()
            && let Err(e) = journal.update(|r| r.env = self.plan.env.clone())
        {
            return failed(outcome, "journal", e.to_string());
        }
        let staged_any = self.incoming.is_some()
            || std::fs::read_dir(&self.paths.staging).is_ok_and(|mut d| d.next().is_some());
        if !staged_any && !self.dry_run {
            // An empty staging directory left by a transfer that needed nothing.
            let _ = std::fs::remove_dir(&self.paths.staging);
        }
        for step in steps {
            if !sink.alive() {
                return failed(
                    outcome,
                    &step.id,
                    "the controller went away; no further step was started".into(),
                );
            }
            // Its files first: the input hash reads them. (place-rootfs places what is there.)
            if step.kind != StepKind::PlaceRootfs
                && let Err(why) = self.await_files(Some(step.kind))
            {
                return failed(
                    outcome,
                    &step.id,
                    format!("its files did not arrive: {why}"),
                );
            }
            let hash = step.input_hash(&self.plan, &self.root, &|rel| self.read(rel));
            let last = self.recorded(&step.id);
            let unchanged = last.as_ref().is_some_and(|r| r.ok && r.input_hash == hash)
                && !(step.kind == StepKind::PlaceRootfs && staged_any);
            // Unchanged inputs are not enough: what the step left must still be there.
            let drifted = if unchanged && !force {
                self.drift(&step)
            } else {
                None
            };
            if unchanged && !force && drifted.is_none() {
                outcome.skipped += 1;
                sink.event(Event::StepSkipped {
                    step: step.id.clone(),
                    reason: "inputs unchanged since it last succeeded".into(),
                });
                continue;
            }
            let reason = match (&last, drifted) {
                _ if force => "forced".to_string(),
                (_, Some(what)) => format!("drifted: {what}"),
                (None, _) => "never ran".to_string(),
                (Some(r), _) if !r.ok => "resumes after a failure".to_string(),
                (Some(_), _) => "inputs changed".to_string(),
            };
            if self.dry_run {
                outcome.ran += 1;
                sink.event(Event::WouldRun {
                    step: step.id.clone(),
                    reason,
                });
                continue;
            }
            let Some(journal) = self.journal.as_mut() else {
                return failed(
                    outcome,
                    &step.id,
                    "internal: no journal outside a dry run".into(),
                );
            };
            let record = StepRecord {
                input_hash: hash.clone(),
                ok: false,
            };
            if let Err(e) = journal.update(|r| {
                r.started.insert(step.id.clone());
                r.steps.insert(step.id.clone(), record);
                r.failed_step = None;
            }) {
                return failed(outcome, &step.id, e.to_string());
            }
            sink.event(Event::StepStarted {
                step: step.id.clone(),
                kind: step.kind,
                reason,
            });
            let started = Instant::now();
            if !step.is_watched() {
                // It changes watched trees itself: the next watched step walks afresh.
                self.carry = None;
            }
            let mut ctx = Ctx {
                root: &self.root,
                plan: &self.plan,
                paths: &self.paths,
                journal,
                sink,
                carry: &mut self.carry,
                incoming: self.incoming.as_deref(),
            };
            let result = step.run(&mut ctx);
            let journal = ctx.journal;
            match result {
                Ok(written) => {
                    let saved = journal.update(|r| {
                        r.steps.insert(
                            step.id.clone(),
                            StepRecord {
                                input_hash: hash,
                                ok: true,
                            },
                        );
                    });
                    if let Err(e) = saved {
                        return failed(outcome, &step.id, e.to_string());
                    }
                    outcome.ran += 1;
                    sink.event(Event::StepDone {
                        step: step.id.clone(),
                        duration_ms: started.elapsed().as_millis() as u64,
                        files: written.files,
                        bytes: written.bytes,
                    });
                }
                Err(error) => {
                    let _ = journal.update(|r| r.failed_step = Some(step.id.clone()));
                    let message = error.message.clone();
                    sink.event(Event::StepFailed {
                        step: step.id.clone(),
                        error,
                    });
                    return failed(outcome, &step.id, message);
                }
            }
        }
        if self.incoming.is_some() && !self.dry_run {
            // The pass ends with the rootfs copy whole, whatever its steps needed.
            if let Err(why) = self.await_files(None) {
                return failed(
                    outcome,
                    "place-rootfs",
                    format!("files did not arrive: {why}"),
                );
            }
            self.incoming = None;
            self.need.files.clear();
            // Every file is in place: what is left of staging is its directories.
            if let Err(e) = std::fs::remove_dir_all(&self.paths.staging)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return failed(
                    outcome,
                    "place-rootfs",
                    format!("{}: removing: {e}", self.paths.staging.display()),
                );
            }
        }
        outcome
    }

    /// Why what `step` left is no longer there, if it is not.
    fn drift(&self, step: &Step) -> Option<String> {
        let loaded;
        let journal = match &self.journal {
            Some(j) => j,
            None => {
                loaded = Journal::load(&self.paths.state).ok().flatten()?;
                &loaded
            }
        };
        step.drift(&self.root, &self.plan, &self.paths, journal)
    }

    fn recorded(&self, id: &str) -> Option<StepRecord> {
        match &self.journal {
            Some(j) => j.record.steps.get(id).cloned(),
            // A dry run reads the journal without opening it for writing.
            None => Journal::load(&self.paths.state)
                .ok()
                .flatten()
                .and_then(|j| j.record.steps.get(id).cloned()),
        }
    }
}

fn failed(mut outcome: Outcome, step: &str, message: String) -> Outcome {
    outcome.ok = false;
    outcome.failed_step = Some(step.to_string());
    outcome.error = Some(message);
    outcome
}
