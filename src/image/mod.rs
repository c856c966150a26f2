//! Getting images: names, on-disk formats, the registry, the local store, and safe unpacking.
//!
//! Everything that reads image bytes verifies them against their digest first ([`digest`]):
//! metadata blobs on every read, layers while they stream ([`layer`]).
#![forbid(unsafe_code)]

pub mod archive;
pub mod config;
pub mod digest;
pub mod docker_save;
pub mod import;
pub mod layer;
pub mod layout;
pub mod load;
pub mod lookup;
pub mod media;
pub mod prefetch;
pub mod reference;
#[cfg(feature = "registry")]
pub mod registry;
pub mod resolve;
pub mod save;
pub mod store;
pub mod store_cache;
pub mod unpack;

pub use config::{Image, LayerInfo, Platform};
pub use digest::Digest;
pub use reference::Reference;
pub use store::Store;
