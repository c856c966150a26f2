//! The pull: resolve the reference to a manifest (through an index, for the platform), stream
//! every missing blob into the store, store the manifest bytes exactly as served, and name it.
//!
//! Order matters for the store's consistency: blobs first, then the manifest, then the index,
//! then the name, so a name never points at something incomplete, whatever interrupts the pull.

use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageIndex, ImageManifest, MediaType, Platform as OciPlatform,
};

use super::client::{Client, header};
use super::credentials::{self, Credentials};
use super::tls;
use super::{PullEvent, PullOptions, Pulled, RegistryError};
use crate::image::config::{Platform, select_platform};
use crate::image::digest::{Digest, VerifyError};
use crate::image::media::{Kind, classify};
use crate::image::reference::Reference;
use crate::image::store::{MAX_METADATA_BLOB, Store, StoreError};

/// What a manifest request accepts: OCI and Docker v2 schema 2, single images and indexes.
/// Docker schema 1 is deliberately absent.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Blobs downloaded at once: enough to hide per-request latency, few enough to be polite.
const PARALLEL_DOWNLOADS: usize = 3;
/// Indexes pointing at indexes are followed this deep at most.
const MAX_INDEX_DEPTH: usize = 4;

/// Pulls `reference` into `store` and files it under [`Reference::store_name`]. `progress`
/// hears what happens (from several download threads: it must be `Sync`).
pub fn pull(
    store: &Store,
    reference: &Reference,
    opts: &PullOptions,
    progress: &(dyn Fn(PullEvent<'_>) + Sync),
) -> Result<Pulled, RegistryError> {
    let client = connect(reference, opts, progress)?;
    // Blobs written from here on must survive a concurrent gc (an `rmi` in another shell)
    // until the name that keeps them is written.
    let _writing = store.write_guard().map_err(|source| RegistryError::Store {
        target: client.target().to_string(),
        what: "announcing a writer to the store".to_string(),
        source,
    })?;
    let puller = Puller {
        store,
        client: &client,
        repository: reference.remote_repository(),
        progress,
        fetched: AtomicUsize::new(0),
        reused: AtomicUsize::new(0),
        bytes: AtomicU64::new(0),
    };
    let top = puller.manifest(
        &reference.manifest_reference(),
        reference.digest.as_ref(),
        None,
    )?;
    let (named, manifest, index) = puller.resolve(&top, opts)?;
    let name = reference.store_name();
    store
        .tag(&name, &named)
        .map_err(|source| RegistryError::Store {
            target: client.target().to_string(),
            what: format!("naming {name}"),
            source,
        })?;
    Ok(Pulled {
        name,
        manifest,
        index,
        fetched_blobs: puller.fetched.load(Ordering::Relaxed),
        reused_blobs: puller.reused.load(Ordering::Relaxed),
        bytes: puller.bytes.load(Ordering::Relaxed),
    })
}

/// The client for `reference`'s registry: credentials, trust, and the first request that
/// learns how the registry authenticates, each told to `progress`.
fn connect(
    reference: &Reference,
    opts: &PullOptions,
    progress: &(dyn Fn(PullEvent<'_>) + Sync),
) -> Result<Client, RegistryError> {
    let found = credentials::lookup(reference, opts.auth_file.as_deref())?;
    let note = unauthorized_note(reference, opts, found.as_ref());
    let trust = tls::trust_for(reference.registry_host(), opts.cert_dir.as_deref())?;
    if !trust.extra_files.is_empty() {
        progress(PullEvent::TrustingCa {
            files: &trust.extra_files,
        });
    }
    let client = Client::connect(reference, opts.insecure, found, note, trust.config)?;
    progress(PullEvent::Connected {
        base: client.base(),
    });
    if let Some(challenge) = client.auth().challenge() {
        let realm = match &challenge {
            super::auth::Challenge::Bearer { realm, .. } => Some(realm.as_str()),
            super::auth::Challenge::Basic => None,
        };
        progress(PullEvent::Authenticating {
            scheme: challenge.scheme(),
            realm,
            credentials: client.auth().credentials().map(|c| c.source.as_path()),
        });
    }
    Ok(client)
}

/// Said after a 401/403: whose credentials were used, or where none were found.
fn unauthorized_note(
    reference: &Reference,
    opts: &PullOptions,
    found: Option<&Credentials>,
) -> String {
    match found {
        Some(c) => format!(
            "sent credentials of user {:?} from {}",
            c.username,
            c.source.display()
        ),
        None => {
            let files = match &opts.auth_file {
                Some(f) => vec![f.clone()],
                None => credentials::default_auth_files(),
            };
            let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            format!(
                "no credentials for {} in {}",
                reference.registry.as_deref().unwrap_or("docker.io"),
                if files.is_empty() {
                    "any auth file (neither HOME nor REGISTRY_AUTH_FILE is set)".to_string()
                } else {
                    files.join(", ")
                }
            )
        }
    }
}

/// A manifest or index as the registry served it, verified against every digest known for it.
struct Fetched {
    digest: Digest,
    media_type: MediaType,
    kind: Kind,
    bytes: Vec<u8>,
}

/// The media type and role of a manifest body: its own `mediaType` field (covered by the
/// digest), else the `Content-Type` header, else its shape. Docker schema 1 is refused by name.
pub fn identify(bytes: &[u8], content_type: Option<&str>) -> Result<(MediaType, Kind), String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: Option<u64>,
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| format!("not a valid manifest: {e}"))?;
    let content_type = content_type
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .filter(|t| !t.is_empty() && *t != "application/json" && *t != "text/plain");
    let schema1 = |t: &str| t.starts_with("application/vnd.docker.distribution.manifest.v1");
    if probe.schema_version == Some(1)
        || content_type.is_some_and(schema1)
        || probe.media_type.as_deref().is_some_and(schema1)
    {
        return Err(
            "is a Docker schema 1 manifest, which rsafe does not support (deprecated \
                    since 2017; re-push the image with a current docker, podman or skopeo)"
                .into(),
        );
    }
    let media = probe
        .media_type
        .or(content_type.map(str::to_string))
        .or_else(|| {
            if probe.manifests.is_some() {
                Some(MediaType::ImageIndex.to_string())
            } else if probe.config.is_some() {
                Some(MediaType::ImageManifest.to_string())
            } else {
                None
            }
        })
        .ok_or("has no media type and is neither a manifest nor an index")?;
    let media_type = MediaType::from(media.as_str());
    match classify(&media_type) {
        Ok(kind @ (Kind::Index | Kind::Manifest)) => Ok((media_type, kind)),
        Ok(_) => Err(format!("has media type {media}, not a manifest or index")),
        Err(e) => Err(format!("has an {e}")),
    }
}

/// One pull in progress: the client, where blobs go, and the counters for the summary.
struct Puller<'a> {
    store: &'a Store,
    client: &'a Client,
    repository: String,
    progress: &'a (dyn Fn(PullEvent<'_>) + Sync),
    fetched: AtomicUsize,
    reused: AtomicUsize,
    bytes: AtomicU64,
}

impl Puller<'_> {
    /// Fetches what the top manifest names (every platform's image, the chosen platform's,
    /// or the single image) and returns the descriptor to file it under, the image manifest's
    /// digest and the index's, if any.
    fn resolve(
        &self,
        top: &Fetched,
        opts: &PullOptions,
    ) -> Result<(Descriptor, Digest, Option<Digest>), RegistryError> {
        Ok(match top.kind {
            Kind::Index if opts.all_platforms => {
                self.every_platform(top, 0)?;
                (self.progress)(PullEvent::Resolved {
                    manifest: &top.digest,
                    platform: None,
                });
                (
                    self.descriptor(top, None)?,
                    top.digest.clone(),
                    Some(top.digest.clone()),
                )
            }
            Kind::Index => {
                let (chosen, platform) = self.select(top, &opts.platform)?;
                (self.progress)(PullEvent::Resolved {
                    manifest: &chosen.digest,
                    platform: Some(&opts.platform),
                });
                self.image(&chosen)?;
                (
                    self.descriptor(&chosen, platform)?,
                    chosen.digest.clone(),
                    Some(top.digest.clone()),
                )
            }
            _ => {
                (self.progress)(PullEvent::Resolved {
                    manifest: &top.digest,
                    platform: None,
                });
                self.image(top)?;
                (self.descriptor(top, None)?, top.digest.clone(), None)
            }
        })
    }

    fn protocol(&self, what: &str, detail: String) -> RegistryError {
        self.client.protocol(what, detail)
    }

    fn store_error(&self, what: &str, source: StoreError) -> RegistryError {
        RegistryError::Store {
            target: self.client.target().to_string(),
            what: what.to_string(),
            source,
        }
    }

    fn digest_of(&self, desc: &Descriptor, what: &str) -> Result<Digest, RegistryError> {
        Digest::try_from(desc.digest()).map_err(|e| self.protocol(what, e.to_string()))
    }

    /// GETs a manifest or index by tag or digest, capped at [`MAX_METADATA_BLOB`] before it is
    /// read whole, and checks it against `expected` (the digest asked for), the registry's
    /// `Docker-Content-Digest`, and `expected_size` (from the descriptor that named it).
    fn manifest(
        &self,
        reference: &str,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<Fetched, RegistryError> {
        let what = format!("manifest {reference}");
        let path = format!("/v2/{}/manifests/{reference}", self.repository);
        let resp = self.client.get(&path, Some(ACCEPT_MANIFESTS), &what)?;
        let content_type = header(&resp, "content-type").map(str::to_string);
        let announced = header(&resp, "docker-content-digest").map(str::to_string);
        let too_large = |n: u64| {
            self.protocol(
                &what,
                format!(
                    "is {n} bytes or more, past the {MAX_METADATA_BLOB} allowed for a manifest"
                ),
            )
        };
        if let Some(len) = resp.body().content_length()
            && len > MAX_METADATA_BLOB
        {
            return Err(too_large(len));
        }
        let bytes = resp
            .into_body()
            .into_with_config()
            .limit(MAX_METADATA_BLOB)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => too_large(MAX_METADATA_BLOB + 1),
                other => RegistryError::Transport {
                    target: self.client.target().to_string(),
                    what: what.clone(),
                    source: Box::new(other),
                },
            })?;
        let digest = Digest::of_bytes(&bytes);
        let mismatch = |what: String, expected: &Digest| RegistryError::DigestMismatch {
            target: self.client.target().to_string(),
            what,
            expected: expected.clone(),
            actual: digest.clone(),
        };
        if let Some(exp) = expected
            && exp != &digest
        {
            return Err(mismatch(what, exp));
        }
        // Only sha256 is understood; a header in another algorithm cannot be compared.
        if let Some(claimed) = announced.and_then(|a| a.parse::<Digest>().ok())
            && claimed != digest
        {
            return Err(mismatch(
                format!("{what} (Docker-Content-Digest)"),
                &claimed,
            ));
        }
        if let Some(size) = expected_size
            && size != bytes.len() as u64
        {
            return Err(self.protocol(
                &what,
                format!("is {} bytes, its descriptor says {size}", bytes.len()),
            ));
        }
        let (media_type, kind) =
            identify(&bytes, content_type.as_deref()).map_err(|d| self.protocol(&what, d))?;
        Ok(Fetched {
            digest,
            media_type,
            kind,
            bytes,
        })
    }

    fn index(&self, fetched: &Fetched) -> Result<ImageIndex, RegistryError> {
        serde_json::from_slice(&fetched.bytes).map_err(|e| {
            self.protocol(
                &format!("index {}", fetched.digest),
                format!("not a valid index: {e}"),
            )
        })
    }

    /// Walks down from an index to the manifest for `platform`.
    fn select(
        &self,
        top: &Fetched,
        platform: &Platform,
    ) -> Result<(Fetched, Option<OciPlatform>), RegistryError> {
        let mut index = self.index(top)?;
        let mut index_digest = top.digest.clone();
        for _ in 0..MAX_INDEX_DEPTH {
            let chosen = select_platform(&index, &index_digest, platform).map_err(|source| {
                RegistryError::Image {
                    target: self.client.target().to_string(),
                    source: Box::new(source),
                }
            })?;
            let what = format!("index {index_digest}");
            let digest = self.digest_of(chosen, &what)?;
            let child = self.manifest(&digest.to_string(), Some(&digest), Some(chosen.size()))?;
            match child.kind {
                Kind::Index => {
                    index = self.index(&child)?;
                    index_digest = child.digest;
                }
                _ => return Ok((child, chosen.platform().clone())),
            }
        }
        Err(self.protocol(
            &format!("index {}", top.digest),
            format!("indexes nested more than {MAX_INDEX_DEPTH} deep"),
        ))
    }

    /// Pulls every image an index lists (attestation entries, platform `unknown/unknown`, are
    /// left out), then stores the index itself.
    fn every_platform(&self, fetched: &Fetched, depth: usize) -> Result<(), RegistryError> {
        let what = format!("index {}", fetched.digest);
        if depth >= MAX_INDEX_DEPTH {
            return Err(self.protocol(
                &what,
                format!("indexes nested more than {MAX_INDEX_DEPTH} deep"),
            ));
        }
        let index = self.index(fetched)?;
        for entry in index.manifests() {
            let attestation = entry
                .platform()
                .as_ref()
                .is_some_and(|p| p.os().to_string() == "unknown");
            if attestation {
                continue;
            }
            let digest = self.digest_of(entry, &what)?;
            let child = self.manifest(&digest.to_string(), Some(&digest), Some(entry.size()))?;
            match child.kind {
                Kind::Index => self.every_platform(&child, depth + 1)?,
                _ => self.image(&child)?,
            }
        }
        self.keep(fetched)
    }

    /// Stores a manifest's or index's bytes exactly as the registry served them.
    fn keep(&self, fetched: &Fetched) -> Result<(), RegistryError> {
        self.store
            .put_blob(
                &fetched.bytes[..],
                &fetched.digest,
                Some(fetched.bytes.len() as u64),
            )
            .map_err(|e| self.store_error(&format!("manifest {}", fetched.digest), e))
    }

    /// Pulls one image: checks that the manifest describes a container image rsafe can use,
    /// downloads its config and layers, then stores the manifest.
    fn image(&self, fetched: &Fetched) -> Result<(), RegistryError> {
        let what = format!("manifest {}", fetched.digest);
        let manifest: ImageManifest = serde_json::from_slice(&fetched.bytes)
            .map_err(|e| self.protocol(&what, format!("not a valid image manifest: {e}")))?;
        let config = manifest.config();
        match classify(config.media_type()) {
            Ok(Kind::Config) => {}
            _ => {
                return Err(self.protocol(
                    &what,
                    format!(
                        "config has media type {}: not a container image",
                        config.media_type()
                    ),
                ));
            }
        }
        if config.size() > MAX_METADATA_BLOB {
            return Err(self.protocol(
                &what,
                format!(
                    "config is {} bytes, past the {MAX_METADATA_BLOB} allowed",
                    config.size()
                ),
            ));
        }
        for layer in manifest.layers() {
            if !matches!(classify(layer.media_type()), Ok(Kind::Layer(_))) {
                return Err(self.protocol(
                    &what,
                    format!(
                        "layer {} has unsupported media type {}",
                        layer.digest(),
                        layer.media_type()
                    ),
                ));
            }
        }
        let mut wanted: Vec<(Digest, u64)> = Vec::new();
        for desc in std::iter::once(config).chain(manifest.layers()) {
            let digest = self.digest_of(desc, &what)?;
            if !wanted.iter().any(|(d, _)| d == &digest) {
                wanted.push((digest, desc.size()));
            }
        }
        self.blobs(&wanted)?;
        self.keep(fetched)
    }

    /// Downloads the blobs the store lacks, a few at a time; the first failure stops the rest.
    fn blobs(&self, wanted: &[(Digest, u64)]) -> Result<(), RegistryError> {
        let mut missing = Vec::new();
        for (digest, size) in wanted {
            if self.store.has_blob(digest) {
                self.reused_blob(digest, *size);
            } else {
                missing.push((digest, *size));
            }
        }
        let next = AtomicUsize::new(0);
        let failure: Mutex<Option<RegistryError>> = Mutex::new(None);
        let failed = || failure.lock().map_or(true, |f| f.is_some());
        let worker = || {
            while !failed() {
                let Some((digest, size)) = missing.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    break;
                };
                if let Err(e) = self.blob(digest, *size) {
                    if let Ok(mut slot) = failure.lock() {
                        slot.get_or_insert(e);
                    }
                    break;
                }
            }
        };
        std::thread::scope(|s| {
            for _ in 1..PARALLEL_DOWNLOADS.min(missing.len()) {
                s.spawn(worker);
            }
            worker();
        });
        match failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn reused_blob(&self, digest: &Digest, size: u64) {
        self.reused.fetch_add(1, Ordering::Relaxed);
        (self.progress)(PullEvent::BlobReused { digest, size });
    }

    /// Streams one blob into the store (which verifies digest and size before it is visible).
    fn blob(&self, digest: &Digest, size: u64) -> Result<(), RegistryError> {
        if self.store.has_blob(digest) {
            self.reused_blob(digest, size);
            return Ok(());
        }
        let what = format!("blob {digest}");
        (self.progress)(PullEvent::BlobStarted { digest, size });
        let path = format!("/v2/{}/blobs/{digest}", self.repository);
        let resp = self.client.get(&path, None, &what)?;
        if let Some(len) = resp.body().content_length()
            && len != size
        {
            return Err(self.protocol(
                &what,
                format!("the registry sends {len} bytes, the manifest says {size}"),
            ));
        }
        let body = resp.into_body().into_with_config().limit(size).reader();
        let mut reader = Watched {
            inner: body,
            done: 0,
            digest,
            progress: self.progress,
            failure: None,
        };
        match self.store.put_blob(&mut reader, digest, Some(size)) {
            Ok(()) => {
                self.fetched.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(size, Ordering::Relaxed);
                (self.progress)(PullEvent::BlobFetched { digest, size });
                Ok(())
            }
            Err(StoreError::Verify {
                source: VerifyError::Mismatch { expected, actual },
                ..
            }) => Err(RegistryError::DigestMismatch {
                target: self.client.target().to_string(),
                what,
                expected,
                actual,
            }),
            // Reading stops with an error one byte past the size (the body's limit): a blob
            // sent without a length that goes on is the registry's lie, not a broken download.
            Err(e) => match reader.failure {
                Some(_) if reader.done >= size => Err(self.protocol(
                    &what,
                    format!("the registry sends more than the {size} bytes the manifest says"),
                )),
                Some(net) => Err(self.protocol(
                    &what,
                    format!(
                        "download broke off after {} of {size} bytes: {net}",
                        reader.done
                    ),
                )),
                None => Err(self.store_error(&what, e)),
            },
        }
    }

    /// The descriptor the store name will point at.
    fn descriptor(
        &self,
        fetched: &Fetched,
        platform: Option<OciPlatform>,
    ) -> Result<Descriptor, RegistryError> {
        let what = format!("manifest {}", fetched.digest);
        let digest = oci_spec::image::Digest::try_from(fetched.digest.to_string())
            .map_err(|e| self.protocol(&what, e.to_string()))?;
        let mut builder = DescriptorBuilder::default()
            .media_type(fetched.media_type.clone())
            .digest(digest)
            .size(fetched.bytes.len() as u64);
        if let Some(p) = platform {
            builder = builder.platform(p);
        }
        builder
            .build()
            .map_err(|e| self.protocol(&what, e.to_string()))
    }
}

/// The response body on its way into the store: reports progress and remembers a network
/// failure, so a broken download is reported as such rather than as a store write error.
struct Watched<'a, R> {
    inner: R,
    done: u64,
    digest: &'a Digest,
    progress: &'a (dyn Fn(PullEvent<'_>) + Sync),
    failure: Option<String>,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.done += n as u64;
                if n > 0 {
                    (self.progress)(PullEvent::BlobProgress {
                        digest: self.digest,
                        done: self.done,
                    });
                }
                Ok(n)
            }
            Err(e) => {
                self.failure.get_or_insert_with(|| e.to_string());
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_manifests_and_refuses_schema1() {
        let oci = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;
        assert_eq!(identify(oci, Some("text/plain")).unwrap().1, Kind::Manifest);
        let bare_index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(identify(bare_index, None).unwrap().1, Kind::Index);
        let list = br#"{"schemaVersion":2,"manifests":[]}"#;
        let (mt, kind) = identify(
            list,
            Some("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8"),
        )
        .unwrap();
        assert_eq!(kind, Kind::Index);
        assert_eq!(
            mt.to_string(),
            "application/vnd.docker.distribution.manifest.list.v2+json"
        );
        let v1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        let err = identify(
            v1,
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
        )
        .unwrap_err();
        assert!(err.contains("schema 1"), "{err}");
        assert!(identify(v1, None).unwrap_err().contains("schema 1"));
    }

    #[test]
    fn refuses_artifacts_and_garbage() {
        let artifact =
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}"#;
        assert!(
            identify(artifact, None)
                .unwrap_err()
                .contains("unsupported media type")
        );
        let config = br#"{"mediaType":"application/vnd.oci.image.config.v1+json"}"#;
        assert!(
            identify(config, None)
                .unwrap_err()
                .contains("not a manifest")
        );
        assert!(identify(b"{}", None).is_err());
        assert!(identify(b"<html>", Some("text/html")).is_err());
    }
}
