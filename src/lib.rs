//! rsafe — a rootless, hardened container runner and a layer-aware image leak auditor.
//!
//! Data flows one way:
//! - `cli → image (get / verify / unpack) → runtime (spec → isolate → exec)`
//! - `cli → image | dockerfile | procs → audit (findings) → report`
//!
//! `audit` never depends on `runtime` and `runtime` never on `audit`; the CLI composes them.
//! `unsafe` code lives only in [`runtime`], where syscalls need it. [`bounded`] reads the files
//! users name (policies, profiles, manifests) for every layer, with a size limit.

pub mod audit;
pub mod bounded;
pub mod cli;
pub mod image;
pub mod report;
pub mod runtime;
