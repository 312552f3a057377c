//! installer-agent: the only code that changes a host. It receives a merged rootfs, installs
//! `bin/`, renders templates, writes `/etc/hosts` lines, runs the rootfs scripts with the
//! cluster env, starts `sealer-registry`, records every change in a journal, and undoes
//! exactly that on `clean`.

pub(crate) mod apply;
pub mod clean;
pub(crate) mod clusters;
pub(crate) mod command;
pub mod error;
pub mod exec;
pub mod facts;
pub(crate) mod fanout;
pub(crate) mod fingerprint;
pub(crate) mod fsutil;
pub mod handrun;
pub(crate) mod incoming;
pub(crate) mod index;
pub(crate) mod journal;
pub(crate) mod lock;
pub(crate) mod owner;
pub(crate) mod paths;
pub(crate) mod receive;
pub(crate) mod recover;
pub(crate) mod registry_api;
pub mod root;
pub(crate) mod runtime;
pub mod serve;
pub mod sink;
pub(crate) mod steps;
pub(crate) mod units;
pub mod watch;
