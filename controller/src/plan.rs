//! Builds each host's `installer_proto::plan::Plan` from the validated Clusterfile, the host's facts and its merged rootfs.
