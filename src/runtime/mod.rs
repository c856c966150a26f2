//! Running a container: user namespace, isolation, confinement, and rsafe's pid 1.
//!
//! This is the only module allowed `unsafe` code, and only where a syscall needs it.

pub mod seccomp;
pub mod caps;
pub mod landlock;
