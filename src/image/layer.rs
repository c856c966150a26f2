//! Reading a layer blob as a tar stream: decompressed, bounded, and verified as it streams.
//!
//! A layer is read once, front to back (by the unpacker or the auditor). While it streams,
//! the compressed bytes are hashed against the manifest's digest and size, the decompressed
//! bytes against the config's diff_id, and the expanded size is capped against decompression
//! bombs. [`LayerStream::finish`] reports any mismatch; until it returns `Ok`, nothing derived
//! from the stream may be trusted (callers discard what they wrote).

use std::fs::File;
use std::io::{self, BufReader, Read};

use super::digest::{Digest, FinishError, Hasher, HashingReader, VerifyError};
use super::media::Compression;

/// Default cap on a layer's expanded size (64 GiB): far above real images, far below a bomb
/// that would fill the disk. Configurable per call.
pub const DEFAULT_MAX_EXPANDED: u64 = 64 << 30;

/// Why a layer stream failed.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {digest}: {source}")]
    Io { digest: Digest, source: io::Error },
    #[error("layer {digest}: {source}")]
    Verify { digest: Digest, source: VerifyError },
    #[error(
        "layer {digest}: uncompressed content hashes to {actual}, but the image config says diff_id {expected}"
    )]
    DiffId {
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer {digest}: expands past the limit of {limit} bytes (decompression bomb?)")]
    TooLarge { digest: Digest, limit: u64 },
}

/// What the stream is checked against.
#[derive(Debug, Clone)]
pub struct Expect {
    pub digest: Digest,
    pub size: Option<u64>,
    pub diff_id: Option<Digest>,
    pub max_expanded: u64,
}

type Compressed = HashingReader<BufReader<File>>;

enum Decoder {
    Plain(Compressed),
    // Boxed: the inflate state is large and would make every variant pay for it.
    Gzip(Box<flate2::read::MultiGzDecoder<Compressed>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<Compressed>>),
}

impl Read for Decoder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

/// The bytes of a layer's tar, decompressed. Read it to the end, then call [`finish`].
///
/// It is two halves that [`split`] can hand to different threads: [`Decompressed`] (reading,
/// the compressed digest and size, decompression, the bomb cap) and [`DiffIdCheck`] (the hash
/// of the decompressed bytes against the config's diff_id).
///
/// [`finish`]: LayerStream::finish
/// [`split`]: LayerStream::split
pub struct LayerStream {
    decompressed: Decompressed,
    diff_id: DiffIdCheck,
}

impl LayerStream {
    /// Opens `file` (a layer blob) for streaming with the given compression and expectations.
    pub fn new(file: File, compression: Compression, expect: Expect) -> Result<Self, LayerError> {
        let compressed = HashingReader::new(BufReader::with_capacity(256 << 10, file));
        let decoder = match compression {
            Compression::None => Decoder::Plain(compressed),
            Compression::Gzip => {
                Decoder::Gzip(Box::new(flate2::read::MultiGzDecoder::new(compressed)))
            }
            Compression::Zstd => Decoder::Zstd(
                zstd::stream::read::Decoder::new(compressed).map_err(|source| LayerError::Io {
                    digest: expect.digest.clone(),
                    source,
                })?,
            ),
        };
        let diff_id = DiffIdCheck {
            hasher: Hasher::new(),
            expected: expect.diff_id.clone(),
            digest: expect.digest.clone(),
        };
        Ok(LayerStream {
            decompressed: Decompressed {
                decoder,
                expanded: 0,
                expect,
            },
            diff_id,
        })
    }

    /// Decompressed bytes produced so far.
    pub fn expanded(&self) -> u64 {
        self.decompressed.expanded
    }

    /// Drains the rest of the stream and checks digest, size and diff_id. Call after the tar
    /// reader is done with the stream.
    pub fn finish(mut self) -> Result<Digest, LayerError> {
        // Drain through `read` so the diff_id sees every byte; `read` stops at the bomb cap.
        let mut buf = vec![0; 64 << 10];
        loop {
            match self.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // `Decompressed::finish` meets the same error and reports it, typed.
                Err(_) => break,
            }
        }
        self.decompressed.finish()?;
        self.diff_id.finish()
    }

    /// The two halves: `Decompressed` yields the bytes and verifies the blob; `DiffIdCheck`
    /// must be given the same bytes, in order, and finished after `Decompressed::finish`.
    pub fn split(self) -> (Decompressed, DiffIdCheck) {
        (self.decompressed, self.diff_id)
    }
}

impl Read for LayerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.decompressed.read(buf)?;
        self.diff_id.update(&buf[..n]);
        Ok(n)
    }
}

/// A layer blob being read and decompressed: verified against its digest and size, capped
/// against decompression bombs. The diff_id is not checked here (see [`DiffIdCheck`]).
pub struct Decompressed {
    decoder: Decoder,
    expanded: u64,
    expect: Expect,
}

impl Decompressed {
    /// Decompressed bytes produced so far.
    pub fn expanded(&self) -> u64 {
        self.expanded
    }

    /// Drains the rest of the blob and checks the bomb cap, the size and the digest. Returns
    /// the expanded size.
    pub fn finish(self) -> Result<u64, LayerError> {
        let Decompressed {
            decoder,
            expanded,
            expect,
        } = self;
        let digest = expect.digest.clone();
        let mut decoder = decoder;
        let budget = expect.max_expanded.saturating_sub(expanded);
        let drained =
            io::copy(&mut (&mut decoder).take(budget + 1), &mut io::sink()).map_err(|source| {
                LayerError::Io {
                    digest: digest.clone(),
                    source,
                }
            })?;
        let expanded = expanded + drained;
        if expanded > expect.max_expanded {
            return Err(LayerError::TooLarge {
                digest,
                limit: expect.max_expanded,
            });
        }
        let compressed = match decoder {
            Decoder::Plain(r) => r,
            Decoder::Gzip(r) => (*r).into_inner(),
            Decoder::Zstd(r) => r.finish().into_inner(),
        };
        compressed
            .finish(&digest, expect.size)
            .map_err(|e| match e {
                FinishError::Io(source) => LayerError::Io {
                    digest: digest.clone(),
                    source,
                },
                FinishError::Verify(source) => LayerError::Verify {
                    digest: digest.clone(),
                    source,
                },
            })?;
        Ok(expanded)
    }
}

impl Read for Decompressed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.expanded > self.expect.max_expanded {
            return Err(io::Error::other(format!(
                "layer expands past the limit of {} bytes (decompression bomb?)",
                self.expect.max_expanded
            )));
        }
        let n = self.decoder.read(buf)?;
        self.expanded += n as u64;
        Ok(n)
    }
}

/// The check of a layer's decompressed bytes against the diff_id of the image config.
#[must_use = "a layer is trusted only once its diff_id check has finished"]
pub struct DiffIdCheck {
    hasher: Hasher,
    expected: Option<Digest>,
    /// The layer (for errors).
    digest: Digest,
}

impl DiffIdCheck {
    /// Hashes the next decompressed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// The diff_id of the bytes given; an error if the config expects another.
    pub fn finish(self) -> Result<Digest, LayerError> {
        let actual = self.hasher.finish();
        match self.expected {
            Some(expected) if expected != actual => Err(LayerError::DiffId {
                digest: self.digest,
                expected,
                actual,
            }),
            _ => Ok(actual),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn blob(bytes: &[u8]) -> (tempfile::NamedTempFile, Digest) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        (f, Digest::of_bytes(bytes))
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn expect(digest: &Digest, diff_id: Option<Digest>, max: u64) -> Expect {
        Expect {
            digest: digest.clone(),
            size: None,
            diff_id,
            max_expanded: max,
        }
    }

    #[test]
    fn gzip_and_zstd_stream_and_verify() {
        let data = vec![7u8; 100_000];
        let diff = Digest::of_bytes(&data);
        for (bytes, c) in [
            (gzip(&data), Compression::Gzip),
            (zstd::encode_all(&data[..], 3).unwrap(), Compression::Zstd),
            (data.clone(), Compression::None),
        ] {
            let (f, d) = blob(&bytes);
            let mut s = LayerStream::new(
                f.reopen().unwrap(),
                c,
                expect(&d, Some(diff.clone()), 1 << 20),
            )
            .unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
            assert_eq!(s.finish().unwrap(), diff);
        }
    }

    #[test]
    fn wrong_diff_id_and_wrong_digest_are_errors() {
        let data = b"layer";
        let (f, d) = blob(&gzip(data));
        let s = LayerStream::new(
            f.reopen().unwrap(),
            Compression::Gzip,
            expect(&d, Some(Digest::of_bytes(b"other")), 1 << 20),
        )
        .unwrap();
        assert!(matches!(s.finish(), Err(LayerError::DiffId { .. })));
        let s = LayerStream::new(
            f.reopen().unwrap(),
            Compression::Gzip,
            expect(&Digest::of_bytes(b"x"), None, 1 << 20),
        )
        .unwrap();
        assert!(matches!(s.finish(), Err(LayerError::Verify { .. })));
    }

    #[test]
    fn bombs_stop_at_the_cap() {
        let data = vec![0u8; 10 << 20];
        let (f, d) = blob(&zstd::encode_all(&data[..], 3).unwrap());
        let mut s = LayerStream::new(
            f.reopen().unwrap(),
            Compression::Zstd,
            expect(&d, None, 1 << 20),
        )
        .unwrap();
        let mut out = Vec::new();
        assert!(s.read_to_end(&mut out).is_err());
        assert!(out.len() < (2 << 20));
        let s = LayerStream::new(
            f.reopen().unwrap(),
            Compression::Zstd,
            expect(&d, None, 1 << 20),
        )
        .unwrap();
        assert!(matches!(s.finish(), Err(LayerError::TooLarge { .. })));
    }

    #[test]
    fn split_halves_verify_like_the_whole() {
        let data = vec![3u8; 50_000];
        let (f, d) = blob(&gzip(&data));
        let s = LayerStream::new(
            f.reopen().unwrap(),
            Compression::Gzip,
            expect(&d, Some(Digest::of_bytes(b"not this")), 1 << 20),
        )
        .unwrap();
        let (mut bytes, mut diff_id) = s.split();
        let mut out = Vec::new();
        bytes.read_to_end(&mut out).unwrap();
        diff_id.update(&out);
        assert_eq!(bytes.finish().unwrap(), data.len() as u64);
        assert!(matches!(diff_id.finish(), Err(LayerError::DiffId { .. })));
    }
}
