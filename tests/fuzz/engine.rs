//! The fuzzing engine: a deterministic mutation fuzzer on stable Rust.
//!
//! Each target starts from the seed files in `tests/fuzz-corpus/<dir>/` (real shapes, run
//! unmutated first) and then runs a bounded number of executions. Each execution takes an
//! input from the pool, applies one to eight stacked mutations (bit flips, interesting bytes,
//! dictionary tokens of the format, range deletes/repeats/copies, splices with another seed,
//! truncation, number swaps) and runs the target on it. The pool starts as the seeds and
//! grows with every input whose *outcome* (the short signature a target returns: which error,
//! how many entries) was not seen before: a cheap stand-in for coverage feedback that keeps
//! inputs which got further than the seeds.
//!
//! What counts as a failure: a panic, a property the target checks (returned as `Err`), an
//! allocation of more than [`SOFT_ALLOC_LIMIT`] bytes at once on the target's thread, and an
//! execution that makes no progress for [`hang_secs`] (the watchdog saves the input and ends
//! the process). Failing inputs are written to `target/fuzz-crashes/<target>/`; a fixed bug's
//! input then goes into the corpus (as a seed it runs on every run) and gets a named
//! regression test.
//!
//! Everything is deterministic for a given `RSAFE_FUZZ_SEED` (default 0) and execution count,
//! so a CI failure reproduces locally. `RSAFE_FUZZ_ITERS=N` runs N executions per target;
//! `RSAFE_FUZZ_SECONDS=S` runs each target for S seconds instead (the soak in `bench/fuzz.sh`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One allocation larger than this on the target's thread during one execution is a failure:
/// every input is a few KiB, and no parser should need this much memory for one.
pub const SOFT_ALLOC_LIMIT: usize = 64 << 20;

/// Allocations larger than this are refused outright (the process then aborts with Rust's
/// "memory allocation failed" message and the target and execution number printed first), so
/// an unbounded `Vec::with_capacity(size_from_input)` cannot take the machine down.
const HARD_ALLOC_LIMIT: usize = 1 << 30;

/// The test binary's allocator: the system allocator, plus the bookkeeping above.
pub struct GuardedAlloc;

thread_local! {
    static IN_EXEC: Cell<bool> = const { Cell::new(false) };
    static PANIC_AT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static CURRENT: Cell<(&'static str, u64)> = const { Cell::new(("", 0)) };
}

fn note(size: usize) -> bool {
    let _ = LARGEST.try_with(|l| {
        if size > l.get() {
            l.set(size);
        }
    });
    if size <= HARD_ALLOC_LIMIT {
        return true;
    }
    let (target, exec) = CURRENT.try_with(|c| c.get()).unwrap_or(("?", 0));
    let mut msg = [0u8; 256];
    let mut n = 0;
    for part in [
        b"fuzz: refusing an allocation of ".as_slice(),
        itoa(size as u64, &mut [0u8; 20]),
        b" bytes in target ",
        target.as_bytes(),
        b", execution ",
        itoa(exec, &mut [0u8; 20]),
        b" (deterministic: rerun with the same RSAFE_FUZZ_SEED)\n",
    ] {
        let take = part.len().min(msg.len() - n);
        msg[n..n + take].copy_from_slice(&part[..take]);
        n += take;
    }
    // Unbuffered, from a stack buffer: nothing here allocates.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), &msg[..n]);
    false
}

fn itoa(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

// SAFETY: every method forwards to `System` with the same arguments; the only addition is
// bookkeeping in const-initialised thread locals (which never allocate) and a refusal (null)
// for oversized requests, which `GlobalAlloc` allows.
unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !note(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !note(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !note(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// splitmix64: small, fast, and the same sequence everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const INTERESTING_BYTES: &[u8] = &[
    0, 0xff, 0x7f, 0x80, b'\n', b'\r', b'\t', b'"', b'\'', b'\\', b'/', b'.', b' ', b'{', b'}',
    b'[', b']', b':', b'=', b',', b'#', b'$', b'*', b'!', b'-', b'0', b'9', 0xc3, 0xe2, 0xf0,
];

const INTERESTING_NUMBERS: &[&[u8]] = &[
    b"0",
    b"-1",
    b"1",
    b"255",
    b"256",
    b"4096",
    b"65535",
    b"2147483647",
    b"2147483648",
    b"4294967295",
    b"4294967296",
    b"9223372036854775807",
    b"18446744073709551615",
    b"18446744073709551616",
    b"99999999999999999999999999",
    b"1e309",
    b"-0",
    b"0x10",
    b"077777777777",
    b"1.5",
    b"NaN",
];

/// Tokens every format gets in addition to its own dictionary: encodings and separators that
/// parsers tend to get wrong.
const COMMON_TOKENS: &[&[u8]] = &[
    "\u{00e9}".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{1F600}".as_bytes(),
    b"\xc3",
    b"\xe2\x82",
    b"\xef\xbb\xbf",
    b"\r\n",
    b"\x1b[31m",
    b"\0",
    b"../",
    b"/../../",
];

/// Applies one random mutation to `data`.
pub fn mutate_once(
    rng: &mut Rng,
    data: &mut Vec<u8>,
    dict: &[&[u8]],
    others: &[Vec<u8>],
    max_len: usize,
) {
    let len = data.len();
    match rng.below(13) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = *rng.pick(INTERESTING_BYTES);
        }
        2 | 3 => {
            let token = if !dict.is_empty() && !rng.chance(4) {
                *rng.pick(dict)
            } else {
                *rng.pick(COMMON_TOKENS)
            };
            let at = rng.below(len + 1);
            data.splice(at..at, token.iter().copied());
        }
        4 if !dict.is_empty() && len > 0 => {
            let token = *rng.pick(dict);
            let at = rng.below(len);
            let end = (at + 1 + rng.below(16)).min(len);
            data.splice(at..end, token.iter().copied());
        }
        5 if len > 1 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(len.min(64))).min(len);
            data.drain(at..end);
        }
        6 if len > 1 => {
            // Repeat a range: nesting, long names, many entries.
            let at = rng.below(len);
            let end = (at + 1 + rng.below(len.min(128))).min(len);
            let chunk = data[at..end].to_vec();
            let times = if rng.chance(8) {
                1 + rng.below(512)
            } else {
                1 + rng.below(8)
            };
            let mut rep = Vec::with_capacity(chunk.len() * times);
            for _ in 0..times {
                rep.extend_from_slice(&chunk);
            }
            data.splice(end..end, rep);
        }
        7 if !others.is_empty() => {
            let other = rng.pick(others);
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        8 if len > 0 => data.truncate(rng.below(len)),
        9 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            data.splice(at..at, bytes);
        }
        10 => replace_number(rng, data),
        11 if len > 2 => {
            // Overwrite with a chunk from elsewhere in the input.
            let from = rng.below(len);
            let n = (1 + rng.below(32)).min(len - from);
            let chunk = data[from..from + n].to_vec();
            let to = rng.below(len);
            let end = (to + n).min(len);
            data[to..end].copy_from_slice(&chunk[..end - to]);
        }
        12 if len > 0 => duplicate_line(rng, data),
        _ => {
            let at = rng.below(len + 1);
            data.insert(at, *rng.pick(INTERESTING_BYTES));
        }
    }
    data.truncate(max_len);
}

/// Replaces one run of ASCII digits with an interesting number.
fn replace_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let starts: Vec<usize> = (0..data.len())
        .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit()))
        .collect();
    let number = *rng.pick(INTERESTING_NUMBERS);
    if starts.is_empty() {
        let at = rng.below(data.len() + 1);
        data.splice(at..at, number.iter().copied());
        return;
    }
    let start = *rng.pick(&starts);
    let mut end = start;
    while end < data.len() && data[end].is_ascii_digit() {
        end += 1;
    }
    data.splice(start..end, number.iter().copied());
}

/// Copies one line of the input to another line position (text formats' structure).
fn duplicate_line(rng: &mut Rng, data: &mut Vec<u8>) {
    let starts: Vec<usize> = std::iter::once(0)
        .chain((0..data.len()).filter(|&i| data[i] == b'\n').map(|i| i + 1))
        .filter(|&i| i <= data.len())
        .collect();
    let a = *rng.pick(&starts);
    let end = data[a..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(data.len(), |p| a + p + 1);
    let line = data[a..end].to_vec();
    let to = *rng.pick(&starts);
    data.splice(to..to, line);
}

/// A fuzz target: where its seeds are, what its format's words are, how long it runs.
pub struct Target {
    /// Test and crash-directory name.
    pub name: &'static str,
    /// Seed directories under `tests/fuzz-corpus/`.
    pub corpus: &'static [&'static str],
    /// Extra seeds: files under the repository (real fixtures), by path relative to it.
    pub extra: &'static [&'static str],
    /// Tokens of the format that mutations insert.
    pub dict: &'static [&'static [u8]],
    /// Default execution count (CI); `RSAFE_FUZZ_ITERS` / `RSAFE_FUZZ_SECONDS` override it.
    pub iters: u64,
    /// Inputs are cut to this length.
    pub max_len: usize,
    /// Run after mutation (e.g. fix tar header checksums so mutations get past them).
    pub fixup: Option<fn(&mut Rng, &mut [u8])>,
    /// Open findings, by a fragment of their failure message: counted and printed, not failed
    /// on, so CI stays green on what is reported (README, "Fuzzing") while anything new fails.
    /// Each entry goes when its fix lands.
    pub known: &'static [&'static str],
}

/// What one execution said: a short signature of the outcome (`Ok`), or a broken property.
pub type Outcome = Result<String, String>;

/// Repository root (the crate's manifest directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_seeds(target: &Target) -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for dir in target.corpus {
        let dir = repo().join("tests/fuzz-corpus").join(dir);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
            .map(|e| e.expect("corpus entry").path())
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        for p in entries {
            let bytes = std::fs::read(&p).expect("corpus file");
            seeds.push((p.display().to_string(), bytes));
        }
    }
    for pattern in target.extra {
        for p in glob_files(pattern) {
            let bytes = std::fs::read(&p).expect("fixture file");
            seeds.push((p.display().to_string(), bytes));
        }
    }
    assert!(!seeds.is_empty(), "{}: no seeds", target.name);
    seeds
}

/// `dir/*/name` style patterns: one `*` component, matched against directory entries.
fn glob_files(pattern: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let (head, tail) = pattern
        .split_once("/*/")
        .expect("extra seeds are dir/*/name");
    let Ok(entries) = std::fs::read_dir(repo().join(head)) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path().join(tail);
        if p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// How long a target runs.
enum Budget {
    Execs(u64),
    Time(Duration),
}

fn budget(target: &Target) -> Budget {
    if let Some(s) = env_u64("RSAFE_FUZZ_SECONDS") {
        return Budget::Time(Duration::from_secs(s));
    }
    Budget::Execs(env_u64("RSAFE_FUZZ_ITERS").unwrap_or(target.iters))
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

/// Seconds without progress before an execution counts as a hang.
pub fn hang_secs() -> u64 {
    env_u64("RSAFE_FUZZ_HANG_SECS").unwrap_or(60)
}

fn crash_dir(target: &str) -> PathBuf {
    let base =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), PathBuf::from);
    base.join("fuzz-crashes").join(target)
}

fn save(target: &str, kind: &str, input: &[u8]) -> PathBuf {
    let dir = crash_dir(target);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{kind}-{:016x}", fnv(input)));
    let _ = std::fs::write(&path, input);
    path
}

/// In-flight execution per target, for the watchdog.
struct Flight {
    exec: u64,
    since: Instant,
    input: Vec<u8>,
}

static FLIGHTS: Mutex<Option<HashMap<&'static str, Flight>>> = Mutex::new(None);
static WATCHDOG: OnceLock<()> = OnceLock::new();
static QUIET_PANICS: OnceLock<()> = OnceLock::new();

/// Panics inside an execution are caught and reported once per distinct message; printing
/// each one (with a backtrace) would bury the report and cost seconds. Other panics (a test's
/// own failure) still print.
fn quiet_panics() {
    QUIET_PANICS.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_EXEC.with(Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                PANIC_AT.with(|p| *p.borrow_mut() = at);
            } else {
                default(info);
            }
        }));
    });
}
static TOTAL_EXECS: AtomicU64 = AtomicU64::new(0);

fn watchdog() {
    WATCHDOG.get_or_init(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_secs(1));
            let guard = FLIGHTS.lock().unwrap_or_else(|e| e.into_inner());
            let Some(flights) = guard.as_ref() else { continue };
            for (name, f) in flights {
                if f.since.elapsed() > Duration::from_secs(hang_secs()) {
                    let path = save(name, "hang", &f.input);
                    eprintln!(
                        "fuzz {name}: execution {} made no progress for {} s (hang); input saved to {}",
                        f.exec,
                        hang_secs(),
                        path.display()
                    );
                    std::process::exit(101);
                }
            }
        });
    });
}

fn set_flight(name: &'static str, exec: u64, input: &[u8]) {
    let mut guard = FLIGHTS.lock().unwrap_or_else(|e| e.into_inner());
    let flights = guard.get_or_insert_with(HashMap::new);
    let f = flights.entry(name).or_insert_with(|| Flight {
        exec: 0,
        since: Instant::now(),
        input: Vec::new(),
    });
    f.exec = exec;
    f.since = Instant::now();
    f.input.clear();
    f.input.extend_from_slice(input);
}

fn clear_flight(name: &'static str) {
    let mut guard = FLIGHTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(flights) = guard.as_mut() {
        flights.remove(name);
    }
}

/// Runs one input through `run`, turning panics and oversized allocations into failures.
fn execute(
    name: &'static str,
    exec: u64,
    input: &[u8],
    run: &mut dyn FnMut(&[u8]) -> Outcome,
) -> Outcome {
    set_flight(name, exec, input);
    let _ = CURRENT.try_with(|c| c.set((name, exec)));
    let _ = LARGEST.try_with(|l| l.set(0));
    IN_EXEC.with(|f| f.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(input)));
    IN_EXEC.with(|f| f.set(false));
    let largest = LARGEST.try_with(|l| l.get()).unwrap_or(0);
    TOTAL_EXECS.fetch_add(1, Ordering::Relaxed);
    match result {
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            let at = PANIC_AT.with(|p| p.borrow().clone());
            Err(format!("panic at {at}: {msg}"))
        }
        Ok(_) if largest > SOFT_ALLOC_LIMIT => Err(format!(
            "allocated {largest} bytes at once for a {}-byte input (unbounded allocation?)",
            input.len()
        )),
        Ok(outcome) => outcome,
    }
}

/// What makes two failures the same: a panic's location, else the message's first words with
/// temporary paths and digits left out.
fn failure_key(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("panic at ") {
        return rest.split(": ").next().unwrap_or(rest).to_string();
    }
    msg.split(['/', ' '])
        .filter(|w| !w.starts_with(".tmp"))
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .take(64)
        .collect()
}

/// Cuts a message to one printable line of at most 300 characters (inputs carry only fake
/// secrets, but a failure message is still kept short and inert).
fn inert(msg: &str) -> String {
    msg.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect()
}

/// Fuzzes `target` with `run`. Panics (failing the test) if any execution failed, listing the
/// saved inputs.
pub fn fuzz(target: &Target, mut run: impl FnMut(&[u8]) -> Outcome) {
    watchdog();
    quiet_panics();
    let seeds = read_seeds(target);
    let base_seed = env_u64("RSAFE_FUZZ_SEED").unwrap_or(0);
    let mut rng = Rng::new(base_seed ^ fnv(target.name.as_bytes()));
    let seed_bytes: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    let mut pool: Vec<Vec<u8>> = seed_bytes.clone();
    let mut outcomes: HashSet<String> = HashSet::new();
    let mut failures: Vec<(String, PathBuf)> = Vec::new();
    let mut seen_failures: HashSet<String> = HashSet::new();
    let mut known_hits: HashMap<&'static str, u64> = HashMap::new();
    let started = Instant::now();
    let mut exec: u64 = 0;

    let mut record = |input: &[u8],
                      outcome: Outcome,
                      pool: &mut Vec<Vec<u8>>,
                      origin: Option<&str>| match outcome {
        Ok(sig) => {
            if outcomes.insert(sig) && pool.len() < 512 && origin.is_none() {
                pool.push(input.to_vec());
            }
        }
        Err(msg) => {
            if let Some(k) = target.known.iter().find(|k| msg.contains(**k)) {
                *known_hits.entry(*k).or_insert(0u64) += 1;
                return;
            }
            let msg = inert(&msg);
            if seen_failures.insert(failure_key(&msg)) {
                let path = save(target.name, "crash", input);
                let what = match origin {
                    Some(seed) => format!("seed {seed}: {msg}"),
                    None => msg,
                };
                failures.push((what, path));
            }
        }
    };

    for (name, bytes) in &seeds {
        let outcome = execute(target.name, exec, bytes, &mut run);
        exec += 1;
        record(bytes, outcome, &mut pool, Some(name));
    }
    let budget = budget(target);
    loop {
        let done = match budget {
            Budget::Execs(n) => exec >= n + seeds.len() as u64,
            Budget::Time(d) => started.elapsed() >= d,
        };
        if done {
            break;
        }
        let mut input = pool[rng.below(pool.len())].clone();
        for _ in 0..1 + rng.below(8) {
            mutate_once(
                &mut rng,
                &mut input,
                target.dict,
                &seed_bytes,
                target.max_len,
            );
        }
        if let Some(fix) = target.fixup {
            fix(&mut rng, &mut input);
        }
        let outcome = execute(target.name, exec, &input, &mut run);
        exec += 1;
        record(&input, outcome, &mut pool, None);
    }
    clear_flight(target.name);
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz {}: {exec} execs ({} seeds) in {secs:.1} s, {:.0}/s, {} distinct outcomes, pool {}, {} failures",
        target.name,
        seeds.len(),
        exec as f64 / secs.max(1e-9),
        outcomes.len(),
        pool.len(),
        failures.len()
    );
    let mut known: Vec<_> = known_hits.iter().collect();
    known.sort();
    for (k, n) in &known {
        eprintln!("fuzz {}: open finding {k:?}: {n} inputs", target.name);
    }
    if let Some(out) = std::env::var_os("RSAFE_FUZZ_REPORT") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(&out))
        {
            let _ = writeln!(
                f,
                "{}\t{exec}\t{secs:.1}\t{}\t{}\t{}",
                target.name,
                outcomes.len(),
                failures.len(),
                known.iter().map(|(_, n)| **n).sum::<u64>()
            );
        }
    }
    if !failures.is_empty() {
        let list: Vec<String> = failures
            .iter()
            .map(|(msg, path)| format!("  {msg}\n    input: {}", path.display()))
            .collect();
        panic!(
            "fuzz {}: {} failing inputs:\n{}",
            target.name,
            failures.len(),
            list.join("\n")
        );
    }
}

/// Checks an error message: one line, no control characters, and it names `what` (the file).
pub fn one_line_naming(msg: &str, what: &str) -> Result<(), String> {
    if msg.contains('\n') || msg.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!("error is not one printable line: {msg:?}"));
    }
    if !msg.contains(what) {
        return Err(format!("error does not name {what:?}: {msg:?}"));
    }
    if msg.len() > 8192 {
        return Err(format!("error is {} bytes long", msg.len()));
    }
    Ok(())
}

/// A short outcome signature from an error: its text with digits and quoted parts dropped, so
/// the same kind of error at another offset or with another name counts once.
pub fn signature(prefix: &str, msg: &str) -> String {
    let mut out = String::from(prefix);
    let mut quoted = false;
    for c in msg.chars().take(120) {
        match c {
            '"' => quoted = !quoted,
            _ if quoted || c.is_ascii_digit() => {}
            _ => out.push(c),
        }
    }
    out
}
