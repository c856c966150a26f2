//! Getting images: names, on-disk formats, the registry, the local store, and safe unpacking.
//!
//! Everything that reads image bytes verifies them against their digest first ([`digest`]).
#![forbid(unsafe_code)]

pub mod digest;
pub mod store;
