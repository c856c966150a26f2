//! `rsafe inspect`: an image's manifest and config as JSON.

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::Global;
use crate::image::lookup::find;
use crate::image::media::{Kind, classify};
use crate::image::{Image, Platform};

/// Show an image's manifest and config as JSON
///
/// The document: {name, names, digest, mediaType, manifestDigest, manifest, configDigest,
/// config, size}, with the manifest and config as the image has them (plus
/// `index` and `platform` when the name points at a multi-platform index).
///
/// IMAGE is a name (`busybox` means `busybox:latest`), a digest, or a unique digest prefix.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Name, digest or digest prefix.
    pub image: String,
    /// For a multi-platform image, the platform whose manifest to show. Default: the host's.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<Platform>,
}

/// Prints the JSON document.
pub fn run(args: InspectArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let found = find(&store, &args.image)?;
    let platform = args.platform.unwrap_or_else(Platform::host);
    let image = Image::from_descriptor(&store, &found.descriptor, &platform)
        .with_context(|| format!("cannot open image {}", found.display_name()))?;
    let manifest: Value = store.read_json(&image.manifest_digest)?;
    let config: Value = store.read_json(&image.config_digest)?;
    let mut doc = json!({
        "name": found.display_name(),
        "names": found.names,
        "digest": found.digest,
        "mediaType": found.descriptor.media_type().to_string(),
        "manifestDigest": image.manifest_digest,
        "manifest": manifest,
        "configDigest": image.config_digest,
        "config": config,
        "size": image.size(),
    });
    if matches!(classify(found.descriptor.media_type()), Ok(Kind::Index)) {
        let index: Value = store.read_json(&found.digest)?;
        doc["index"] = index;
        doc["platform"] = Value::String(platform.to_string());
    }
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}
