//! Bounds on what reading a Clusterfile may cost, checked before the YAML parser sees it.
//!
//! - **Size**: at most [`MAX_BYTES`] are read, so `-f /dev/zero` or a multi-gigabyte file
//!   cannot fill memory. Only regular files are read at all: a FIFO would block forever and
//!   a device never ends.
//! - **Flow nesting**: libyaml's scanner re-checks every open `[`/`{` for each token it
//!   reads, so deep flow nesting costs time quadratic in the input (100,000 `[` took over a
//!   minute). yaml_serde's own recursion limit applies only after the whole document has
//!   been scanned, too late; so `flow_too_deep` pre-scans the text and stops at the first
//!   bracket past [`MAX_DEPTH`].
//! - **Nodes**: `walk` reads every document once with a visitor that counts nodes and
//!   depth, aliases included: `&a [x, x, …]` used by many `*a` expands to millions of nodes
//!   (the later passes build a value of each), so the expanded size is capped at
//!   [`MAX_NODES`]. Block nesting (indentation) is scanned in linear time, and is caught
//!   here, with the parser's position, at the same [`MAX_DEPTH`].
//!
//! A real Clusterfile is a few KiB, nests five or six levels and has a few hundred nodes;
//! every bound is far above that.

mod flow;
#[cfg(test)]
mod tests;
mod walk;

pub(super) use flow::flow_too_deep;
pub(super) use walk::walk;

/// The largest Clusterfile read: 4 MiB. A Clusterfile with Config documents carrying whole
/// configuration files is still well under 1 MiB.
pub const MAX_BYTES: u64 = 4 << 20;

/// How deep flow collections, block collections or both may nest.
pub const MAX_DEPTH: usize = 64;

/// How many YAML nodes a Clusterfile may have, counting each alias as the nodes it stands
/// for: a quarter of a million (a thousand hosts take about ten thousand).
pub const MAX_NODES: usize = 250_000;

/// What the depth errors say is expected.
const DEPTH_EXPECTED: &str =
    "expected a Clusterfile nested a few levels deep (look for unclosed `[` or `{`)";

/// The message for nesting past [`MAX_DEPTH`].
pub(in crate::clusterfile) fn depth_message() -> String {
    format!("nesting deeper than {MAX_DEPTH} levels; {DEPTH_EXPECTED}")
}
