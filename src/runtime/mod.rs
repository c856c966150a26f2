//! Running a container: user namespace, isolation, confinement, and rsafe's pid 1.
//!
//! This is the only module allowed `unsafe` code, and only where a syscall needs it (most of
//! it in [`sys`]).
//!
//! - [`spec`]: what to run, merged from the image config, the flags and the [`policy`];
//! - [`process`]: the processes that start a container and the order of every step;
//!   [`container`]: the container's side of it; [`session`]: rsafe's side while it runs;
//!   [`detach`]: the same in the background (`run -d`); [`attach`]: joining it later
//!   (`rsafe attach`); [`stop`]: ending a running one; [`enter`]: a new process in a running
//!   one (`rsafe exec`), through [`join`] as `rsafe-runtime exec`; [`netns_join`]: a
//!   container in another's network (`--network container:NAME`); [`netstore`] and
//!   [`bridge`]: named networks (`rsafe network`, `--network NAME`), [`rootless_net`]: a
//!   rootless user's; [`pause`]: freezing one (`rsafe pause`);
//! - [`idmap`], [`namespaces`], [`rootfs`], [`mounts`], [`cgroups`], [`user`], [`tty`],
//!   [`exec`]: one step each; [`init`]: pid 1; [`state`]: containers on disk; [`volume`]:
//!   named volumes;
//! - [`caps`], [`landlock`], [`seccomp`]: confinement applied to the workload; [`learn`]:
//!   recording what a run used, as a policy (`rsafe run --learn`);
//! - [`channel`]: the parent ↔ container sync channel; [`helper`]: short-lived helper
//!   processes; [`sys`]: raw syscalls.

pub mod attach;
pub mod bridge;
pub mod caps;
pub mod cgroups;
pub mod channel;
pub mod clock;
pub mod container;
pub mod copy;
pub mod detach;
pub mod diff;
pub mod dns;
pub mod enter;
pub mod exec;
pub mod export;
pub mod fdpass;
pub mod helper;
pub mod idmap;
pub mod init;
pub mod join;
pub mod landlock;
pub mod launch;
pub mod layered;
pub mod learn;
pub mod logindex;
pub mod mounts;
pub mod namespaces;
pub mod nat;
pub mod netns_join;
pub mod netstore;
pub mod network;
pub mod oci;
pub mod pause;
pub mod policy;
pub mod portfwd;
pub mod process;
pub mod prune;
pub mod rootfs;
pub mod rootless_net;
pub mod seccomp;
pub mod session;
pub mod signal;
pub mod spec;
pub mod state;
pub mod stats;
pub mod stop;
pub mod sys;
pub mod top;
pub mod tty;
pub mod user;
pub mod volume;
