//! The Clusterfile's kubeadm documents merged into the rootfs's `etc/kubeadm.yml`, the way
//! sealer merges them before it runs kubeadm (sealer
//! `pkg/runtime/kubernetes/kubeadm/kubeadm_config.go`: `NewKubeadmConfig`, `Merge`,
//! `LoadFromClusterfile`, `LoadKubeadmConfigs`; called from `initKubeadmConfig` in
//! `pkg/runtime/kubernetes/init.go` with `<rootfs>/etc/kubeadm.yml`). The product does not
//! run kubeadm; whatever bootstraps next reads the merged file.
//!
//! Rules:
//! - Kinds: `InitConfiguration`, `ClusterConfiguration`, `JoinConfiguration`
//!   (`kubeadm.k8s.io/<version>`), `KubeletConfiguration` (`kubelet.config.k8s.io/…`),
//!   `KubeProxyConfiguration` (`kubeproxy.config.k8s.io/…`) — sealer's five. Per kind,
//!   the Clusterfile's document is merged over the rootfs's field by field (`fields.rs`).
//! - A kind only the Clusterfile has is added, after the rootfs's documents, in sealer's
//!   writing order (Init, Cluster, Kubelet, KubeProxy, Join). sealer would also fill it
//!   from its built-in defaults (kubeadm v1.19-era values such as the dockershim socket);
//!   those are not the image's, so the document is taken as the Clusterfile wrote it.
//! - apiVersion: a merged document keeps the rootfs's, which was written for the image's
//!   kubeadm; an added kubeadm kind takes the version of the rootfs's other kubeadm
//!   documents, if any (sealer writes one kubeadm version for all three kinds, chosen from
//!   `kubernetesVersion`, whatever the Clusterfile said). Fields are not converted between
//!   versions. A differing apiVersion is reported as a note.
//! - The rootfs's other documents (another kind, or a kind of another API group) and the
//!   kubeadm kinds the Clusterfile does not set are kept as they are, text and comments;
//!   a merged document is rewritten (its leading comments kept, the ones inside lost) in
//!   place. sealer rewrites the whole file from Go types and drops all of that.
//! - A kind given twice on one side is refused, as kubeadm refuses it; sealer would use
//!   the first silently. A Clusterfile document of another kind, or without
//!   `apiVersion`/`kind`, is refused.
//! - No rootfs file (`None`): the Clusterfile's documents alone. sealer fails when the
//!   file is missing; the plan refuses kubeadm documents for a rootfs without
//!   `etc/kubeadm.yml.tmpl` before anything runs (`plan::Plan::validate`).
//! - No Clusterfile documents: the rootfs text, unchanged.
//!
//! What sealer does around the merge is its kubeadm runtime's, not the merge's, and is
//! not copied: it overwrites some fields with its own values between the two sides
//! (`controlPlaneEndpoint`, `localAPIEndpoint.advertiseAddress`, `cgroupDriver`, the
//! `etcd-servers` argument, a VIP in `ipvs.excludeCIDRs`) and fills defaults afterwards
//! (`dnsDomain`, `imageRepository`, a bootstrap token). Here the rootfs's template gives
//! such host values from the env, and a value the Clusterfile sets is kept.

mod docs;
mod fields;

use yaml_serde::{Mapping, Value};

/// The rootfs file the documents are merged into.
pub const KUBEADM_FILE: &str = "etc/kubeadm.yml";

/// The template it is rendered from; the merge happens after rendering.
pub const KUBEADM_TEMPLATE: &str = "etc/kubeadm.yml.tmpl";

/// sealer's kinds with their API group, in the order sealer writes them.
pub const KINDS: [(&str, &str); 5] = [
    ("InitConfiguration", "kubeadm.k8s.io"),
    ("ClusterConfiguration", "kubeadm.k8s.io"),
    ("KubeletConfiguration", "kubelet.config.k8s.io"),
    ("KubeProxyConfiguration", "kubeproxy.config.k8s.io"),
    ("JoinConfiguration", "kubeadm.k8s.io"),
];

/// Where a document is, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Where {
    /// In the rootfs file, the section starting at this 1-based line.
    Rootfs {
        /// The line.
        line: usize,
    },
    /// The Clusterfile's kubeadm document of this 1-based number (counting only those).
    Clusterfile {
        /// The number.
        number: usize,
    },
}

impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Where::Rootfs { line } => write!(f, "{KUBEADM_FILE}, the document at line {line}"),
            Where::Clusterfile { number } => {
                write!(f, "the Clusterfile's kubeadm document {number}")
            }
        }
    }
}

/// Why the documents cannot be merged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KubeadmError {
    /// A document is not YAML.
    #[error("{at}: not valid YAML: {reason}")]
    Yaml {
        /// Which document.
        at: Where,
        /// The parser's message.
        reason: String,
    },
    /// A document is YAML but not what its side must hold.
    #[error("{at}: {reason}")]
    Document {
        /// Which document.
        at: Where,
        /// What is wrong.
        reason: String,
    },
    /// One side gives a kind twice.
    #[error(
        "{second}: a second {kind} (the first is {first}); kubeadm takes one document of each kind, so keep one"
    )]
    Duplicate {
        /// The kind.
        kind: String,
        /// The first document of the kind.
        first: Where,
        /// The second.
        second: Where,
    },
    /// The merged document cannot be written as YAML.
    #[error("writing the merged {kind}: {reason}")]
    Write {
        /// The kind.
        kind: String,
        /// The serializer's message.
        reason: String,
    },
}

/// The merged file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    /// The multi-document YAML to write as `etc/kubeadm.yml`.
    pub text: String,
    /// What deserves a word: a Clusterfile value that counted as unset, an apiVersion
    /// that was not taken. One line each, in document order.
    pub notes: Vec<String>,
}

/// A kubeadm document of the Clusterfile, checked.
struct CfDoc {
    kind: usize,
    api_version: String,
    at: Where,
    body: Mapping,
}

/// The index in [`KINDS`] of a document's kind, when it is one of sealer's in its group.
fn kind_index(doc: &Mapping) -> Option<usize> {
    let kind = doc.get("kind")?.as_str()?;
    let (group, version) = doc.get("apiVersion")?.as_str()?.split_once('/')?;
    if version.is_empty() {
        return None;
    }
    KINDS.iter().position(|(k, g)| *k == kind && *g == group)
}

/// Checks the Clusterfile's kubeadm documents: one YAML document each, a mapping of one
/// of [`KINDS`] with its group's `apiVersion`, no kind twice. The plan's check and
/// [`merge`] use it.
pub fn check_documents(clusterfile_docs: &[String]) -> Result<(), KubeadmError> {
    read_clusterfile(clusterfile_docs).map(drop)
}

fn read_clusterfile(clusterfile_docs: &[String]) -> Result<Vec<CfDoc>, KubeadmError> {
    let mut out: Vec<CfDoc> = Vec::new();
    for (i, text) in clusterfile_docs.iter().enumerate() {
        let at = Where::Clusterfile { number: i + 1 };
        let bad = |reason: String| KubeadmError::Document {
            at: at.clone(),
            reason,
        };
        let pieces = docs::read(text, |_| at.clone())?;
        let mut values = pieces.into_iter().filter_map(|p| p.value);
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(bad(
                "give exactly one YAML document for each kubeadm document".into(),
            ));
        };
        let Value::Mapping(body) = value else {
            return Err(bad("not a mapping with apiVersion and kind".into()));
        };
        let api_version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind_name = body.get("kind").and_then(Value::as_str).unwrap_or("");
        let Some(kind) = kind_index(&body) else {
            return Err(bad(format!(
                "apiVersion {api_version:?} kind {kind_name:?} is not one of kubeadm's documents; they are {}",
                KINDS
                    .iter()
                    .map(|(k, g)| format!("{k} ({g}/…)"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if let Some(first) = out.iter().find(|d| d.kind == kind) {
            return Err(KubeadmError::Duplicate {
                kind: KINDS[kind].0.into(),
                first: first.at.clone(),
                second: at,
            });
        }
        out.push(CfDoc {
            kind,
            api_version: api_version.to_string(),
            at,
            body,
        });
    }
    Ok(out)
}

/// What the template output `rel` (a rootfs path such as `etc/kubeadm.yml`) rendered to
/// `rendered` becomes: `Ok(None)` when the kubeadm documents do not concern it (another
/// file, or no documents) and `rendered` is written as it is, else the [`merge`]. The
/// agent's render step and the controller's check before shipping both decide through
/// this, so they cannot disagree on which file takes the documents.
pub fn merge_output(
    rel: &str,
    rendered: &str,
    clusterfile_docs: &[String],
) -> Result<Option<Merged>, KubeadmError> {
    if rel != KUBEADM_FILE || clusterfile_docs.is_empty() {
        return Ok(None);
    }
    merge(Some(rendered), clusterfile_docs).map(Some)
}

/// Merges the Clusterfile's kubeadm documents (`clusterfile_docs`, one YAML document
/// each, in file order) into `rootfs_yaml`, the rootfs's `etc/kubeadm.yml` as rendered for
/// the host (`None` when there is none), by the rules of the module docs.
pub fn merge(
    rootfs_yaml: Option<&str>,
    clusterfile_docs: &[String],
) -> Result<Merged, KubeadmError> {
    if clusterfile_docs.is_empty() {
        return Ok(Merged {
            text: rootfs_yaml.unwrap_or_default().to_string(),
            notes: Vec::new(),
        });
    }
    let mut m = Merge {
        ours: read_clusterfile(clusterfile_docs)?
            .into_iter()
            .map(Some)
            .collect(),
        notes: Vec::new(),
        seen: [None; KINDS.len()],
        group_version: Vec::new(),
        out: Vec::new(),
    };
    if let Some(text) = rootfs_yaml {
        for piece in docs::read(text, |line| Where::Rootfs { line })? {
            m.rootfs_piece(piece)?;
        }
    }
    m.add_the_rest();
    m.finish()
}

/// One section of the output: kept text, or a document to write.
enum Out {
    Kept {
        text: String,
        own_marker: bool,
    },
    Doc {
        comments: String,
        kind: usize,
        body: Mapping,
    },
}

/// The merge under way.
struct Merge {
    /// The Clusterfile's documents not merged yet.
    ours: Vec<Option<CfDoc>>,
    notes: Vec<String>,
    /// The line of the rootfs's document of each kind, once seen.
    seen: [Option<usize>; KINDS.len()],
    /// The rootfs's apiVersion of each API group (its first document of the group), for
    /// the kinds only the Clusterfile has.
    group_version: Vec<(&'static str, String)>,
    out: Vec<Out>,
}

impl Merge {
    /// Takes one section of the rootfs file: kept as it is, or merged with the
    /// Clusterfile's document of its kind.
    fn rootfs_piece(&mut self, piece: docs::Piece) -> Result<(), KubeadmError> {
        let docs::Piece {
            text,
            own_marker,
            line,
            value,
        } = piece;
        let kubeadm = match value {
            Some(Value::Mapping(m)) => kind_index(&m).map(|kind| (kind, m)),
            _ => None,
        };
        let Some((kind, theirs)) = kubeadm else {
            self.out.push(Out::Kept { text, own_marker });
            return Ok(());
        };
        let (name, group) = KINDS[kind];
        let at = Where::Rootfs { line };
        if let Some(first) = self.seen[kind] {
            return Err(KubeadmError::Duplicate {
                kind: name.into(),
                first: Where::Rootfs { line: first },
                second: at,
            });
        }
        self.seen[kind] = Some(line);
        let their_version = theirs
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !self.group_version.iter().any(|(g, _)| *g == group) {
            self.group_version.push((group, their_version.clone()));
        }
        let ours = self
            .ours
            .iter_mut()
            .find(|d| d.as_ref().is_some_and(|d| d.kind == kind))
            .and_then(Option::take);
        let Some(mut doc) = ours else {
            self.out.push(Out::Kept { text, own_marker });
            return Ok(());
        };
        if doc.api_version != their_version {
            self.notes.push(format!(
                "{name}: {} says apiVersion {}, {at} says {their_version}; kept {their_version} (fields are merged as written, not converted)",
                doc.at, doc.api_version
            ));
        }
        // The rootfs's apiVersion and kind stay where they are.
        doc.body.shift_remove("apiVersion");
        doc.body.shift_remove("kind");
        let body = fields::merge_document(name, doc.body, theirs, &mut self.notes);
        self.out.push(Out::Doc {
            comments: docs::leading_comments(&text),
            kind,
            body,
        });
        Ok(())
    }

    /// Adds the kinds the rootfs file lacks, in sealer's order, each with the apiVersion
    /// of the rootfs's documents of its group when there are any.
    fn add_the_rest(&mut self) {
        let mut added: Vec<CfDoc> = self.ours.drain(..).flatten().collect();
        added.sort_by_key(|d| d.kind);
        for mut doc in added {
            let (name, group) = KINDS[doc.kind];
            if let Some((_, version)) = self.group_version.iter().find(|(g, _)| *g == group)
                && *version != doc.api_version
            {
                self.notes.push(format!(
                    "{name}: {} says apiVersion {}, written as {version} like the other {group} documents of {KUBEADM_FILE} (fields are not converted)",
                    doc.at, doc.api_version
                ));
                doc.body
                    .insert("apiVersion".into(), Value::String(version.clone()));
            }
            self.out.push(Out::Doc {
                comments: String::new(),
                kind: doc.kind,
                body: doc.body,
            });
        }
    }

    fn finish(self) -> Result<Merged, KubeadmError> {
        let mut sections = Vec::with_capacity(self.out.len());
        for section in self.out {
            sections.push(match section {
                Out::Kept { text, own_marker } => (text, own_marker),
                Out::Doc {
                    comments,
                    kind,
                    body,
                } => {
                    let yaml = yaml_serde::to_string(&body).map_err(|e| KubeadmError::Write {
                        kind: KINDS[kind].0.into(),
                        reason: e.to_string(),
                    })?;
                    (comments + &yaml, false)
                }
            });
        }
        Ok(Merged {
            text: docs::write(sections.iter().map(|(t, m)| (t.as_str(), *m))),
            notes: self.notes,
        })
    }
}
