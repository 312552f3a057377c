//! The exit codes of `installer`, documented in `installer --help` and README.

/// Every host ended ok.
pub const OK: i32 = 0;
/// At least one host failed or was not reached.
pub const HOST_FAILED: i32 = 1;
/// Bad input: Clusterfile, rootfs, overlays, flags. Nothing was contacted.
pub const BAD_INPUT: i32 = 2;
/// Refused for safety before anything changed: a host key unknown or changed, or hosts
/// busy with another apply or clean while no host changed.
pub const REFUSED: i32 = 3;
/// Interrupted (Ctrl-C).
pub const INTERRUPTED: i32 = 130;
