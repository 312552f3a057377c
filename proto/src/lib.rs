//! The contract between the `installer` controller and `installer-agent`.
//!
//! Everything the two sides must agree on lives here and nowhere else: the plan a host
//! executes and the one way it is built ([`plan`]), the merged-rootfs file manifest ([`manifest`], [`rootfs`]), the
//! messages on the SSH channel ([`wire`]), the events the agent reports ([`event`]), the
//! host facts ([`facts`]), the machines and their ELF check ([`elf`]), the content-hash cache
//! ([`hashcache`]), the environment given to scripts and templates ([`env`]) and the
//! Go-template language rootfs `.tmpl` files are written in ([`template`]).
//!
//! The crate is synchronous and depends on serde, sha2, thiserror and cap-std (directory
//! handles that keep lookups inside a rootfs tree) only, so the static agent can use it
//! without an async runtime.

pub mod atomic;
pub mod bin_links;
pub mod elf;
pub mod env;
pub mod event;
pub mod facts;
pub mod fanout;
pub mod hashcache;
pub mod human;
pub mod kubeadm;
pub mod manifest;
pub mod plan;
pub mod rootfs;
pub mod runtime_scripts;
pub mod secret;
pub mod system_dirs;
pub mod template;
pub mod term;
pub mod watch;
pub mod wire;
