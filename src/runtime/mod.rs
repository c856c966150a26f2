//! Running a container: user namespace, isolation, confinement, and rsafe's pid 1.
//!
//! This is the only module allowed `unsafe` code, and only where a syscall needs it.

pub mod caps;
pub mod landlock;
pub mod policy;
pub mod seccomp;
