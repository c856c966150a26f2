//! Decompression and hashing on their own thread, so they overlap with writing files.
//!
//! Unpacking is two kinds of work: inflating and hashing the layer (CPU) and creating files
//! (system calls). A reader thread runs the [`LayerStream`] into 1 MiB chunks handed over a
//! small bounded channel (at most a few MiB in flight; buffers are recycled); the tar reader
//! consumes them as a [`BufRead`] and copies file data straight out of them. When the stream
//! ends, the thread runs [`LayerStream::finish`] (digest, size and diff_id checks) and passes
//! the verdict along; [`Prefetch::finish`] returns it. Dropping a `Prefetch` early stops the
//! thread at its next hand-over.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use crate::image::digest::Digest;
use crate::image::layer::{LayerError, LayerStream};

const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 4;

enum Msg {
    Data(Vec<u8>),
    End(Result<Digest, LayerError>),
}

/// A layer's decompressed bytes, produced by a background thread.
pub struct Prefetch {
    rx: Receiver<Msg>,
    recycle: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    end: Option<Result<Digest, LayerError>>,
    digest: Digest,
}

impl Prefetch {
    /// Starts reading `stream` (layer `digest`) on a new thread.
    pub fn spawn(stream: LayerStream, digest: Digest) -> io::Result<Prefetch> {
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let (recycle, recycled) = channel();
        let thread_digest = digest.clone();
        std::thread::Builder::new()
            .name("rsafe-layer-read".into())
            .spawn(move || produce(stream, thread_digest, tx, recycled))?;
        Ok(Prefetch {
            rx,
            recycle,
            cur: Vec::new(),
            pos: 0,
            end: None,
            digest,
        })
    }

    /// Reads what the consumer left (end-of-archive padding) and returns the stream's
    /// verification: the diff_id on success.
    pub fn finish(mut self) -> Result<Digest, LayerError> {
        while self.end.is_none() {
            self.pos = self.cur.len();
            self.next_message();
        }
        self.end.take().unwrap_or_else(|| {
            Err(LayerError::Io {
                digest: self.digest.clone(),
                source: io::Error::other("layer reader ended without a verdict"),
            })
        })
    }

    fn next_message(&mut self) {
        match self.rx.recv() {
            Ok(Msg::Data(buf)) => {
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
    mut stream: LayerStream,
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
                diff_id: Some(Digest::of_bytes(data)),
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
        assert_eq!(p.finish().unwrap(), Digest::of_bytes(&data));
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
}
