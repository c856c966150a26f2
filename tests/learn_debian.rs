//! `rsafe run --learn` on Debian workloads (issue 18): `apt-get install` of a local `.deb`, and
//! Debian's `python3 -m http.server` serving a file to the host through `-p`. Each is learned
//! from one run, then run again under the learned policy unchanged (same output), and what it
//! did not do is refused; as root and as the unprivileged test user, with and without
//! subordinate id ranges. The images are real Debian bookworm built by mmdebstrap
//! (tests/support/debian.rs): with `RSAFE_TEST_REQUIRE=1` an image that cannot be built fails
//! the test instead of skipping it.
#[allow(dead_code)]
#[path = "support/run.rs"]
mod run_support;
mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use run_support::{Caller, Output, rsafe_cmd};
use support::debian;

/// A caller's store with one image loaded, and a directory it may write policies to.
struct Loaded {
    caller: Caller,
    store: run_support::Store,
    image: String,
    out: tempfile::TempDir,
}

impl Loaded {
    /// `rsafe load LAYOUT` into a fresh store of `caller`.
    fn new(caller: Caller, layout: &str) -> Loaded {
        let store = run_support::Store::new(caller);
        let load = rsafe_cmd(caller, store.path(), &["load", layout]);
        assert_eq!(load.code, 0, "{caller:?}: {load:?}");
        let image = load
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("Loaded image: "))
            .unwrap_or_else(|| panic!("{caller:?}: no image name in {load:?}"))
            .to_string();
        let out = support::temp_root();
        support::sh(Command::new("chmod").arg("777").arg(out.path()));
        Loaded {
            caller,
            store,
            image,
            out,
        }
    }

    /// `rsafe run --rm FLAGS IMAGE COMMAND…`.
    fn run(&self, flags: &[&str], command: &[&str]) -> Output {
        let mut args = vec!["--rm"];
        args.extend_from_slice(flags);
        args.push(&self.image);
        args.extend_from_slice(command);
        run_support::run(self.caller, self.store.path(), &args)
    }

    /// The `rsafe run --rm FLAGS IMAGE COMMAND…` process, not started.
    fn command(&self, flags: &[&str], command: &[&str]) -> Command {
        let mut cmd = self.caller.command(self.store.path());
        cmd.args(["run", "--rm"])
            .args(flags)
            .arg(&self.image)
            .args(command);
        cmd
    }

    fn policy(&self, name: &str) -> PathBuf {
        self.out.path().join(name)
    }
}

/// Runs `check` for every caller, each with `image` loaded in a store of its own.
fn for_each_caller(image: Option<String>, check: impl Fn(&Loaded)) {
    if !run_support::userns_works() {
        return;
    }
    let Some(image) = image else { return };
    for caller in Caller::all() {
        check(&Loaded::new(caller, &image));
    }
}

/// The syscalls `rsafe policy show POLICY --syscalls` lists as allowed.
fn allowed_syscalls(l: &Loaded, policy: &str) -> BTreeSet<String> {
    let out = rsafe_cmd(
        l.caller,
        l.store.path(),
        &["policy", "show", policy, "--syscalls"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("allow ").or_else(|| l.strip_prefix("args ")))
        .map(str::to_string)
        .collect()
}

/// The learned TOML, parsed.
fn learned(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap();
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The strings (or numbers, as text) of `section.key` in a learned TOML.
fn list(t: &toml::Table, section: &str, key: &str) -> Vec<String> {
    t[section][key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .collect()
}

/// What every learned policy must be: fewer syscalls than the default (and none it lacks), no
/// landlock rule on the whole image, and a handful of rules, not a file list (but for the
/// files read in /etc, /root and /home).
#[track_caller]
fn check_small(l: &Loaded, policy: &Path, t: &toml::Table) {
    let caller = l.caller;
    let syscalls = allowed_syscalls(l, policy.to_str().unwrap());
    let default = allowed_syscalls(l, "default");
    assert!(syscalls.is_subset(&default), "{caller:?}: {syscalls:?}");
    assert!(
        syscalls.len() * 2 < default.len(),
        "{caller:?}: {} learned of {} default",
        syscalls.len(),
        default.len()
    );
    for key in ["read_exec", "read_write"] {
        let rules = list(t, "landlock", key);
        assert!(
            !rules.contains(&"/".to_string()),
            "{caller:?}: {key} {rules:?}"
        );
        // Directories, not files, except for what was read in /etc, /root and /home, which
        // is kept file by file (so /etc/passwd never grants /etc/shadow).
        let (kept, dirs): (Vec<&String>, Vec<&String>) = rules.iter().partition(|r| {
            ["/etc", "/root", "/home"]
                .iter()
                .any(|d| Path::new(r.as_str()).starts_with(d))
        });
        assert!(dirs.len() <= 10, "{caller:?}: {key} {rules:?}");
        assert!(kept.len() <= 20, "{caller:?}: {key} {rules:?}");
    }
    assert_eq!(t["landlock"]["grant_root"].as_bool(), Some(false));
}

// ---- apt-get install of a local .deb ----

const DEB: &str = "rsafe-hello_1.0_all.deb";

/// A package with one file and a postinst that writes where packages keep their state, built
/// with `dpkg-deb` (what the learned policy must let dpkg and the script do).
fn deb_dir() -> Option<PathBuf> {
    if !support::have("dpkg-deb", support::tool("dpkg-deb")) {
        return None;
    }
    Some(support::fixture("deb-rsafe-hello-v1", |dir| {
        let pkg = tempfile::tempdir().unwrap();
        let p = pkg.path();
        std::fs::create_dir_all(p.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(p.join("usr/share/rsafe-hello")).unwrap();
        std::fs::write(
            p.join("DEBIAN/control"),
            "Package: rsafe-hello\nVersion: 1.0\nArchitecture: all\n\
             Maintainer: rsafe <rsafe@example.invalid>\n\
             Description: one file and a postinst (tests/learn_debian.rs)\n",
        )
        .unwrap();
        std::fs::write(
            p.join("DEBIAN/postinst"),
            "#!/bin/sh\nset -e\nmkdir -p /var/lib/rsafe-hello\n\
             echo \"postinst $1\" > /var/lib/rsafe-hello/state\n",
        )
        .unwrap();
        support::sh(
            Command::new("chmod")
                .arg("755")
                .arg(p.join("DEBIAN/postinst")),
        );
        std::fs::write(
            p.join("usr/share/rsafe-hello/greeting"),
            "hello from a package\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir).unwrap();
        support::sh(
            Command::new("dpkg-deb")
                .args(["--root-owner-group", "--build"])
                .arg(p)
                .arg(dir.join(DEB)),
        );
    }))
}

/// Installs the package with apt, then shows its file, its postinst's state and its status.
/// With only the caller's own id mapped, apt cannot switch to its `_apt` user (uid 42 has no
/// mapping in the container), so it is told to stay root, as in other rootless builds.
fn apt_script(caller: Caller) -> String {
    let stay_root = if caller == Caller::User {
        "-o APT::Sandbox::User=root "
    } else {
        ""
    };
    format!(
        "apt-get {stay_root}install -y -q /debs/{DEB} >/tmp/apt.log 2>&1 || {{ cat /tmp/apt.log; exit 1; }}; \
         cat /usr/share/rsafe-hello/greeting /var/lib/rsafe-hello/state; \
         dpkg-query -W -f='${{Status}}\\n' rsafe-hello"
    )
}

const APT_OUTPUT: &str = "hello from a package\npostinst configure\ninstall ok installed\n";

#[test]
fn apt_get_install_of_a_local_deb_is_learned_and_replayed() {
    let Some(debs) = deb_dir() else { return };
    let volume = format!("{}:/debs:ro", debs.display());
    for_each_caller(debian::debian_minbase_image(), |l| {
        let caller = l.caller;
        let policy = l.policy("apt.toml");
        let p = policy.to_str().unwrap();
        let script = apt_script(caller);
        let first = l.run(&["--learn", p, "-v", &volume], &["bash", "-c", &script]);
        assert_eq!(first.code, 0, "{caller:?}: {first:?}");
        assert_eq!(first.stdout, APT_OUTPUT, "{caller:?}: {first:?}");
        assert!(first.stderr.contains("rsafe: learned "), "{first:?}");

        let t = learned(&policy);
        check_small(l, &policy, &t);
        // dpkg's database and apt's cache and log: written where they live, not at /.
        let written = list(&t, "landlock", "read_write");
        for dir in ["/var/lib", "/var/cache"] {
            assert!(
                written.contains(&dir.to_string()),
                "{caller:?}: {written:?}"
            );
        }
        for broad in ["/usr", "/etc", "/var"] {
            assert!(
                !written.contains(&broad.to_string()),
                "{caller:?}: {written:?}"
            );
        }
        check_apt_capabilities(caller, &policy);

        let again = l.run(&["--policy", p, "-v", &volume], &["bash", "-c", &script]);
        assert_eq!(again.code, 0, "{caller:?}: {again:?}");
        assert_eq!(again.stdout, first.stdout, "{caller:?}: {again:?}");

        // Writing where the install did not is refused under the learned policy, and only
        // there: the default policy lets the same command write.
        let touch = ["bash", "-c", "echo x > /etc/rsafe-x && echo WROTE"];
        let refused = l.run(&["--policy", p], &touch);
        assert_ne!(refused.code, 0, "{caller:?}: {refused:?}");
        assert!(
            refused.stderr.contains("Permission denied"),
            "{caller:?}: {refused:?}"
        );
        let free = l.run(&[], &touch);
        assert_eq!(free.stdout, "WROTE\n", "{caller:?}: {free:?}");
    });
}

/// apt drops privileges to `_apt` (setresuid, setgroups) for its download methods and
/// signals them when done: SETUID, SETGID and KILL (root signalling uid 42) are learned as
/// used. Told to stay root (one id mapped), it makes no setresuid call and signals only root's
/// processes, and the three are dropped.
#[track_caller]
fn check_apt_capabilities(caller: Caller, policy: &Path) {
    let text = std::fs::read_to_string(policy).unwrap();
    let kept = list(&learned(policy), "capabilities", "keep");
    let switches = caller != Caller::User;
    for cap in ["SETUID", "SETGID", "KILL"] {
        assert_eq!(
            kept.contains(&cap.to_string()),
            switches,
            "{caller:?}: {text}"
        );
    }
    if switches {
        for evidence in [
            "\"SETUID\", # run 1; used: setresuid()",
            "\"KILL\", # run 1; used: a signal to another user's process",
        ] {
            assert!(text.contains(evidence), "{caller:?}: {text}");
        }
    }
    // dpkg sets owners and modes of what it unpacks.
    assert!(
        text.contains("\"CHOWN\", # run 1; used: "),
        "{caller:?}: {text}"
    );
}

// ---- python3 -m http.server ----

const PAGE: &str = "hello from python3 -m http.server\n";

/// The directory served: one file.
fn www() -> PathBuf {
    support::fixture("www-python-http-server", |dir| {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("index.html"), PAGE).unwrap();
    })
}

/// A free port on the host's loopback (free when looked at).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET PAGE` on the host's `port`, retried while the forwarder comes up; the body.
fn fetch(port: u16, page: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(body) = try_fetch(port, page) {
            return body;
        }
        assert!(Instant::now() < deadline, "no answer on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn try_fetch(port: u16, page: &str) -> Option<String> {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request = format!("GET {page} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    conn.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    conn.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_string())
}

/// What one run of the server showed: its first line, the page fetched, and rsafe's stderr.
struct Served {
    first_line: String,
    body: String,
    stderr: String,
}

/// Starts the server in `l`'s image with `flags`, fetches the page from the host through
/// `-p`, then stops it as `docker stop` would (SIGTERM to rsafe, passed on to the server).
fn serve_once(l: &Loaded, flags: &[&str]) -> Served {
    serve_from(l, "/srv", "/index.html", flags)
}

/// [`serve_once`] with the server started in `workdir` (the page is in `/srv`), fetching
/// `page`.
fn serve_from(l: &Loaded, workdir: &str, page: &str, flags: &[&str]) -> Served {
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8000");
    let volume = format!("{}:/srv:ro", www().display());
    let mut all = vec!["-p", &publish, "-v", &volume, "-w", workdir];
    all.extend_from_slice(flags);
    let mut child = l
        .command(&all, &["python3", "-u", "-m", "http.server", "8000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first_line = String::new();
    stdout.read_line(&mut first_line).unwrap();
    let body = if first_line.starts_with("Serving HTTP") {
        fetch(port, page)
    } else {
        String::new()
    };
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    // 128 + SIGTERM: the server died of the signal rsafe passed on.
    assert_eq!(status.code(), Some(143), "{first_line}{stderr}");
    Served {
        first_line,
        body,
        stderr,
    }
}

#[test]
fn python3_http_server_is_learned_and_replayed() {
    for_each_caller(debian::debian_python3_image(), |l| {
        let caller = l.caller;
        let policy = l.policy("web.toml");
        let p = policy.to_str().unwrap();
        let first = serve_once(l, &["--learn", p]);
        assert_eq!(first.body, PAGE, "{caller:?}: {}", first.stderr);
        assert!(
            first.stderr.contains("\"GET /index.html HTTP/1.0\" 200"),
            "{caller:?}: {}",
            first.stderr
        );
        assert!(first.stderr.contains("rsafe: learned "), "{}", first.stderr);

        let t = learned(&policy);
        check_small(l, &policy, &t);
        // The interpreter and its library, the page, and nothing written.
        let read = list(&t, "landlock", "read_exec");
        for dir in ["/usr", "/srv"] {
            assert!(read.contains(&dir.to_string()), "{caller:?}: {read:?}");
        }
        let written = list(&t, "landlock", "read_write");
        assert!(
            written.iter().all(|w| w.starts_with("/dev/")),
            "{caller:?}: {written:?}"
        );
        assert_eq!(list(&t, "landlock", "tcp_bind"), ["8000"], "{caller:?}");
        let kept = list(&t, "capabilities", "keep");
        for cap in ["CHOWN", "SETUID", "SETGID", "KILL", "NET_BIND_SERVICE"] {
            assert!(!kept.contains(&cap.to_string()), "{caller:?}: {kept:?}");
        }

        let again = serve_once(l, &["--policy", p]);
        assert_eq!(again.first_line, first.first_line, "{caller:?}");
        assert_eq!(again.body, first.body, "{caller:?}: {}", again.stderr);

        // Another port is refused under the learned policy (landlock's TCP rules), and only
        // there.
        let bind = [
            "python3",
            "-c",
            "import socket; socket.socket().bind(('127.0.0.1', 8001)); print('BOUND')",
        ];
        let refused = l.run(&["-w", "/srv", "--policy", p], &bind);
        assert_ne!(refused.code, 0, "{caller:?}: {refused:?}");
        assert!(
            refused.stderr.contains("PermissionError"),
            "{caller:?}: {refused:?}"
        );
        let free = l.run(&["-w", "/srv"], &bind);
        assert_eq!(free.stdout, "BOUND\n", "{caller:?}: {free:?}");
    });
}

#[test]
fn python3_http_server_started_in_the_root_lists_it_without_reading_it() {
    // From `/`, Python lists its working directory at start-up (sys.path[0]): before
    // list-only rules that learned `/` read+exec, the whole image.
    for_each_caller(debian::debian_python3_image(), |l| {
        let caller = l.caller;
        let policy = l.policy("root.toml");
        let p = policy.to_str().unwrap();
        let first = serve_from(l, "/", "/srv/index.html", &["--learn", p]);
        assert_eq!(first.body, PAGE, "{caller:?}: {}", first.stderr);
        let t = learned(&policy);
        check_small(l, &policy, &t);
        assert_eq!(list(&t, "landlock", "list"), ["/"], "{caller:?}");
        let read = list(&t, "landlock", "read_exec");
        assert!(!read.contains(&"/var".to_string()), "{caller:?}: {read:?}");

        let again = serve_from(l, "/", "/srv/index.html", &["--policy", p]);
        assert_eq!(again.body, first.body, "{caller:?}: {}", again.stderr);

        // dpkg's status file, which the server never read: refused under the learned policy
        // (landlock), readable under the default one; the root is still listed.
        let read_status = [
            "python3",
            "-c",
            "import os; print(len(os.listdir('/')) > 5); print(open('/var/lib/dpkg/status').read(8))",
        ];
        let refused = l.run(&["-w", "/", "--policy", p], &read_status);
        assert_eq!(refused.stdout, "True\n", "{caller:?}: {refused:?}");
        assert!(
            refused.stderr.contains("PermissionError")
                && refused.stderr.contains("/var/lib/dpkg/status"),
            "{caller:?}: {refused:?}"
        );
        let free = l.run(&["-w", "/"], &read_status);
        assert_eq!(free.stdout, "True\nPackage:\n", "{caller:?}: {free:?}");
    });
}
