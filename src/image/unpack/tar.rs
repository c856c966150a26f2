//! A strict, bounded, streaming tar reader for layer archives.
//!
//! Why not `tar::Archive`: it reads GNU long names and PAX headers whole into memory with no
//! cap (a 60 GB "long name" is an OOM), splits PAX records on newlines (binary xattr values such
//! as `security.capability` may contain one), and reads data after directory and link headers
//! whose size field is not zero where Go's `archive/tar` (which wrote most layers) reads none —
//! a parser differential that lets one archive mean two things. This reader frames the stream
//! itself and uses only `tar::Header`'s field decoders. It:
//! - caps PAX and GNU long-name/long-link records at [`MAX_SPECIAL`] bytes and the number of
//!   headers at a caller-given limit;
//! - parses PAX records by their length prefix, honours `path`, `linkpath`, `size`, `uid`,
//!   `gid`, `mtime`, `atime` and `SCHILY.xattr.*`, and refuses GNU sparse files;
//! - refuses a name or link containing NUL, a bad checksum, an unknown entry type, two
//!   extension headers of one kind for the same entry, and header-only entries (directory,
//!   link, device, fifo) that claim data;
//! - reports a stream that ends inside a header or inside an entry's data as truncated.
//!
//! Entry data is streamed to the caller ([`TarReader::copy_data`]) straight out of the
//! underlying buffer; whatever the caller does not read is skipped by the next call to
//! [`TarReader::next_entry`].

use std::io::{self, BufRead, Write};

use super::Problem;

/// Tar block size.
const BLOCK: u64 = 512;

/// The largest PAX extended header, GNU long name or long link accepted (1 MiB, as Go's reader).
pub const MAX_SPECIAL: u64 = 1 << 20;

/// What a tar entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
}

impl Kind {
    /// Entries whose headers never carry data.
    fn header_only(self) -> bool {
        !matches!(self, Kind::Regular)
    }
}

/// A point in time as a tar entry gives it (seconds may be negative in PAX records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Time {
    pub sec: i64,
    pub nsec: u32,
}

/// One entry's header, with every extension applied.
#[derive(Debug, Clone)]
pub struct TarEntry {
    /// The name as stored (not yet validated: see [`super::entry::EntryPath`]).
    pub path: Vec<u8>,
    /// Symlink target or hard-link target; empty for other kinds.
    pub link: Vec<u8>,
    pub kind: Kind,
    /// Bytes of data that follow the header (0 for everything but regular files).
    pub size: u64,
    /// Permission bits, including setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Time,
    pub atime: Option<Time>,
    /// (major, minor) for device nodes.
    pub device: (u32, u32),
    /// Extended attributes from `SCHILY.xattr.*` PAX records, in archive order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Byte offset of the entry's header in the uncompressed stream.
    pub offset: u64,
}

/// Why the archive could not be read, where, and (when known) for which entry.
#[derive(Debug)]
pub struct TarError {
    pub offset: u64,
    pub entry: Option<Vec<u8>>,
    pub problem: Problem,
}

/// Copying an entry's data failed on the reading side (the archive) or the writing side.
#[derive(Debug)]
pub enum CopyError {
    Read(TarError),
    Write(io::Error),
}

/// Reads tar entries from a buffered stream. See the module documentation for what it refuses.
pub struct TarReader<R> {
    inner: R,
    offset: u64,
    data_left: u64,
    pad_left: u64,
    headers: u64,
    max_headers: u64,
    current: Option<Vec<u8>>,
}

impl<R: BufRead> TarReader<R> {
    /// A reader that refuses archives with more than `max_headers` headers (extension headers
    /// included), so an entry-count bomb stops early.
    pub fn new(inner: R, max_headers: u64) -> Self {
        TarReader {
            inner,
            offset: 0,
            data_left: 0,
            pad_left: 0,
            headers: 0,
            max_headers,
            current: None,
        }
    }

    /// The underlying stream (positioned after what was consumed).
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn fail(&self, problem: Problem) -> TarError {
        TarError {
            offset: self.offset,
            entry: self.current.clone(),
            problem,
        }
    }

    /// Consumes `n` bytes, failing as truncated if the stream ends first.
    fn skip(&mut self, mut n: u64) -> Result<(), TarError> {
        while n > 0 {
            let avail = self.fill()?;
            if avail == 0 {
                return Err(self.fail(Problem::Truncated));
            }
            let take = n.min(avail as u64) as usize;
            self.inner.consume(take);
            self.offset += take as u64;
            n -= take as u64;
        }
        Ok(())
    }

    fn fill(&mut self) -> Result<usize, TarError> {
        match self.inner.fill_buf() {
            Ok(buf) => Ok(buf.len()),
            Err(e) => Err(self.fail(Problem::Read(e))),
        }
    }

    /// Reads one block. `Ok(false)` on a clean end of stream at a block boundary.
    fn read_block(&mut self, block: &mut [u8; BLOCK as usize]) -> Result<bool, TarError> {
        let mut got = 0;
        while got < block.len() {
            let buf = match self.inner.fill_buf() {
                Ok(buf) => buf,
                Err(e) => return Err(self.fail(Problem::Read(e))),
            };
            if buf.is_empty() {
                if got == 0 {
                    return Ok(false);
                }
                return Err(self.fail(Problem::Truncated));
            }
            let take = buf.len().min(block.len() - got);
            block[got..got + take].copy_from_slice(&buf[..take]);
            self.inner.consume(take);
            self.offset += take as u64;
            got += take;
        }
        Ok(true)
    }

    /// Reads an extension record (PAX header or GNU long name) of `size` bytes plus padding.
    fn read_special(&mut self, size: u64, what: &'static str) -> Result<Vec<u8>, TarError> {
        if size > MAX_SPECIAL {
            return Err(self.fail(Problem::ExtensionTooLarge {
                what,
                size,
                limit: MAX_SPECIAL,
            }));
        }
        let mut data = Vec::with_capacity(size as usize);
        let mut left = size;
        while left > 0 {
            let buf = match self.inner.fill_buf() {
                Ok(buf) => buf,
                Err(e) => return Err(self.fail(Problem::Read(e))),
            };
            if buf.is_empty() {
                return Err(self.fail(Problem::Truncated));
            }
            let take = buf.len().min(left as usize);
            data.extend_from_slice(&buf[..take]);
            self.inner.consume(take);
            self.offset += take as u64;
            left -= take as u64;
        }
        self.skip(padding(size))?;
        Ok(data)
    }

    /// The next entry, or `None` at the end-of-archive marker (or a clean end of stream).
    pub fn next_entry(&mut self) -> Result<Option<TarEntry>, TarError> {
        let left = self.data_left + self.pad_left;
        self.data_left = 0;
        self.pad_left = 0;
        self.skip(left)?;
        self.current = None;

        let mut pax: Option<Vec<u8>> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut block = [0u8; BLOCK as usize];
        loop {
            let header_offset = self.offset;
            if !self.read_block(&mut block)? {
                if pax.is_some() || long_name.is_some() || long_link.is_some() {
                    return Err(self.fail(Problem::Truncated));
                }
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                if pax.is_some() || long_name.is_some() || long_link.is_some() {
                    return Err(self.fail(Problem::DanglingExtension));
                }
                // End-of-archive marker. What follows (a second zero block, padding) is drained
                // by the layer stream's verification.
                return Ok(None);
            }
            self.headers += 1;
            if self.headers > self.max_headers {
                return Err(self.fail(Problem::TooManyEntries {
                    limit: self.max_headers,
                }));
            }
            if !checksum_ok(&block) {
                self.offset = header_offset;
                return Err(self.fail(Problem::Checksum));
            }
            let header = tar::Header::from_byte_slice(&block);
            self.current = Some(header.path_bytes().into_owned());
            let size = header
                .entry_size()
                .map_err(|_| self.fail(Problem::BadField("size")))?;
            match block[156] {
                b'x' => {
                    if pax.is_some() {
                        return Err(self.fail(Problem::DuplicateExtension("PAX header")));
                    }
                    pax = Some(self.read_special(size, "PAX header")?);
                }
                b'g' => {
                    // Global PAX records (git archive writes a commit id there): read within
                    // the cap and ignored, as containerd does.
                    self.read_special(size, "global PAX header")?;
                }
                b'L' => {
                    if long_name.is_some() {
                        return Err(self.fail(Problem::DuplicateExtension("GNU long name")));
                    }
                    let data = self.read_special(size, "GNU long name")?;
                    long_name = Some(self.gnu_long(data)?);
                }
                b'K' => {
                    if long_link.is_some() {
                        return Err(self.fail(Problem::DuplicateExtension("GNU long link")));
                    }
                    let data = self.read_special(size, "GNU long link")?;
                    long_link = Some(self.gnu_long(data)?);
                }
                _ => {
                    let entry = self.build(
                        header,
                        header_offset,
                        size,
                        pax.as_deref(),
                        long_name,
                        long_link,
                    )?;
                    self.current = Some(entry.path.clone());
                    self.data_left = entry.size;
                    self.pad_left = padding(entry.size);
                    return Ok(Some(entry));
                }
            }
        }
    }

    /// One entry from its header, the long name and link that came before it, and its PAX
    /// records (which override the header's fields).
    fn build(
        &mut self,
        header: &tar::Header,
        offset: u64,
        header_size: u64,
        pax: Option<&[u8]>,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> Result<TarEntry, TarError> {
        let mut f = Fields::from_header(header, header_size, long_name, long_link);
        // A PAX error names the entry by its header path.
        self.current = Some(f.path.clone());
        if let Some(pax) = pax {
            f.apply_pax(pax).map_err(|p| self.fail(p))?;
        }
        self.current = Some(f.path.clone());
        if f.path.contains(&0) || f.link.contains(&0) {
            return Err(self.fail(Problem::Nul));
        }
        let kind = kind_of(header.as_bytes()[156], &f.path).map_err(|p| self.fail(p))?;
        if kind.header_only() && f.size != 0 {
            return Err(self.fail(Problem::HeaderOnlyWithData { size: f.size }));
        }
        let id = |v: Result<u64, Problem>, what| {
            v.and_then(|n| u32::try_from(n).map_err(|_| Problem::BadField(what)))
        };
        let uid = id(f.uid, "uid").map_err(|p| self.fail(p))?;
        let gid = id(f.gid, "gid").map_err(|p| self.fail(p))?;
        let mtime = f.mtime.map_err(|p| self.fail(p))?;
        let mode = header
            .mode()
            .map_err(|_| self.fail(Problem::BadField("mode")))?
            & 0o7777;
        let device = device_of(header, kind).map_err(|p| self.fail(p))?;
        Ok(TarEntry {
            path: f.path,
            link: f.link,
            kind,
            size: f.size,
            mode,
            uid,
            gid,
            mtime,
            atime: f.atime,
            device,
            xattrs: f.xattrs,
            offset,
        })
    }

    /// GNU long names end with NUL padding; a NUL before the end would hide the rest of the
    /// name from some readers (Go's stops there), so it is refused.
    fn gnu_long(&mut self, mut data: Vec<u8>) -> Result<Vec<u8>, TarError> {
        while data.last() == Some(&0) {
            data.pop();
        }
        if data.contains(&0) {
            self.current = Some(data);
            return Err(self.fail(Problem::Nul));
        }
        Ok(data)
    }

    /// Streams the rest of the current entry's data into `out`; returns the bytes copied.
    pub fn copy_data(&mut self, out: &mut impl Write) -> Result<u64, CopyError> {
        let mut copied = 0;
        while self.data_left > 0 {
            let buf = match self.inner.fill_buf() {
                Ok(buf) => buf,
                Err(e) => return Err(CopyError::Read(self.fail(Problem::Read(e)))),
            };
            if buf.is_empty() {
                return Err(CopyError::Read(self.fail(Problem::Truncated)));
            }
            let take = buf
                .len()
                .min(self.data_left.min(usize::MAX as u64) as usize);
            out.write_all(&buf[..take]).map_err(CopyError::Write)?;
            self.inner.consume(take);
            self.offset += take as u64;
            self.data_left -= take as u64;
            copied += take as u64;
        }
        Ok(copied)
    }
}

/// An entry's fields as its header gives them, before PAX records override them. A bad
/// numeric field is kept as an error until used: a PAX record may replace it.
struct Fields {
    path: Vec<u8>,
    link: Vec<u8>,
    size: u64,
    uid: Result<u64, Problem>,
    gid: Result<u64, Problem>,
    mtime: Result<Time, Problem>,
    atime: Option<Time>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Fields {
    fn from_header(
        header: &tar::Header,
        size: u64,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> Self {
        let field = |name: &'static str| move |_| Problem::BadField(name);
        Fields {
            path: long_name.unwrap_or_else(|| header.path_bytes().into_owned()),
            link: long_link.unwrap_or_else(|| {
                header
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default()
            }),
            size,
            uid: header.uid().map_err(field("uid")),
            gid: header.gid().map_err(field("gid")),
            mtime: header.mtime().map_err(field("mtime")).and_then(|s| {
                Ok(Time {
                    sec: i64::try_from(s).map_err(|_| Problem::BadField("mtime"))?,
                    nsec: 0,
                })
            }),
            atime: None,
            xattrs: Vec::new(),
        }
    }

    /// PAX records override the header (POSIX pax format): names, size, ids, times, and
    /// `SCHILY.xattr.*` extended attributes. GNU sparse files are refused.
    fn apply_pax(&mut self, pax: &[u8]) -> Result<(), Problem> {
        for (key, value) in parse_pax(pax)? {
            match key {
                b"path" => self.path = value.to_vec(),
                b"linkpath" => self.link = value.to_vec(),
                b"size" => self.size = parse_decimal(value).ok_or(Problem::BadField("PAX size"))?,
                b"uid" => self.uid = parse_decimal(value).ok_or(Problem::BadField("PAX uid")),
                b"gid" => self.gid = parse_decimal(value).ok_or(Problem::BadField("PAX gid")),
                b"mtime" => self.mtime = parse_time(value).ok_or(Problem::BadField("PAX mtime")),
                b"atime" => self.atime = parse_time(value),
                _ if key.starts_with(b"SCHILY.xattr.") => self
                    .xattrs
                    .push((key[b"SCHILY.xattr.".len()..].to_vec(), value.to_vec())),
                _ if key.starts_with(b"GNU.sparse.") => {
                    return Err(Problem::Unsupported("GNU sparse file".into()));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The entry's kind from its type flag. Pre-POSIX archives mark directories with a trailing
/// slash on a regular entry.
fn kind_of(typeflag: u8, path: &[u8]) -> Result<Kind, Problem> {
    Ok(match typeflag {
        b'0' | b'7' => Kind::Regular,
        0 if path.ends_with(b"/") => Kind::Directory,
        0 => Kind::Regular,
        b'1' => Kind::HardLink,
        b'2' => Kind::Symlink,
        b'3' => Kind::CharDevice,
        b'4' => Kind::BlockDevice,
        b'5' => Kind::Directory,
        b'6' => Kind::Fifo,
        b'S' => return Err(Problem::Unsupported("GNU sparse file".into())),
        other => {
            return Err(Problem::Unsupported(format!(
                "entry type {:?}",
                char::from(other)
            )));
        }
    })
}

/// A device node's (major, minor); (0, 0) for every other kind.
fn device_of(header: &tar::Header, kind: Kind) -> Result<(u32, u32), Problem> {
    if !matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
        return Ok((0, 0));
    }
    let major = header
        .device_major()
        .map_err(|_| Problem::BadField("device major"))?;
    let minor = header
        .device_minor()
        .map_err(|_| Problem::BadField("device minor"))?;
    Ok((major.unwrap_or(0), minor.unwrap_or(0)))
}

fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

/// The header checksum: the sum of all bytes with the checksum field read as spaces. Both the
/// unsigned (POSIX) and the signed (old Sun tar) sums are accepted, as GNU tar and Go do.
fn checksum_ok(block: &[u8; BLOCK as usize]) -> bool {
    let field = &block[148..156];
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    let Ok(text) = std::str::from_utf8(&digits) else {
        return false;
    };
    let Ok(stored) = i64::from_str_radix(text, 8) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || stored == signed
}

/// One PAX record: (key, value).
type PaxRecord<'a> = (&'a [u8], &'a [u8]);

/// PAX records: `"<len> <key>=<value>\n"`, where `<len>` counts the whole record. Values are
/// binary-safe (an xattr value may contain a newline), so records are cut by their length.
fn parse_pax(mut data: &[u8]) -> Result<Vec<PaxRecord<'_>>, Problem> {
    let mut records = Vec::new();
    while !data.is_empty() {
        let space = data
            .iter()
            .take(20)
            .position(|&b| b == b' ')
            .ok_or(Problem::MalformedPax)?;
        let len = parse_decimal(&data[..space]).ok_or(Problem::MalformedPax)? as usize;
        if len <= space + 1 || len > data.len() {
            return Err(Problem::MalformedPax);
        }
        let record = data[space + 1..len]
            .strip_suffix(b"\n")
            .ok_or(Problem::MalformedPax)?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or(Problem::MalformedPax)?;
        records.push((&record[..eq], &record[eq + 1..]));
        data = &data[len..];
    }
    Ok(records)
}

fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// A PAX time: `[-]seconds[.fraction]`.
fn parse_time(s: &[u8]) -> Option<Time> {
    let (negative, s) = match s.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = match s.iter().position(|&b| b == b'.') {
        Some(dot) => (&s[..dot], &s[dot + 1..]),
        None => (s, &b""[..]),
    };
    let sec = i64::try_from(parse_decimal(whole)?).ok()?;
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut nsec: u32 = 0;
    for i in 0..9 {
        nsec = nsec * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    Some(if !negative {
        Time { sec, nsec }
    } else if nsec == 0 {
        Time { sec: -sec, nsec: 0 }
    } else {
        Time {
            sec: -sec - 1,
            nsec: 1_000_000_000 - nsec,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &[u8], typeflag: u8, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_mut_bytes()[156] = typeflag;
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(1);
        h.set_gid(2);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        h
    }

    fn archive(parts: &[(tar::Header, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (h, data) in parts {
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len() + padding(data.len() as u64) as usize, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in records {
            let body = k.len() + v.len() + 3;
            let mut len = body + body.to_string().len();
            if len.to_string().len() != body.to_string().len() {
                len += 1;
            }
            out.extend_from_slice(format!("{len} {k}=").as_bytes());
            out.extend_from_slice(v);
            out.push(b'\n');
        }
        out
    }

    fn all(bytes: &[u8]) -> Result<Vec<(TarEntry, Vec<u8>)>, TarError> {
        let mut r = TarReader::new(bytes, 100);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry()? {
            let mut data = Vec::new();
            match r.copy_data(&mut data) {
                Ok(_) => {}
                Err(CopyError::Read(e)) => return Err(e),
                Err(CopyError::Write(e)) => panic!("{e}"),
            }
            out.push((e, data));
        }
        Ok(out)
    }

    #[test]
    fn reads_entries_and_data() {
        let a = archive(&[
            (header(b"dir/", b'5', 0), b""),
            (header(b"dir/file", b'0', 5), b"hello"),
        ]);
        let entries = all(&a).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0.kind, Kind::Directory);
        assert_eq!(entries[1].0.path, b"dir/file");
        assert_eq!(entries[1].1, b"hello");
        assert_eq!((entries[1].0.uid, entries[1].0.gid), (1, 2));
    }

    #[test]
    fn unread_data_is_skipped() {
        let a = archive(&[
            (header(b"a", b'0', 700), &[1u8; 700]),
            (header(b"b", b'0', 1), b"x"),
        ]);
        let mut r = TarReader::new(&a[..], 10);
        assert_eq!(r.next_entry().unwrap().unwrap().path, b"a");
        assert_eq!(r.next_entry().unwrap().unwrap().path, b"b");
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn pax_records_are_binary_safe_and_override_the_header() {
        let value = b"a\nb=c\x00d";
        let records = pax(&[
            ("path", b"long/name"),
            ("SCHILY.xattr.user.x", value),
            ("mtime", b"1700000000.5"),
            ("uid", b"100000"),
        ]);
        let a = archive(&[
            (
                header(b"PaxHeaders/x", b'x', records.len() as u64),
                &records,
            ),
            (header(b"short", b'0', 0), b""),
        ]);
        let e = &all(&a).unwrap()[0].0;
        assert_eq!(e.path, b"long/name");
        assert_eq!(e.xattrs, vec![(b"user.x".to_vec(), value.to_vec())]);
        assert_eq!(
            e.mtime,
            Time {
                sec: 1_700_000_000,
                nsec: 500_000_000
            }
        );
        assert_eq!(e.uid, 100000);
    }

    #[test]
    fn refuses_what_readers_disagree_on() {
        // A NUL inside a PAX path.
        let records = pax(&[("path", b"a\x00b")]);
        let a = archive(&[
            (header(b"x", b'x', records.len() as u64), &records),
            (header(b"y", b'0', 0), b""),
        ]);
        assert!(matches!(all(&a).unwrap_err().problem, Problem::Nul));
        // A directory that claims data.
        let a = archive(&[(header(b"d/", b'5', 3), b"abc")]);
        assert!(matches!(
            all(&a).unwrap_err().problem,
            Problem::HeaderOnlyWithData { size: 3 }
        ));
        // Two long names for one entry.
        let a = archive(&[
            (header(b"././@LongLink", b'L', 2), b"a\0"),
            (header(b"././@LongLink", b'L', 2), b"b\0"),
            (header(b"c", b'0', 0), b""),
        ]);
        assert!(matches!(
            all(&a).unwrap_err().problem,
            Problem::DuplicateExtension(_)
        ));
        // A bad checksum.
        let mut h = header(b"f", b'0', 0);
        h.as_mut_bytes()[0] = b'g';
        assert!(matches!(
            all(&archive(&[(h, b"")])).unwrap_err().problem,
            Problem::Checksum
        ));
    }

    #[test]
    fn caps_extension_records_and_headers() {
        let mut big = header(b"././@LongLink", b'L', 0);
        big.set_size(MAX_SPECIAL + 1);
        big.set_cksum();
        let mut a = big.as_bytes().to_vec();
        a.resize(a.len() + 4096, b'a');
        let err = all(&a).unwrap_err();
        assert!(matches!(err.problem, Problem::ExtensionTooLarge { .. }));

        let many: Vec<_> = (0..5)
            .map(|i| (header(format!("f{i}").as_bytes(), b'0', 0), &b""[..]))
            .collect();
        let a = archive(&many);
        let mut r = TarReader::new(&a[..], 3);
        let mut seen = 0;
        let err = loop {
            match r.next_entry() {
                Ok(Some(_)) => seen += 1,
                Ok(None) => panic!("limit not enforced"),
                Err(e) => break e,
            }
        };
        assert_eq!(seen, 3);
        assert!(matches!(err.problem, Problem::TooManyEntries { limit: 3 }));
    }

    #[test]
    fn truncation_is_an_error_but_a_missing_end_marker_is_not() {
        let a = archive(&[(header(b"f", b'0', 1000), &[7u8; 1000])]);
        assert!(matches!(
            all(&a[..900]).unwrap_err().problem,
            Problem::Truncated
        ));
        assert!(matches!(
            all(&a[..300]).unwrap_err().problem,
            Problem::Truncated
        ));
        assert_eq!(all(&a[..1536]).unwrap().len(), 1);
    }

    #[test]
    fn times_and_numbers() {
        assert_eq!(parse_time(b"12"), Some(Time { sec: 12, nsec: 0 }));
        assert_eq!(
            parse_time(b"-1.25"),
            Some(Time {
                sec: -2,
                nsec: 750_000_000
            })
        );
        assert_eq!(parse_time(b"1.x"), None);
        assert_eq!(parse_decimal(b"+1"), None);
        assert_eq!(parse_decimal(b"99999999999999999999999"), None);
        assert!(parse_pax(b"6 a=b\n").is_ok());
        assert!(parse_pax(b"99 a=b\n").is_err());
        assert!(parse_pax(b"6 a=b\nx").is_err());
        assert!(parse_pax(b"5 a=b\n").is_err());
    }
}
