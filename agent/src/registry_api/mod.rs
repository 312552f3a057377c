//! Speaking to the cluster's registry through distribution's HTTP API: the readiness probe
//! of `init-registry`, and the blob push and fetch of the fan-out (SPEC §5.3).

pub(crate) mod blobs;
pub(crate) mod http;
pub(crate) mod probe;
