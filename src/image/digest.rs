//! Content digests (`sha256:<64 hex>`) and the readers/writers that check them.
//!
//! Every byte rsafe takes from an image (a blob from a registry, an archive member, a file in an
//! OCI layout) passes through a [`Digest`] check before it is trusted; this module is that check.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// Why a digest string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest {0:?} has no algorithm prefix (expected sha256:<64 hex>)")]
    MissingAlgorithm(String),
    #[error("digest {0:?} uses an unsupported algorithm (only sha256 is accepted)")]
    UnsupportedAlgorithm(String),
    #[error("digest {0:?} is not 64 lowercase hex characters after sha256:")]
    BadHex(String),
}

/// A validated sha256 content digest. Only sha256 is accepted: it is what every OCI and Docker
/// image uses, and refusing the rest closes the door on algorithm-confusion tricks.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The digest of a byte slice (for manifests and configs held in memory).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(bytes))
    }

    fn from_hasher(h: Sha256) -> Self {
        Digest {
            hex: hex::encode(h.finalize()),
        }
    }

    /// The 64 hex characters, as used for the file name under `blobs/sha256/`.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// A short form for tables (`sha256:` stripped, 12 hex characters), like `docker images`.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// An error if `bytes` do not hash to this digest.
    pub fn verify_bytes(&self, bytes: &[u8]) -> Result<(), VerifyError> {
        let actual = Digest::of_bytes(bytes);
        if &actual == self {
            Ok(())
        } else {
            Err(VerifyError::Mismatch {
                expected: self.clone(),
                actual,
            })
        }
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(DigestError::MissingAlgorithm(s.to_string()));
        };
        if alg != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm(s.to_string()));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::BadHex(s.to_string()));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = DigestError;
    fn try_from(d: &oci_spec::image::Digest) -> Result<Self, Self::Error> {
        d.to_string().parse()
    }
}

impl From<&Digest> for oci_spec::image::Digest {
    fn from(d: &Digest) -> Self {
        d.to_string()
            .parse()
            .expect("a validated sha256 digest is always a valid OCI digest")
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Content that did not match what its descriptor promised.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("digest mismatch: expected {expected}, content hashes to {actual}")]
    Mismatch { expected: Digest, actual: Digest },
    #[error("size mismatch for {digest}: descriptor says {expected} bytes, content has {actual}")]
    Size {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
}

/// An incremental sha256, for bytes that arrive in pieces (a layer's decompressed bytes hashed
/// on another thread than the one that decompresses them).
pub struct Hasher {
    inner: Sha256,
}

impl Hasher {
    pub fn new() -> Self {
        Hasher {
            inner: Sha256::new(),
        }
    }

    /// Hashes the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    /// The digest of everything given.
    pub fn finish(self) -> Digest {
        Digest::from_hasher(self.inner)
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

/// A reader that hashes what passes through it, so a blob is verified while it streams
/// (into the store, or through the unpacker) without a second read.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Drains what is left (a layer tar may carry zero padding after its end marker), then checks
    /// the size, when given, and the digest.
    pub fn finish(mut self, expected: &Digest, size: Option<u64>) -> Result<R, FinishError> {
        io::copy(&mut self, &mut io::sink()).map_err(FinishError::Io)?;
        // Size first: "truncated" or "too long" says more than a digest mismatch would.
        if let Some(expected_size) = size
            && expected_size != self.count
        {
            return Err(FinishError::Verify(VerifyError::Size {
                digest: expected.clone(),
                expected: expected_size,
                actual: self.count,
            }));
        }
        let actual = Digest::from_hasher(self.hasher);
        if &actual != expected {
            return Err(FinishError::Verify(VerifyError::Mismatch {
                expected: expected.clone(),
                actual,
            }));
        }
        Ok(self.inner)
    }

    /// The digest of everything read so far (for content whose digest is learnt, not checked).
    pub fn digest(self) -> (Digest, u64, R) {
        (Digest::from_hasher(self.hasher), self.count, self.inner)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes what passes through it (used when rsafe itself writes a blob).
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest and size of everything written, and the inner writer back.
    pub fn finish(self) -> (Digest, u64, W) {
        (Digest::from_hasher(self.hasher), self.count, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reading a blob failed, or what was read did not verify.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error(transparent)]
    Io(io::Error),
    #[error(transparent)]
    Verify(VerifyError),
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints_sha256() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::of_bytes(b""));
        assert_eq!(d.short(), "e3b0c44298fc");
    }

    #[test]
    fn refuses_other_algorithms_and_bad_lengths() {
        assert!(matches!(
            "sha512:abcd".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            "sha256:abcd".parse::<Digest>(),
            Err(DigestError::BadHex(_))
        ));
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        assert!(matches!(
            upper.parse::<Digest>(),
            Err(DigestError::BadHex(_))
        ));
        assert!(matches!(
            "e3b0c44298fc".parse::<Digest>(),
            Err(DigestError::MissingAlgorithm(_))
        ));
        let traversal = format!("sha256:../../{}", &EMPTY[13..]);
        assert!(traversal.parse::<Digest>().is_err());
    }

    #[test]
    fn hashing_reader_checks_digest_and_size() {
        let d = Digest::of_bytes(b"hello");
        let r = HashingReader::new(&b"hello"[..]);
        assert!(r.finish(&d, Some(5)).is_ok());
        let r = HashingReader::new(&b"hello"[..]);
        assert!(matches!(
            r.finish(&d, Some(6)),
            Err(FinishError::Verify(VerifyError::Size { .. }))
        ));
        let r = HashingReader::new(&b"hellO"[..]);
        assert!(matches!(
            r.finish(&d, None),
            Err(FinishError::Verify(VerifyError::Mismatch { .. }))
        ));
    }
}
