//! Decompression and hashing on their own thread, so they overlap with what consumes the tar.
//!
//! Reading a layer is two kinds of work: inflating and hashing the layer, and what is done with
//! its files — creating them (the unpacker: system calls) or searching them (the auditor: tar
//! parsing and secret rules). On one thread a single big layer keeps one core busy while the
//! other waits; so a reader thread runs the layer's [`Decompressed`] half (reading, compressed
//! digest, decompression, bomb cap) into 1 MiB chunks handed over a small bounded channel (at
//! most a few MiB in flight; buffers are recycled); the tar reader consumes them as a
//! [`BufRead`] and copies file data straight out of them. The diff_id hash runs on the
//! consumer's side as each chunk arrives: sha256 costs about half as much as inflating, so the
//! two threads end up with similar loads. When the blob ends, the thread runs
//! [`Decompressed::finish`] and passes the verdict along; [`Prefetch::finish`] adds the diff_id
//! check and returns both. Dropping a `Prefetch` early stops the thread at its next hand-over.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use crate::image::digest::Digest;
use crate::image::layer::{Decompressed, DiffIdCheck, LayerError, LayerStream};

const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 4;

enum Msg {
    Data(Vec<u8>),
    /// The blob's verdict: its expanded size, or why it failed.
    End(Result<u64, LayerError>),
}

/// A layer's decompressed bytes, produced by a background thread.
pub struct Prefetch {
    rx: Receiver<Msg>,
    recycle: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    end: Option<Result<u64, LayerError>>,
    /// Hashes every chunk as it arrives.
    diff_id: DiffIdCheck,
    digest: Digest,
    /// Decompressed bytes received from the reader thread.
    received: u64,
}

impl Prefetch {
    /// Starts reading `stream` (layer `digest`) on a new thread.
    pub fn spawn(stream: LayerStream, digest: Digest) -> io::Result<Prefetch> {
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let (recycle, recycled) = channel();
        let thread_digest = digest.clone();
        let (decompressed, diff_id) = stream.split();
        std::thread::Builder::new()
            .name("rsafe-layer-read".into())
            .spawn(move || produce(decompressed, thread_digest, tx, recycled))?;
        Ok(Prefetch {
            rx,
            recycle,
            cur: Vec::new(),
            pos: 0,
            end: None,
            diff_id,
            digest,
            received: 0,
        })
    }

    /// Reads what the consumer left (end-of-archive padding) and returns the stream's
    /// verification: on success the diff_id and the layer's expanded size in bytes.
    pub fn finish(mut self) -> Result<(Digest, u64), LayerError> {
        while self.end.is_none() {
            self.pos = self.cur.len();
            self.next_message();
        }
        match self.end.take() {
            Some(Ok(expanded)) if expanded == self.received => {
                Ok((self.diff_id.finish()?, expanded))
            }
            Some(Ok(expanded)) => Err(LayerError::Io {
                digest: self.digest,
                source: io::Error::other(format!(
                    "layer reader produced {expanded} bytes but delivered {}",
                    self.received
                )),
            }),
            Some(Err(e)) => Err(e),
            None => Err(LayerError::Io {
                digest: self.digest,
                source: io::Error::other("layer reader ended without a verdict"),
            }),
        }
    }

    fn next_message(&mut self) {
        match self.rx.recv() {
            Ok(Msg::Data(buf)) => {
                self.received += buf.len() as u64;
                self.diff_id.update(&buf);
                let old = std::mem::replace(&mut self.cur, buf);
                let _ = self.recycle.send(old);
                self.pos = 0;
            }
            Ok(Msg::End(result)) => self.end = Some(result),
            Err(_) => {
                self.end = Some(Err(LayerError::Io {
                    digest: self.digest.clone(),
                    source: io::Error::other("layer reader thread stopped"),
                }))
            }
        }
    }
}

fn produce(
    mut stream: Decompressed,
    digest: Digest,
    tx: SyncSender<Msg>,
    recycled: Receiver<Vec<u8>>,
) {
    loop {
        let mut buf = recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        let mut failure = None;
        while filled < CHUNK {
            match stream.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let at_end = filled < CHUNK;
        buf.truncate(filled);
        if filled > 0 && tx.send(Msg::Data(buf)).is_err() {
            return;
        }
        if let Some(source) = failure {
            // The verification usually names the cause better (a bomb, a corrupt blob).
            let verdict = match stream.finish() {
                Err(e) => Err(e),
                Ok(_) => Err(LayerError::Io { digest, source }),
            };
            let _ = tx.send(Msg::End(verdict));
            return;
        }
        if at_end {
            let _ = tx.send(Msg::End(stream.finish()));
            return;
        }
    }
}

impl Read for Prefetch {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Prefetch {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.cur.len() {
            match &self.end {
                Some(Ok(_)) => return Ok(&[]),
                Some(Err(e)) => return Err(io::Error::other(e.to_string())),
                None => self.next_message(),
            }
        }
        Ok(&self.cur[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.cur.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layer::Expect;
    use crate::image::media::Compression;
    use std::io::Write;

    fn stream(data: &[u8], max: u64) -> (LayerStream, Digest, tempfile::NamedTempFile) {
        stream_with_diff_id(data, max, Digest::of_bytes(data))
    }

    fn stream_with_diff_id(
        data: &[u8],
        max: u64,
        diff_id: Digest,
    ) -> (LayerStream, Digest, tempfile::NamedTempFile) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let compressed = zstd::encode_all(data, 1).unwrap();
        f.write_all(&compressed).unwrap();
        let digest = Digest::of_bytes(&compressed);
        let s = LayerStream::new(
            f.reopen().unwrap(),
            Compression::Zstd,
            Expect {
                digest: digest.clone(),
                size: Some(compressed.len() as u64),
                diff_id: Some(diff_id),
                max_expanded: max,
            },
        )
        .unwrap();
        (s, digest, f)
    }

    #[test]
    fn delivers_every_byte_then_the_verdict() {
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let (s, d, _f) = stream(&data, 1 << 30);
        let mut p = Prefetch::spawn(s, d).unwrap();
        let mut head = vec![0; 1000];
        p.read_exact(&mut head).unwrap();
        assert_eq!(&head[..], &data[..1000]);
        // The rest is drained (and hashed) by finish.
        assert_eq!(
            p.finish().unwrap(),
            (Digest::of_bytes(&data), data.len() as u64)
        );
    }

    #[test]
    fn a_bomb_surfaces_as_the_typed_error() {
        let data = vec![0u8; 4 * CHUNK];
        let (s, d, _f) = stream(&data, CHUNK as u64);
        let mut p = Prefetch::spawn(s, d).unwrap();
        let mut sink = Vec::new();
        assert!(p.read_to_end(&mut sink).is_err());
        assert!(matches!(p.finish(), Err(LayerError::TooLarge { .. })));
    }

    #[test]
    fn a_wrong_diff_id_is_caught_on_the_consumer_side() {
        let data: Vec<u8> = (0..2 * CHUNK + 5).map(|i| (i % 13) as u8).collect();
        let (s, d, _f) = stream_with_diff_id(&data, 1 << 30, Digest::of_bytes(b"other"));
        let mut p = Prefetch::spawn(s, d).unwrap();
        let mut all = Vec::new();
        p.read_to_end(&mut all).unwrap();
        assert_eq!(all, data, "the bytes flow; the verdict comes at the end");
        assert!(matches!(p.finish(), Err(LayerError::DiffId { .. })));
    }
}
