//! installer-agent: the only code that changes a host. It receives a merged rootfs, installs
//! `bin/`, renders templates, writes `/etc/hosts` lines, runs the rootfs scripts with the
//! cluster env, starts `sealer-registry`, records every change in a journal, and undoes
//! exactly that on `clean`.

pub mod apply;
pub mod clean;
pub mod clusters;
pub mod command;
pub mod error;
pub mod exec;
pub mod facts;
pub mod fingerprint;
pub mod fsutil;
pub mod handrun;
pub mod index;
pub mod journal;
pub mod lock;
pub mod owner;
pub mod paths;
pub mod receive;
pub mod recover;
pub mod root;
pub mod runtime;
pub mod serve;
pub mod sink;
pub mod steps;
pub mod units;
pub mod watch;
