//! `rsafe history`: how an image was built, one row per history entry, like `docker history`.

use std::time::SystemTime;

use anyhow::{Context, Result};
use oci_spec::image::History;
use serde::Serialize;

use super::Global;
use super::format::{human_size, table, time_ago, truncate};
use super::images::OutputFormat;
use crate::image::lookup::find;
use crate::image::{Image, LayerInfo, Platform};

/// Width `CREATED BY` is cut to in the table (docker's).
const CREATED_BY_WIDTH: usize = 45;

/// Show how an image was built, one row per history entry
///
/// Columns: CREATED, CREATED BY, SIZE, EMPTY LAYER, LAYER, newest first. Each history entry that made a layer is shown with that layer's stored size and digest;
/// entries that only changed the config are marked as empty layers. IMAGE is a name, a digest
/// or a unique digest prefix.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Name, digest or digest prefix.
    pub image: String,
    /// Do not cut CREATED BY and digests short.
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format (JSON lists entries oldest first).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// For a multi-platform image, which platform. Default: the host's.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<Platform>,
}

/// A layer as a history row shows it.
#[derive(Debug, Serialize)]
struct RowLayer {
    digest: String,
    diff_id: String,
    size: u64,
    #[serde(rename = "mediaType")]
    media_type: String,
}

/// One history entry (also its JSON form).
#[derive(Debug, Serialize)]
struct Row {
    created: Option<String>,
    created_by: Option<String>,
    author: Option<String>,
    comment: Option<String>,
    empty_layer: bool,
    /// The layer this entry made; absent for an empty layer.
    layer: Option<RowLayer>,
}

/// Prints the history.
pub fn run(args: HistoryArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let found = find(&store, &args.image)?;
    let platform = args.platform.unwrap_or_else(Platform::host);
    let image = Image::from_descriptor(&store, &found.descriptor, &platform)
        .with_context(|| format!("cannot open image {}", found.display_name()))?;
    let rows = rows(&image);
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        OutputFormat::Table => {
            let now = SystemTime::now();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .rev()
                .map(|r| {
                    let created_by = r.created_by.as_deref().unwrap_or("<missing>");
                    vec![
                        time_ago(r.created.as_deref(), now),
                        if args.no_trunc {
                            created_by.to_string()
                        } else {
                            truncate(created_by, CREATED_BY_WIDTH)
                        },
                        human_size(r.layer.as_ref().map_or(0, |l| l.size)),
                        if r.empty_layer { "yes" } else { "no" }.to_string(),
                        r.layer.as_ref().map_or_else(
                            || "-".to_string(),
                            |l| {
                                if args.no_trunc {
                                    l.digest.clone()
                                } else {
                                    l.digest.trim_start_matches("sha256:")[..12].to_string()
                                }
                            },
                        ),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &["CREATED", "CREATED BY", "SIZE", "EMPTY LAYER", "LAYER"],
                    &cells
                )
            );
        }
    }
    Ok(0)
}

/// History entries in image order, each non-empty one paired with the next layer; layers the
/// history does not account for get a row of their own.
fn rows(image: &Image) -> Vec<Row> {
    let mut layers = image.layers().iter();
    let layer_row = |l: &LayerInfo| RowLayer {
        digest: l.digest.to_string(),
        diff_id: l.diff_id.to_string(),
        size: l.descriptor.size(),
        media_type: l.descriptor.media_type().to_string(),
    };
    let mut rows: Vec<Row> = image
        .config
        .history()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|h: &History| {
            let empty_layer = h.empty_layer().unwrap_or(false);
            Row {
                created: h.created().clone(),
                created_by: h.created_by().clone(),
                author: h.author().clone(),
                comment: h.comment().clone(),
                empty_layer,
                layer: if empty_layer {
                    None
                } else {
                    layers.next().map(layer_row)
                },
            }
        })
        .collect();
    rows.extend(layers.map(|l| Row {
        created: None,
        created_by: None,
        author: None,
        comment: None,
        empty_layer: false,
        layer: Some(layer_row(l)),
    }));
    rows
}
