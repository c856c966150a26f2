//! Secret-scanner throughput over a real directory tree, as the layer walker would drive it:
//! `wants_path` first, at most `max_scan_bytes` of each file, `scan_file` on every file.
//!
//! `cargo bench --bench secrets [-- DIR]` (default `/usr/share`). Files are read into memory
//! first, so the numbers are the scanner's own cost, not the disk's. Prints MB/s single-threaded
//! and on all cores, and the number of hits per rule (never their values).
//! `RSAFE_BENCH_SHOW_HITS=1` also lists each hit's path, line and redacted evidence;
//! `RSAFE_BENCH_RULES=FILE` uses another rules file instead of the builtin one.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use rsafe::audit::secrets::SecretScanner;

struct File {
    path: String,
    content: Vec<u8>,
}

fn main() {
    let root = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_else(|| "/usr/share".to_string());
    let rules = std::env::var_os("RSAFE_BENCH_RULES");
    let loaded = match &rules {
        Some(path) => SecretScanner::from_file(Path::new(path)),
        None => SecretScanner::builtin(),
    };
    let scanner = match loaded {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rsafe bench: {e}");
            std::process::exit(2);
        }
    };
    let (files, skipped, total_bytes) = load(Path::new(&root), &scanner);
    let scanned: u64 = files.iter().map(|f| f.content.len() as u64).sum();
    println!(
        "corpus {root}: {} files read ({:.1} MB), {} skipped by wants_path, {:.1} MB on disk",
        files.len(),
        mb(scanned),
        skipped,
        mb(total_bytes)
    );

    let single_cpu = best_of(3, thread_cpu_time, || {
        files
            .iter()
            .map(|f| scanner.scan_file(&f.path, &f.content).len())
            .sum::<usize>()
    });
    let single = best_of(3, wall_time, || {
        files
            .iter()
            .map(|f| scanner.scan_file(&f.path, &f.content).len())
            .sum::<usize>()
    });
    let parallel = best_of(3, wall_time, || {
        files
            .par_iter()
            .map(|f| scanner.scan_file(&f.path, &f.content).len())
            .sum::<usize>()
    });
    println!(
        "scan_file, 1 thread, CPU time:  {:>8.1} MB/s  {:>9.0} files/s  ({:.3} s)",
        mb(scanned) / single_cpu.as_secs_f64(),
        files.len() as f64 / single_cpu.as_secs_f64(),
        single_cpu.as_secs_f64()
    );
    println!(
        "scan_file, 1 thread, wall time: {:>8.1} MB/s  {:>9.0} files/s  ({:.3} s)",
        mb(scanned) / single.as_secs_f64(),
        files.len() as f64 / single.as_secs_f64(),
        single.as_secs_f64()
    );
    println!(
        "scan_file, {} threads, wall time: {:>7.1} MB/s  {:>9.0} files/s  ({:.3} s)",
        rayon::current_num_threads(),
        mb(scanned) / parallel.as_secs_f64(),
        files.len() as f64 / parallel.as_secs_f64(),
        parallel.as_secs_f64()
    );

    let show = std::env::var("RSAFE_BENCH_SHOW_HITS").is_ok_and(|v| v == "1");
    let mut per_rule: BTreeMap<String, usize> = BTreeMap::new();
    for f in &files {
        for hit in scanner.scan_file(&f.path, &f.content) {
            if show {
                println!(
                    "  {} {}:{} {}",
                    hit.rule_id,
                    f.path,
                    hit.line.map_or("-".into(), |l| l.to_string()),
                    hit.evidence.excerpt
                );
            }
            *per_rule.entry(hit.rule_id).or_default() += 1;
        }
    }
    println!("hits: {}", per_rule.values().sum::<usize>());
    for (rule, n) in per_rule {
        println!("  {n:>6}  {rule}");
    }
}

/// Reads every regular file the scanner wants (as the walker would: capped), with its path as
/// seen inside an image rooted at `root`.
fn load(root: &Path, scanner: &SecretScanner) -> (Vec<File>, usize, u64) {
    let mut files = Vec::new();
    let mut skipped = 0;
    let mut total = 0;
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let Ok(entry) = entry else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        total += meta.len();
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let path = format!("/{}", rel.to_string_lossy());
        if !scanner.wants_path(&path, meta.len()) {
            skipped += 1;
            continue;
        }
        let Ok(file) = std::fs::File::open(entry.path()) else {
            continue;
        };
        let mut content = Vec::new();
        if file
            .take(scanner.max_scan_bytes())
            .read_to_end(&mut content)
            .is_ok()
        {
            files.push(File { path, content });
        }
    }
    (files, skipped, total)
}

/// The fastest of `runs` runs of `f`, timed by `clock` (a clock reading as a duration).
fn best_of(runs: usize, clock: fn() -> Duration, mut f: impl FnMut() -> usize) -> Duration {
    (0..runs)
        .map(|_| {
            let start = clock();
            std::hint::black_box(f());
            clock().saturating_sub(start)
        })
        .min()
        .unwrap_or_default()
}

fn wall_time() -> Duration {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed()
}

/// CPU time of the calling thread (first field of /proc/thread-self/schedstat, in ns): on a
/// loaded machine it measures the scanner, not the scheduler.
fn thread_cpu_time() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
