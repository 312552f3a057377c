//! Real test hosts and realistic fixture rootfs trees for installer's tests.
//!
//! - [`node_image`]: the Debian bookworm node image (systemd + sshd), built locally with
//!   mmdebstrap and `docker import`, cached by a hash of its recipe.
//! - [`hosts`]: N node containers on a private Docker network, with keys, a Clusterfile and a
//!   known_hosts file; helpers to cut a host off or stop it.
//! - [`debs`], [`registry_image`], [`fixture`]: a fixture rootfs from real Debian binaries.
//! - [`sshd`]: a real sshd on a loopback port, for SSH-layer tests that need no Docker.
//! - [`vagrant`]: the repository's Vagrantfile on the docker provider.

pub mod cache;
pub mod debs;
pub mod docker;
pub mod fixture;
pub mod hosts;
pub mod image_layout;
pub mod node_image;
pub mod registry_image;
pub mod sshd;
pub mod tree;
pub mod vagrant;
