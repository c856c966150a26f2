//! `rsafe run` on a real distribution image: Debian bookworm minbase built by mmdebstrap
//! (tests/support/debian.rs), loaded into a store and run through the real binary, as root and
//! as the unprivileged test user (with and without subordinate id ranges).
//!
//! Loading the image and extracting its layer (~170 MB) is the expensive part, while a
//! container start is cheap: each caller gets ONE store, loaded once, in which every check
//! runs. (A store shared by all tests through a `static` would never be dropped, leaving a few
//! hundred MB in /tmp per run.) So there is one `#[test]` per caller, running the named checks
//! below one after another and reporting every failing check, not only the first.
// Shared with tests/run.rs, which uses all of it.
#[allow(dead_code)]
#[path = "support/run.rs"]
mod run_support;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use run_support::{Caller, Output};
use support::debian::{self, RECIPE, TAG};

/// A caller and its store, with the Debian image loaded.
struct Debian<'a> {
    caller: Caller,
    store: &'a Path,
}

impl Debian<'_> {
    /// The image's name in the store.
    fn image() -> String {
        format!("{RECIPE}:{TAG}")
    }

    /// `rsafe run --rm FLAGS IMAGE COMMAND…`, without stdin.
    fn run(&self, flags: &[&str], command: &[&str]) -> Output {
        let image = Self::image();
        let mut args = vec!["--rm"];
        args.extend_from_slice(flags);
        args.push(&image);
        args.extend_from_slice(command);
        run_support::run(self.caller, self.store, &args)
    }

    /// `rsafe run --rm FLAGS IMAGE bash -c SCRIPT`.
    fn bash(&self, flags: &[&str], script: &str) -> Output {
        self.run(flags, &["bash", "-c", script])
    }

    /// The `rsafe run --rm FLAGS IMAGE COMMAND…` process, not started.
    fn command(&self, flags: &[&str], command: &[&str]) -> Command {
        let mut cmd = self.caller.command(self.store);
        cmd.args(["run", "--rm"])
            .args(flags)
            .arg(Self::image())
            .args(command);
        cmd
    }

    /// Whether this caller's container has only one id (the caller's own) mapped.
    fn single_id(&self) -> bool {
        self.caller == Caller::User
    }
}

#[track_caller]
fn ok(out: &Output) {
    assert_eq!(out.code, 0, "{out:?}");
}

/// One check of a Debian container (panics on failure).
type Check = fn(&Debian);

/// The checks, by name.
const CHECKS: &[(&str, Check)] = &[
    ("identity", identity),
    ("os_release", os_release),
    ("package_manager", package_manager),
    ("writable_layer", writable_layer),
    ("read_only_root", read_only_root),
    ("exit_codes", exit_codes),
    ("signals", signals),
    ("pipes", pipes),
    ("tty", tty),
    ("own_session", own_session),
    ("web_server", web_server),
    ("device_nodes", device_nodes),
];

/// Loads the image into a fresh store of `caller` and runs every check there.
fn run_checks(caller: Caller) {
    if !run_support::userns_works() {
        return;
    }
    if caller != Caller::Host && !Caller::all().contains(&caller) {
        eprintln!("skipping: {caller:?} needs root and the test user");
        return;
    }
    let Some(layout) = debian::debian_minbase_image() else {
        return;
    };
    let store = support::temp_root();
    let load = caller
        .command(store.path())
        .args(["load", &layout])
        .output()
        .unwrap();
    assert!(load.status.success(), "{caller:?}: {load:?}");
    assert!(
        String::from_utf8_lossy(&load.stdout).contains(&Debian::image()),
        "{load:?}"
    );
    let debian = Debian {
        caller,
        store: store.path(),
    };
    let failed: Vec<&str> = CHECKS
        .iter()
        .filter(|(name, check)| {
            eprintln!("{caller:?}: {name}");
            catch_unwind(AssertUnwindSafe(|| check(&debian))).is_err()
        })
        .map(|(name, _)| *name)
        .collect();
    assert!(
        failed.is_empty(),
        "{caller:?}: failed checks {failed:?} (their panics are above)"
    );
}

#[test]
fn debian_runs_as_root() {
    run_checks(Caller::Host);
}

#[test]
fn debian_runs_as_an_unprivileged_user() {
    run_checks(Caller::User);
}

#[test]
fn debian_runs_as_an_unprivileged_user_with_subordinate_ids() {
    run_checks(Caller::UserWithSubids);
}

/// Root inside (never on the host: tests/run.rs checks the maps), and the image's `nobody`.
fn identity(d: &Debian) {
    let out = d.run(&[], &["id"]);
    ok(&out);
    assert_eq!(out.stdout, "uid=0(root) gid=0(root) groups=0(root)\n");
    let out = d.run(&["--user", "65534"], &["id"]);
    if d.single_id() {
        // Only the caller's own id exists in the container: rsafe says so instead of running.
        assert_eq!(out.code, 125, "{out:?}");
        assert!(out.stderr.contains("not mapped"), "{out:?}");
    } else {
        ok(&out);
        assert_eq!(
            out.stdout,
            "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"
        );
    }
}

/// An image whose layer carries `/dev` as mmdebstrap writes it (character devices) runs for
/// every caller: root makes the nodes in the layer cache, the others (root of a user namespace
/// included, which may chown but never `mknod`) skip and count them.
fn device_nodes(d: &Debian) {
    let Some(layout) = debian::debian_with_devices_image() else {
        return;
    };
    let load = d
        .caller
        .command(d.store)
        .args(["load", &layout])
        .output()
        .unwrap();
    assert!(load.status.success(), "{load:?}");
    let stdout = String::from_utf8_lossy(&load.stdout);
    let image = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image: "))
        .unwrap_or_else(|| panic!("no image name in {load:?}"))
        .to_string();
    let out = run_support::run(
        d.caller,
        d.store,
        &[
            "--rm",
            "--verbose",
            &image,
            "sh",
            "-c",
            "test -c /dev/null && echo ok",
        ],
    );
    ok(&out);
    assert_eq!(out.stdout, "ok\n", "{out:?}");
    let skipped = out.stderr.contains("skipped 8 device node(s)");
    assert_eq!(skipped, d.caller != Caller::Host, "{out:?}");
}

fn os_release(d: &Debian) {
    let out = d.run(&[], &["cat", "/etc/os-release"]);
    ok(&out);
    assert!(out.stdout.contains("VERSION_CODENAME=bookworm"), "{out:?}");
}

/// dpkg and apt read their database, and dpkg installs a package, under the default policy.
fn package_manager(d: &Debian) {
    let out = d.bash(
        &[],
        "dpkg-query -W -f='${Package} ${Status}\\n' bash apt coreutils; \
         apt list --installed 2>/dev/null | grep -cE '^(bash|apt|coreutils)/'; \
         apt-get check >/dev/null && echo CHECKED",
    );
    ok(&out);
    assert_eq!(
        out.stdout,
        "apt install ok installed\nbash install ok installed\ncoreutils install ok installed\n\
         3\nCHECKED\n",
        "{out:?}"
    );
    // A package built and installed in the container: dpkg writes its database, sets owners
    // and modes, and runs what it installed.
    let out = d.bash(
        &[],
        "set -e; mkdir -p /tmp/p/DEBIAN /tmp/p/usr/bin; \
         printf 'Package: rsafe-hello\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: rsafe <t@example.invalid>\\nDescription: test\\n' > /tmp/p/DEBIAN/control; \
         printf '#!/bin/sh\\necho hello from a package\\n' > /tmp/p/usr/bin/rsafe-hello; \
         chmod 755 /tmp/p/usr/bin/rsafe-hello; \
         dpkg-deb --root-owner-group --build /tmp/p /tmp/hello.deb >/dev/null; \
         dpkg -i /tmp/hello.deb >/dev/null; rsafe-hello; \
         dpkg-query -W -f='${Status}\\n' rsafe-hello",
    );
    ok(&out);
    assert_eq!(
        out.stdout, "hello from a package\ninstall ok installed\n",
        "{out:?}"
    );
}

/// /tmp and / are writable (the overlay's upper dir), and files of the image are copied up,
/// including one owned by a group other than root (/etc/shadow, group shadow).
fn writable_layer(d: &Debian) {
    let out = d.bash(
        &[],
        "echo t > /tmp/t && echo r > /r && cat /tmp/t /r; \
         echo motd >> /etc/motd && tail -n 1 /etc/motd; \
         echo 'x:*:19000:0:99999:7:::' >> /etc/shadow && tail -n 1 /etc/shadow; \
         stat -c %U:%G /etc/shadow",
    );
    ok(&out);
    // With one id mapped, every file of the image belongs to the container's root.
    let shadow_owner = if d.single_id() {
        "root:root"
    } else {
        "root:shadow"
    };
    assert_eq!(
        out.stdout,
        format!("t\nr\nmotd\nx:*:19000:0:99999:7:::\n{shadow_owner}\n"),
        "{out:?}"
    );
}

/// `--read-only`: no write anywhere, except on a `--tmpfs`.
fn read_only_root(d: &Debian) {
    let script = "for f in /tmp/t /r /root/r /var/lib/dpkg/x; do \
                  if echo x > $f; then echo \"wrote $f\"; fi; done 2>&1";
    let out = d.bash(&["--read-only"], script);
    ok(&out);
    for f in ["/tmp/t", "/r", "/root/r", "/var/lib/dpkg/x"] {
        assert!(!out.stdout.contains(&format!("wrote {f}")), "{out:?}");
        assert!(
            out.stdout.contains(&format!("{f}: Read-only file system")),
            "{out:?}"
        );
    }
    let out = d.bash(&["--read-only", "--tmpfs", "/tmp"], script);
    ok(&out);
    assert!(out.stdout.contains("wrote /tmp/t"), "{out:?}");
    for f in ["/r", "/root/r", "/var/lib/dpkg/x"] {
        assert!(
            out.stdout.contains(&format!("{f}: Read-only file system")),
            "{out:?}"
        );
    }
}

fn exit_codes(d: &Debian) {
    assert_eq!(d.run(&[], &["sh", "-c", "exit 3"]).code, 3);
    let missing = d.run(&[], &["no-such-command"]);
    assert_eq!(missing.code, 127, "{missing:?}");
    assert!(missing.stderr.contains("no-such-command"), "{missing:?}");
    let not_exec = d.run(&[], &["/etc/passwd"]);
    assert_eq!(not_exec.code, 126, "{not_exec:?}");
    // A workload that kills itself: 128 + the signal.
    assert_eq!(d.run(&[], &["sh", "-c", "kill -TERM $$"]).code, 143);
}

/// Starts `cmd` with stdout and stderr piped and waits for its first line, which must be
/// `line`; returns the process and its stdout, to keep open while it runs.
fn spawn_until_line(cmd: &mut Command, line: &str) -> (Child, BufReader<ChildStdout>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, format!("{line}\n"));
    (child, stdout)
}

/// SIGTERM sent to rsafe reaches the workload (here `sleep`, which does not handle it).
fn signals(d: &Debian) {
    let (mut proc, _stdout) = spawn_until_line(
        &mut d.command(&[], &["sh", "-c", "echo ready; exec sleep 30"]),
        "ready",
    );
    // `exec` replaced the shell by sleep just after it printed; let it get there.
    std::thread::sleep(std::time::Duration::from_millis(200));
    // setpriv execs rsafe in place: the pid is rsafe's for every caller.
    let pid = nix::unistd::Pid::from_raw(proc.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = proc.wait().unwrap();
    let mut stderr = String::new();
    proc.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    // Not forwarded, sleep would end by itself 30 s later with 0.
    assert_eq!(status.code(), Some(143), "{stderr}");
}

/// stdin with `-i` (and /dev/null without), and several MB through both pipes intact.
fn pipes(d: &Debian) {
    let mut sort = d
        .command(&["-i"], &["sort", "-r"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    sort.stdin.take().unwrap().write_all(b"a\nb\n").unwrap();
    let out = sort.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "b\na\n");

    // Without -i, the container's stdin is /dev/null, whatever rsafe's is.
    let mut cat = d
        .command(
            &[],
            &["bash", "-c", "cat; echo END; readlink /proc/self/fd/0"],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = cat.stdin.take().unwrap();
    // The container never reads it: a closed pipe is fine.
    let _ = stdin.write_all(b"must not arrive\n");
    drop(stdin);
    let out = cat.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "END\n/dev/null\n");

    // ~5 MB out of the container.
    let expected: String = (1..=750_000).map(|n| format!("{n}\n")).collect();
    let out = d.run(&[], &["seq", "1", "750000"]);
    ok(&out);
    assert!(
        out.stdout == expected,
        "seq output differs ({} bytes)",
        out.stdout.len()
    );

    // ~5 MB in and back out again.
    let mut echo = d
        .command(&["-i"], &["cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = echo.stdin.take().unwrap();
    let input = expected.clone();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = echo.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    assert!(
        out.stdout == expected.as_bytes(),
        "cat returned {} of {} bytes",
        out.stdout.len(),
        expected.len()
    );
}

/// `word` quoted for `sh`.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// A command line for `sh -c` that runs `cmd`.
fn shell_words(cmd: &Command) -> String {
    let mut words = vec![quote(&cmd.get_program().to_string_lossy())];
    words.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    let env: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| {
            Some(format!(
                "{}={}",
                k.to_string_lossy(),
                quote(&v?.to_string_lossy())
            ))
        })
        .collect();
    format!("env {} {}", env.join(" "), words.join(" "))
}

/// Runs `line` with `sh -c` in a new terminal (util-linux `script`), so that it has a
/// controlling terminal as in an interactive shell; returns what the terminal showed.
fn in_terminal(line: &str) -> (Option<i32>, String) {
    let out = Command::new("script")
        .args(["-qec", line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        // Terminals end lines with \r\n; two in a row (the caller's and the container's) with
        // \r\r\n.
        String::from_utf8_lossy(&out.stdout).replace('\r', ""),
    )
}

fn have_script() -> bool {
    support::have("script (util-linux)", support::tool("script"))
}

/// `-it`: the workload's stdin and stdout are a terminal of the container's own devpts.
fn tty(d: &Debian) {
    if !have_script() {
        return;
    }
    let rsafe = d.command(
        &["-it"],
        &[
            "sh",
            "-c",
            "tty; test -t 0 && test -t 1 && echo TTY; exit 7",
        ],
    );
    let (code, shown) = in_terminal(&shell_words(&rsafe));
    assert_eq!(shown, "/dev/pts/0\nTTY\n", "{shown:?}");
    assert_eq!(code, Some(7));
}

/// The fields pid, session and tty_nr of the shell's /proc/PID/stat, then what a TIOCSTI
/// ioctl on stdin (pushing a character into the terminal's input) did. perl is in minbase.
const SESSION_PROBE: &str = "cut -d' ' -f1,6,7 /proc/$$/stat; \
    perl -e '$c = \"x\"; print ioctl(STDIN, 0x5412, $c) ? \"INJECTED\\n\" : \"refused: $!\\n\"'";

/// Without -t, the workload still runs in its own session with no controlling terminal, so
/// even with the caller's terminal as its stdin (`-i`) it cannot push keystrokes into it
/// (TIOCSTI), which the caller's shell would run after the container exits.
fn own_session(d: &Debian) {
    if !have_script() {
        return;
    }
    // Control: the same probe, run directly in the terminal, has it and can inject.
    if support::have("perl", support::tool("perl")) && d.caller == Caller::Host {
        let (code, shown) = in_terminal(&format!("bash -c {}", quote(SESSION_PROBE)));
        assert_eq!(code, Some(0), "{shown}");
        let fields: Vec<&str> = shown.lines().next().unwrap().split(' ').collect();
        assert_ne!(
            fields[2], "0",
            "the control has a controlling terminal: {shown}"
        );
        assert!(
            shown.contains("INJECTED"),
            "the control can inject: {shown}"
        );
    }
    let rsafe = d.command(&["-i"], &["bash", "-c", SESSION_PROBE]);
    let (code, shown) = in_terminal(&shell_words(&rsafe));
    assert_eq!(code, Some(0), "{shown}");
    let mut lines = shown.lines();
    let fields: Vec<&str> = lines.next().unwrap().split(' ').collect();
    assert_eq!(
        fields[0], fields[1],
        "the shell leads its own session: {shown}"
    );
    assert_eq!(fields[2], "0", "no controlling terminal: {shown}");
    let tiocsti = lines.next().unwrap_or_default();
    assert!(tiocsti.starts_with("refused: "), "{shown}");
    assert!(!shown.contains("INJECTED"), "{shown}");
}

/// A web server (perl's IO::Socket::INET, in minbase) on an unprivileged port: reached from
/// inside the container on its loopback-only network, and from the host with
/// `--network host`, all under the default policy.
fn web_server(d: &Debian) {
    let serve = |addr: &str, requests: u32| {
        format!(
            "perl -MIO::Socket::INET -e '$|=1; \
             $s = IO::Socket::INET->new(LocalAddr => \"{addr}\", Listen => 5, ReuseAddr => 1) \
                 or die \"listen: $!\\n\"; \
             print \"listening\\n\"; \
             for (1..{requests}) {{ $c = $s->accept; $r = <$c>; \
                 print $c \"HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nhello from debian: $r\"; close $c }}'"
        )
    };
    let out = d.bash(
        &[],
        &format!(
            "{} > /tmp/log & \
             for i in $(seq 100); do grep -q listening /tmp/log 2>/dev/null && break; sleep 0.05; done; \
             exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /in HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3; wait",
            serve("127.0.0.1:8080", 1)
        ),
    );
    ok(&out);
    assert!(out.stdout.starts_with("HTTP/1.0 200 OK\r\n"), "{out:?}");
    assert!(
        out.stdout
            .ends_with("hello from debian: GET /in HTTP/1.0\r\n"),
        "{out:?}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (mut server, _stdout) = spawn_until_line(
        &mut d.command(
            &["--network", "host"],
            &["bash", "-c", &serve(&format!("127.0.0.1:{port}"), 1)],
        ),
        "listening",
    );
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(b"GET /host HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(
        response.ends_with("hello from debian: GET /host HTTP/1.0\r\n"),
        "{response:?}"
    );
    let status = server.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
