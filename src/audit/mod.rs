//! Auditing: images, Dockerfiles, compose files and running containers all produce [`Finding`]s
//! in one model, so one report writer and one `--fail-on` gate serve them all.
#![forbid(unsafe_code)]

pub mod finding;
pub mod secrets;

pub use finding::{Evidence, Finding, LayerProvenance, Location, Severity};
