//! `rsafe ps` as scripts written for `docker ps` call it, through the real binary on real
//! containers, as root and as the unprivileged test user (with and without subordinate ids):
//! every `--filter` key (name, id, label, status, ancestor, exited, before, since, volume,
//! network, publish, expose; paused as root), several of one key OR and of different keys AND (labels AND),
//! `-q`, `-n`, `-l`, `--no-trunc` and `--format json` over the store; plain `ps` still the
//! host-wide scan; an unknown key, a bad value and an unknown `before=` container each one
//! line on stderr with exit 1; `ancestor=` by an image's digest, digest prefix, `name@digest`
//! and another tag of it, matching containers of images built on it too; plain `ps` as the
//! test user quiet about other users' processes, but for those in a pid namespace of their
//! own (another user's container).
#[allow(dead_code)]
#[path = "support/run.rs"]
mod run_support;
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering::SeqCst};
use std::time::Duration;

/// Each fleet's `-p` takes the next host port (tests of one binary run at once).
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

use run_support::{Caller, Output, for_each_caller, rsafe_cmd};
use serde_json::Value;
use support::hostile_images::{Layer, OCI_LAYER, docker_save};

/// `rsafe ARGS…` as `caller` on `store`, asserting it succeeded.
fn ok(caller: Caller, store: &Path, args: &[&str]) -> Output {
    let out = rsafe_cmd(caller, store, args);
    assert_eq!(out.code, 0, "{caller:?} rsafe {args:?}: {}", out.stderr);
    out
}

/// The containers of one store, by name, each with its full id.
struct Fleet {
    caller: Caller,
    ids: Vec<(&'static str, String)>,
    /// A host port for `pub`'s `-p`, unlikely to be another test's.
    port: u16,
}

impl Fleet {
    fn id(&self, name: &str) -> &str {
        let found = self.ids.iter().find(|(n, _)| *n == name);
        &found.unwrap_or_else(|| panic!("no container {name}")).1
    }

    /// The names `ps ARGS…` (which includes -q) prints the short ids of.
    fn names(&self, store: &Path, args: &[&str]) -> BTreeSet<&'static str> {
        let out = ok(self.caller, store, &[&["ps"], args].concat());
        out.stdout
            .lines()
            .map(|l| {
                self.ids
                    .iter()
                    .find(|(_, id)| id.starts_with(l.trim()) && l.trim().len() >= 12)
                    .unwrap_or_else(|| panic!("{args:?}: unknown id line {l:?}: {out:?}"))
                    .0
            })
            .collect()
    }

    fn expect(&self, store: &Path, args: &[&str], want: &[&str]) {
        let got = self.names(store, args);
        let want: BTreeSet<&str> = want.iter().copied().collect();
        assert_eq!(got, want, "{:?} rsafe ps {args:?}", self.caller);
    }
}

/// Starts, one second apart (so that creation order is by the second, as `created` is
/// recorded): `web-1` (labels app=shop tier=front, volume data:/data, running), `web-2`
/// (label app=blog, running), `db` (exited 3), `job` (exited 0), `pub` (`-p`, running) and
/// `fresh` (created, never started).
fn start_fleet(caller: Caller, store: &Path) -> Fleet {
    let rootfs = caller.rootfs();
    let rootfs = rootfs.to_str().unwrap();
    let port = 20000 + (std::process::id() % 20000) as u16 + NEXT_PORT.fetch_add(1, SeqCst);
    let publish = format!("127.0.0.1:{port}:80");
    let runs: [(&str, Vec<&str>, &str, i32); 5] = [
        (
            "web-1",
            vec![
                "-d",
                "-l",
                "app=shop",
                "-l",
                "tier=front",
                "-v",
                "data:/data",
            ],
            "sleep 300",
            0,
        ),
        ("web-2", vec!["-d", "-l", "app=blog"], "sleep 300", 0),
        ("db", vec![], "exit 3", 3),
        ("job", vec![], "true", 0),
        ("pub", vec!["-d", "-p", &publish], "sleep 300", 0),
    ];
    let mut ids = Vec::new();
    for (name, flags, script, code) in runs {
        let mut args = vec!["run", "--name", name];
        args.extend(flags);
        args.extend([rootfs, "sh", "-c", script]);
        let out = rsafe_cmd(caller, store, &args);
        assert_eq!(out.code, code, "{caller:?} {args:?}: {out:?}");
        ids.push((name, String::new()));
        std::thread::sleep(Duration::from_millis(1100));
    }
    let out = ok(
        caller,
        store,
        &["create", "--name", "fresh", rootfs, "true"],
    );
    ids.push(("fresh", out.stdout.trim().to_string()));
    // Ids of the attached runs are not printed: take them from inspect.
    for (name, id) in ids.iter_mut() {
        let doc: Value = serde_json::from_str(&ok(caller, store, &["inspect", name]).stdout)
            .unwrap_or_else(|e| panic!("inspect {name}: {e}"));
        *id = doc[0]["Id"].as_str().unwrap().to_string();
    }
    Fleet { caller, ids, port }
}

#[test]
fn every_filter_key_selects_as_dockers() {
    for_each_caller(|caller, store| {
        let f = start_fleet(caller, store);
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        // -q alone: the running ones, as docker's.
        f.expect(store, &["-q"], &["web-1", "web-2", "pub"]);
        f.expect(
            store,
            &["-aq"],
            &["web-1", "web-2", "db", "job", "pub", "fresh"],
        );
        // name: an unanchored regex; ^ and $ anchor it.
        f.expect(store, &["-q", "--filter", "name=web"], &["web-1", "web-2"]);
        f.expect(store, &["-q", "-f", "name=^web-1$"], &["web-1"]);
        f.expect(store, &["-q", "-f", "name=eb-"], &["web-1", "web-2"]);
        f.expect(store, &["-q", "-f", "name=^eb"], &[]);
        f.expect(store, &["-q", "-f", "name=^/web-2$"], &["web-2"]);
        // Without -a, a name filter sees running containers only.
        f.expect(store, &["-q", "-f", "name=db"], &[]);
        f.expect(store, &["-aq", "-f", "name=db"], &["db"]);
        // id: a prefix of the full id.
        let prefix = &f.id("web-2")[..6];
        f.expect(store, &["-aq", "-f", &format!("id={prefix}")], &["web-2"]);
        f.expect(
            store,
            &["-aq", "-f", &format!("id={}", f.id("db"))],
            &["db"],
        );
        // label: a key, or key=value; several AND.
        f.expect(store, &["-q", "-f", "label=app"], &["web-1", "web-2"]);
        f.expect(store, &["-q", "-f", "label=app=shop"], &["web-1"]);
        f.expect(
            store,
            &["-q", "-f", "label=app=shop", "-f", "label=tier=front"],
            &["web-1"],
        );
        f.expect(
            store,
            &["-q", "-f", "label=app=blog", "-f", "label=tier"],
            &[],
        );
        // status: looks at stopped ones without -a, as docker's.
        f.expect(store, &["-q", "-f", "status=exited"], &["db", "job"]);
        f.expect(store, &["-aq", "-f", "status=created"], &["fresh"]);
        f.expect(
            store,
            &["-q", "-f", "status=running"],
            &["web-1", "web-2", "pub"],
        );
        f.expect(store, &["-q", "-f", "status=paused"], &[]);
        // exited=N: exited containers with that code.
        f.expect(store, &["-aq", "-f", "exited=3"], &["db"]);
        f.expect(store, &["-aq", "-f", "exited=0"], &["job"]);
        f.expect(
            store,
            &["-aq", "-f", "exited=0", "-f", "exited=3"],
            &["db", "job"],
        );
        // ancestor: what ran.
        let all = ["web-1", "web-2", "db", "job", "pub", "fresh"];
        f.expect(store, &["-aq", "-f", &format!("ancestor={rootfs}")], &all);
        f.expect(store, &["-aq", "-f", "ancestor=/no/such/rootfs"], &[]);
        // before / since: creation order, by name or id.
        f.expect(store, &["-aq", "-f", "before=db"], &["web-1", "web-2"]);
        f.expect(store, &["-aq", "-f", "since=job"], &["pub", "fresh"]);
        let db = &f.id("db")[..12];
        f.expect(
            store,
            &["-aq", "-f", &format!("since={db}"), "-f", "before=pub"],
            &["job"],
        );
        // volume: a named volume or a mount's target.
        f.expect(store, &["-aq", "-f", "volume=data"], &["web-1"]);
        f.expect(store, &["-aq", "-f", "volume=/data"], &["web-1"]);
        f.expect(store, &["-aq", "-f", "volume=other"], &[]);
        // network: pub publishes through slirp4netns, the others have none.
        f.expect(store, &["-q", "-f", "network=slirp4netns"], &["pub"]);
        f.expect(store, &["-q", "-f", "network=none"], &["web-1", "web-2"]);
        // publish / expose: the container port.
        f.expect(store, &["-q", "-f", "publish=80"], &["pub"]);
        f.expect(
            store,
            &["-q", "-f", "publish=80/tcp", "-f", "expose=79-81"],
            &["pub"],
        );
        f.expect(store, &["-q", "-f", "publish=80/udp"], &[]);
        f.expect(store, &["-q", "-f", &format!("publish={}", f.port)], &[]);
        // paused: root only (rootless has no freezer cgroup here, and pause refuses).
        if caller == Caller::Host {
            ok(caller, store, &["pause", "web-2"]);
            f.expect(store, &["-q", "-f", "status=paused"], &["web-2"]);
            f.expect(store, &["-q", "-f", "status=running"], &["web-1", "pub"]);
            f.expect(store, &["-q"], &["web-1", "web-2", "pub"]);
            ok(caller, store, &["unpause", "web-2"]);
            f.expect(store, &["-q", "-f", "status=paused"], &[]);
        }
    });
}

#[test]
fn filters_of_one_key_or_of_different_keys_and() {
    for_each_caller(|caller, store| {
        let f = start_fleet(caller, store);
        f.expect(
            store,
            &["-aq", "-f", "name=db", "-f", "name=job"],
            &["db", "job"],
        );
        f.expect(
            store,
            &["-aq", "-f", "name=web", "-f", "status=exited"],
            &[],
        );
        f.expect(
            store,
            &[
                "-aq",
                "-f",
                "name=web-2",
                "-f",
                "name=db",
                "-f",
                "status=exited",
            ],
            &["db"],
        );
        f.expect(
            store,
            &[
                "-q",
                "-f",
                "status=running",
                "-f",
                "status=exited",
                "-f",
                "label=app",
            ],
            &["web-1", "web-2"],
        );
    });
}

#[test]
fn last_latest_no_trunc_and_json() {
    for_each_caller(|caller, store| {
        let f = start_fleet(caller, store);
        // -n / -l: the newest created, in any state, newest first.
        let newest = ok(caller, store, &["ps", "-q", "-n", "2"]).stdout;
        let want = format!("{}\n{}\n", &f.id("fresh")[..12], &f.id("pub")[..12]);
        assert_eq!(newest, want, "{caller:?}");
        f.expect(store, &["-q", "-l"], &["fresh"]);
        f.expect(
            store,
            &["-q", "-n", "2", "-f", "name=web"],
            &["web-1", "web-2"],
        );
        f.expect(store, &["-q", "-n", "1", "-f", "status=exited"], &["job"]);
        // -n or -l alone: the table, in any state.
        let table = ok(caller, store, &["ps", "-l"]).stdout;
        assert!(table.starts_with("CONTAINER ID"), "{table}");
        assert!(
            table.contains("fresh") && table.contains("Created"),
            "{table}"
        );
        assert_eq!(table.lines().count(), 2, "{table}");
        // --no-trunc: whole ids, in the table and with -q.
        let full = ok(
            caller,
            store,
            &["ps", "-aq", "--no-trunc", "-f", "name=^db$"],
        )
        .stdout;
        assert_eq!(full.trim(), f.id("db"), "{caller:?}");
        let table = ok(caller, store, &["ps", "--no-trunc"]).stdout;
        assert!(table.contains(f.id("web-1")), "{table}");
        assert!(!table.contains(&f.id("db")[..12]), "running only: {table}");
        let cut = ok(caller, store, &["ps"]).stdout;
        assert!(
            cut.starts_with("RUNTIME"),
            "plain ps is the host scan: {cut}"
        );
        // --format json: one document a line, docker's keys, with the filters.
        let json = ok(
            caller,
            store,
            &["ps", "-a", "--format", "json", "-f", "label=app"],
        );
        let docs: Vec<Value> = json
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let names: BTreeSet<&str> = docs.iter().filter_map(|d| d["Names"].as_str()).collect();
        assert_eq!(names, BTreeSet::from(["web-1", "web-2"]), "{json:?}");
        let web1 = docs.iter().find(|d| d["Names"] == "web-1").unwrap();
        assert_eq!(web1["ID"], &f.id("web-1")[..12]);
        assert_eq!(web1["State"], "running");
        assert_eq!(web1["Labels"], "app=shop,tier=front");
        assert_eq!(web1["Mounts"], "data");
        let created = web1["CreatedAt"].as_str().unwrap();
        assert!(
            created.ends_with(" +0000 UTC") && created.len() == 29,
            "{created}"
        );
        let exited = ok(
            caller,
            store,
            &["ps", "--format", "json", "-f", "exited=3", "-a"],
        );
        let db: Value = serde_json::from_str(exited.stdout.trim()).unwrap();
        assert_eq!(db["State"], "exited");
        assert_eq!(db["Status"], "Exited (3)");
    });
}

#[test]
fn a_secret_label_is_redacted_in_json() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        // A well-formed, made-up GitHub token (not a real credential).
        let body = "Zq7xP2mW9kR4tY6uB3nV8cL5".repeat(2);
        let token = format!("ghp_{}", &body[..36]);
        let label = format!("deploy.token={token}");
        let args = [
            "run",
            "--name",
            "tok",
            "-l",
            &label,
            rootfs.to_str().unwrap(),
            "true",
        ];
        ok(caller, store, &args);
        let out = ok(caller, store, &["ps", "-a", "--format", "json"]);
        assert!(!out.stdout.contains(&token), "the token leaked in ps json");
        let doc: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(doc["Labels"], "deploy.token=[redacted]");
        // Selecting by the label's key still works.
        let ids = ok(caller, store, &["ps", "-aq", "-f", "label=deploy.token"]).stdout;
        assert_eq!(ids.lines().count(), 1, "{ids}");
    });
}

#[test]
fn bad_filters_are_one_line_and_exit_1() {
    for_each_caller(|caller, store| {
        let f = start_fleet(caller, store);
        let cases: [(&[&str], &str); 6] = [
            (&["-f", "colour=red"], "unknown filter key \"colour\""),
            (&["-f", "status=sleeping"], "expected one of created"),
            (&["-f", "exited=abc"], "not an exit code"),
            (&["-f", "name"], "expected KEY=VALUE"),
            (&["-f", "publish=http"], "PORT[/PROTO]"),
            (&["-f", "before=nosuch"], "no such container: \"nosuch\""),
        ];
        for (args, says) in cases {
            let out = rsafe_cmd(caller, store, &[&["ps", "-a"], args].concat());
            assert_eq!(out.code, 1, "{caller:?} {args:?}: {out:?}");
            assert_eq!(out.stdout, "", "{args:?}");
            assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
            assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        }
        // Nothing was changed by the refusals.
        f.expect(
            store,
            &["-aq"],
            &["web-1", "web-2", "db", "job", "pub", "fresh"],
        );
    });
}

/// A plain tar layer holding one small root-owned file.
fn one_file_layer(path: &str, data: &[u8]) -> Layer {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, path, data).unwrap();
    let tar = b.into_inner().unwrap();
    Layer {
        blob: tar.clone(),
        tar,
        media_type: OCI_LAYER.into(),
    }
}

/// Loads `docker save` tarballs of `base:1` (one layer), `child:1` (base's layer and one more,
/// as `FROM base:1` builds it) and `other:1` (a layer of its own) into the store; returns
/// base's digest as the store has it.
fn load_family(caller: Caller, store: &Path, work: &Path) -> String {
    let base = one_file_layer("etc/base", b"base\n");
    let extra = one_file_layer("etc/child", b"child\n");
    let own = one_file_layer("etc/other", b"other\n");
    let images: [(&str, Vec<&Layer>); 3] = [
        ("base:1", vec![&base]),
        ("child:1", vec![&base, &extra]),
        ("other:1", vec![&own]),
    ];
    for (tag, layers) in images {
        let file = work.join(format!("{}.tar", tag.replace(':', "-")));
        docker_save(&layers, &[tag]).0.write_tar(&file);
        support::sh(std::process::Command::new("chmod").arg("644").arg(&file));
        ok(caller, store, &["-q", "load", file.to_str().unwrap()]);
    }
    let doc: Value = serde_json::from_str(&ok(caller, store, &["inspect", "base:1"]).stdout)
        .unwrap_or_else(|e| panic!("inspect base:1: {e}"));
    let digest = doc["digest"].as_str().or(doc[0]["digest"].as_str());
    digest.expect("inspect gives the digest").to_string()
}

#[test]
fn ancestor_takes_an_image_id_digest_or_other_tag_and_its_descendants() {
    let work = support::containers::shared_tempdir("rsafe-ps-ancestor-");
    support::sh(
        std::process::Command::new("chmod")
            .arg("777")
            .arg(work.path()),
    );
    for_each_caller(|caller, store| {
        let digest = load_family(caller, store, work.path());
        ok(caller, store, &["tag", "base:1", "alias:1"]);
        let mut ids = Vec::new();
        for (name, image) in [
            ("on-base", "base:1"),
            ("on-child", "child:1"),
            ("on-other", "other:1"),
            ("on-alias", "alias:1"),
        ] {
            let out = ok(caller, store, &["create", "--name", name, image, "true"]);
            ids.push((name, out.stdout.trim().to_string()));
        }
        let f = Fleet {
            caller,
            ids,
            port: 0,
        };
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        let family = ["on-base", "on-child", "on-alias"];
        for by in [
            "base:1".to_string(),
            "alias:1".to_string(),
            digest.clone(),
            hex.to_string(),
            hex[..12].to_string(),
            format!("base@{digest}"),
        ] {
            f.expect(store, &["-aq", "-f", &format!("ancestor={by}")], &family);
        }
        f.expect(store, &["-aq", "-f", "ancestor=child:1"], &["on-child"]);
        f.expect(store, &["-aq", "-f", "ancestor=other"], &[]);
        f.expect(store, &["-aq", "-f", "ancestor=other:1"], &["on-other"]);
        // One key ORs: base's family and other's.
        f.expect(
            store,
            &["-aq", "-f", "ancestor=child:1", "-f", "ancestor=other:1"],
            &["on-child", "on-other"],
        );
    });
}

/// Plain `rsafe ps` (the host scan) as the test user: root's processes (pid 1 at least) are
/// not the user's to inspect, and podman's ps says nothing about them; rsafe neither, but for
/// processes in a pid namespace below its own (containers of other users), and counts them
/// all with --verbose.
#[test]
fn rootless_ps_is_quiet_about_other_users_processes_but_their_containers() {
    if !support::have(
        "root and the test user",
        Caller::all().contains(&Caller::User),
    ) {
        return;
    }
    let store = run_support::Store::new(Caller::User);
    let store = store.path();
    let plain = ok(Caller::User, store, &["ps"]);
    assert!(plain.stdout.starts_with("RUNTIME"), "{plain:?}");
    assert!(
        !plain.stderr.contains("could not be inspected"),
        "plain rootless ps warns about other users' processes: {}",
        plain.stderr
    );
    for line in plain.stderr.lines() {
        // Only another user's container (a parallel test's, say) may be said.
        assert!(
            line.contains("in containers rsafe may not inspect"),
            "{line}"
        );
    }
    let verbose = ok(Caller::User, store, &["ps", "-v"]);
    assert!(
        verbose.stderr.contains("could not be inspected (pid "),
        "ps -v counts them: {}",
        verbose.stderr
    );
    // A root process in a pid namespace of its own: a container the user may not inspect.
    let mut contained = std::process::Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "sleep",
            "30",
        ])
        .spawn()
        .expect("unshare");
    let said = (0..50).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        let out = ok(Caller::User, store, &["ps"]);
        out.stderr
            .lines()
            .find(|l| l.contains("in containers rsafe may not inspect"))
            .map(str::to_string)
    });
    let _ = contained.kill();
    let _ = contained.wait();
    let said = said.expect("rootless ps says other users' containers are there");
    assert!(
        said.ends_with("run as root to see every container"),
        "{said}"
    );
}
