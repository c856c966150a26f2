//! `rsafe images`: the images in the store, like `docker images`.

use std::time::SystemTime;

use anyhow::Result;
use oci_spec::image::{Descriptor, ImageIndex};
use serde::Serialize;

use super::Global;
use super::format::{human_size, parse_rfc3339, table, time_ago};
use crate::image::config::ImageError;
use crate::image::media::{Kind, classify};
use crate::image::{Digest, Image, Platform, Reference, Store};

/// List the images in the store
///
/// Columns: REPOSITORY TAG DIGEST SIZE CREATED, newest first. DIGEST is the manifest's (or, for a multi-platform image, the index's) digest, the one
/// `skopeo inspect` and registries show. SIZE is the stored size of the layers. With the global
/// `-q`, only digests are printed.
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Only images of this repository (`busybox`) or name (`busybox:1.36`).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub filter: Option<String>,
    /// Full digests instead of 12 characters.
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// Table for people, JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// One row of the listing (also its JSON form).
#[derive(Debug, Serialize)]
struct Row {
    /// The store name; absent for an image kept by digest only.
    name: Option<String>,
    repository: String,
    tag: String,
    digest: Digest,
    #[serde(rename = "mediaType")]
    media_type: String,
    /// Bytes of the layers as stored; absent when the image cannot be read.
    size: Option<u64>,
    created: Option<String>,
}

/// Prints the listing.
pub fn run(args: ImagesArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let filter = args.filter.as_deref().map(Filter::new);
    let mut rows = Vec::new();
    for (name, desc) in store.entries()? {
        let (repository, tag) = split_name(name.as_deref());
        if let Some(f) = &filter
            && !f.matches(name.as_deref(), &repository)
        {
            continue;
        }
        let digest = Digest::try_from(desc.digest())?;
        let (size, created) = match summarize(&store, &desc) {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "rsafe: {}: {e}",
                    name.as_deref().unwrap_or(&digest.to_string())
                );
                (None, None)
            }
        };
        rows.push(Row {
            name,
            repository,
            tag,
            digest,
            media_type: desc.media_type().to_string(),
            size,
            created,
        });
    }
    rows.sort_by(|a, b| {
        let at = |r: &Row| r.created.as_deref().and_then(parse_rfc3339);
        at(b)
            .cmp(&at(a))
            .then_with(|| a.repository.cmp(&b.repository))
            .then_with(|| a.tag.cmp(&b.tag))
    });

    let digest_text = |d: &Digest| {
        if args.no_trunc {
            d.to_string()
        } else {
            d.short().to_string()
        }
    };
    if global.quiet {
        let mut seen = std::collections::HashSet::new();
        for row in rows.iter().filter(|r| seen.insert(r.digest.clone())) {
            println!("{}", digest_text(&row.digest));
        }
        return Ok(0);
    }
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        OutputFormat::Table => {
            let now = SystemTime::now();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.repository.clone(),
                        r.tag.clone(),
                        digest_text(&r.digest),
                        r.size.map_or_else(|| "?".into(), human_size),
                        time_ago(r.created.as_deref(), now),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(&["REPOSITORY", "TAG", "DIGEST", "SIZE", "CREATED"], &cells)
            );
        }
    }
    Ok(0)
}

/// (repository, tag) for the table; `<none>` for what is missing, the raw name when it is not a
/// docker reference (a ref name another tool wrote into the layout).
fn split_name(name: Option<&str>) -> (String, String) {
    let none = || "<none>".to_string();
    match name {
        None => (none(), none()),
        Some(n) => match n.parse::<Reference>() {
            Ok(r) => (r.familiar_repository(), r.tag.unwrap_or_else(none)),
            Err(_) => (n.to_string(), none()),
        },
    }
}

/// `busybox` matches every tag of busybox; `busybox:1` only that name.
struct Filter {
    name: Option<String>,
    repository: String,
}

impl Filter {
    fn new(input: &str) -> Filter {
        match input.parse::<Reference>() {
            Ok(r) if r.tag.is_some() || r.digest.is_some() => Filter {
                name: Some(r.store_name()),
                repository: r.familiar_repository(),
            },
            Ok(r) => Filter {
                name: None,
                repository: r.familiar_repository(),
            },
            Err(_) => Filter {
                name: Some(input.to_string()),
                repository: input.to_string(),
            },
        }
    }

    fn matches(&self, name: Option<&str>, repository: &str) -> bool {
        match &self.name {
            Some(wanted) => name == Some(wanted.as_str()),
            None => repository == self.repository,
        }
    }
}

/// Layer size and creation time: of the host's platform for a multi-platform image, or of its
/// first image when the host's is not there.
fn summarize(
    store: &Store,
    desc: &Descriptor,
) -> Result<(Option<u64>, Option<String>), ImageError> {
    let image = match Image::from_descriptor(store, desc, &Platform::host()) {
        Err(ImageError::NoPlatform { .. }) => first_image(store, desc)?,
        other => other?,
    };
    Ok((Some(image.size()), image.config.created().clone()))
}

fn first_image(store: &Store, desc: &Descriptor) -> Result<Image, ImageError> {
    let digest = Digest::try_from(desc.digest())?;
    let index: ImageIndex = store.read_json(&digest)?;
    let first = index
        .manifests()
        .iter()
        .find(|d| {
            matches!(classify(d.media_type()), Ok(Kind::Manifest))
                && d.platform()
                    .as_ref()
                    .is_some_and(|p| p.os().to_string() != "unknown")
        })
        .ok_or_else(|| ImageError::Invalid {
            digest: digest.clone(),
            detail: "index lists no image manifest".into(),
        })?;
    Image::from_manifest(store, Digest::try_from(first.digest())?)
}
