//! `rsafe run -dit` and `rsafe attach`, through the real binary on a pseudo-terminal the test
//! drives (as a user's terminal would), as root and as the unprivileged test user: type into
//! the container's shell, detach with docker's ctrl-p ctrl-q, attach again, and get the
//! container's exit code; a killed client leaves the container running and attachable; a
//! container made by `create -it` started with `start -ai` on the terminal.
#[path = "support/run.rs"]
#[allow(dead_code)] // shared with tests/run.rs, which uses the rest
mod run_support;
mod support;

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use run_support::{Caller, Output, for_each_caller, rsafe_cmd};

/// How long anything here may take on a loaded machine before the test calls it hung.
const PATIENCE: Duration = Duration::from_secs(30);

/// `rsafe ARGS…` as `caller`, asserting it succeeded.
fn ok(caller: Caller, store: &Path, args: &[&str]) -> Output {
    let out = rsafe_cmd(caller, store, args);
    assert_eq!(out.code, 0, "{caller:?} rsafe {args:?}: {}", out.stderr);
    out
}

/// A command whose stdin, stdout and stderr are a fresh pseudo-terminal; the test holds its
/// master, as a terminal emulator would.
struct OnPty {
    child: Child,
    master: std::fs::File,
    seen: Vec<u8>,
}

impl OnPty {
    fn spawn(mut cmd: Command) -> OnPty {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        let child = cmd
            .stdin(slave(&pty.slave))
            .stdout(slave(&pty.slave))
            .stderr(slave(&pty.slave))
            .spawn()
            .unwrap();
        drop(pty.slave);
        OnPty {
            child,
            master: std::fs::File::from(pty.master),
            seen: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// Reads until `needle` has come (after what earlier calls consumed); panics with what
    /// came instead after [`PATIENCE`].
    fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(at) = find(&self.seen, needle.as_bytes()) {
                self.seen.drain(..at + needle.len());
                return;
            }
            if !self.read_some(deadline) {
                panic!(
                    "{needle:?} never came; got {:?}",
                    String::from_utf8_lossy(&self.seen)
                );
            }
        }
    }

    /// Reads what is there; `false` at the deadline or end of output.
    fn read_some(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) == 0 {
            return false;
        }
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            Ok(n) if n > 0 => {
                self.seen.extend_from_slice(&buf[..n]);
                true
            }
            // EIO: the command and everything holding the terminal are gone.
            _ => false,
        }
    }

    /// The command's exit code, and everything it printed that was not consumed.
    fn wait(mut self) -> (i32, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while self.read_some(Instant::now() + Duration::from_millis(200)) {}
                let rest = String::from_utf8_lossy(&self.seen).into_owned();
                return (status.code().unwrap_or(-1), rest);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "still running; printed {:?}",
                    String::from_utf8_lossy(&self.seen)
                );
            }
            self.read_some(Instant::now() + Duration::from_millis(100));
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `rsafe attach ARGS…` as `caller`, on a terminal.
fn attach(caller: Caller, store: &Path, args: &[&str]) -> OnPty {
    let mut cmd = caller.command(store);
    cmd.arg("attach").args(args);
    OnPty::spawn(cmd)
}

/// The STATUS column of container `name` in `ps -a`.
fn status(caller: Caller, store: &Path, name: &str) -> String {
    let ps = ok(caller, store, &["ps", "-a"]).stdout;
    let line = ps
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("{name} not in {ps}"));
    line.to_string()
}

/// Runs `sh -c 'echo $((A+B))'`-style arithmetic in the container so that what the test waits
/// for (`= 42`) is not the echo of what it typed.
fn compute(t: &mut OnPty, a: u32, b: u32) {
    t.send(format!("echo = $(({a}+{b}))\r").as_bytes());
    t.expect(&format!("= {}", a + b));
}

#[test]
fn run_dit_attach_type_detach_attach_again_and_get_the_exit_code() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let root = rootfs.to_str().unwrap();
        ok(caller, store, &["run", "-dit", "--name", "tt", root, "sh"]);

        let mut t = attach(caller, store, &["tt"]);
        compute(&mut t, 40, 2);
        // ctrl-p ctrl-q: docker's detach keys; docker's message and exit code 1.
        t.send(&[0x10, 0x11]);
        let (code, rest) = t.wait();
        assert_eq!(code, 1, "{caller:?}: {rest}");
        assert!(rest.contains("read escape sequence"), "{rest:?}");
        assert!(status(caller, store, "tt").contains("Up"), "still running");

        // A lone ctrl-p is held, then passed on with what follows (here, ctrl-u and a
        // command): the shell sees no stray byte that would break the line.
        let mut t = attach(caller, store, &["tt"]);
        t.send(&[0x10]);
        t.send(b"\x15echo = $((50+5))\r");
        t.expect("= 55");
        // Killed while attached: the container is not.
        let pid = t.child.id();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let (code, _) = t.wait();
        assert_eq!(code, -1, "killed");
        assert!(
            status(caller, store, "tt").contains("Up"),
            "survives a killed client"
        );

        // Another detach sequence; then the shell's exit code is attach's.
        let mut t = attach(caller, store, &["--detach-keys", "ctrl-a,x", "tt"]);
        compute(&mut t, 30, 3);
        t.send(b"exit 3\r");
        let (code, rest) = t.wait();
        assert_eq!(code, 3, "{caller:?}: {rest}");
        assert!(status(caller, store, "tt").contains("Exited (3)"));
        // Everything went to the log too, attached or not.
        let log = ok(caller, store, &["logs", "tt"]).stdout;
        for want in ["= 42", "= 55", "= 33"] {
            assert!(log.contains(want), "{want} not in the log: {log:?}");
        }

        // Stopped: refused as docker refuses it.
        let out = rsafe_cmd(caller, store, &["attach", "tt"]);
        assert_eq!(out.code, 1);
        assert!(
            out.stderr.contains("cannot attach to a stopped container"),
            "{}",
            out.stderr
        );
        let bad = rsafe_cmd(caller, store, &["attach", "--detach-keys", "ctrl-1", "tt"]);
        assert_eq!(bad.code, 1);
        assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
        assert!(bad.stderr.contains("--detach-keys"), "{}", bad.stderr);

        // `start -d` of a -dit container gives it its terminal again, attachable.
        ok(caller, store, &["start", "-d", "tt"]);
        let mut t = attach(caller, store, &["tt"]);
        compute(&mut t, 20, 2);
        t.send(b"exit 0\r");
        assert_eq!(t.wait().0, 0);
        ok(caller, store, &["rm", "tt"]);
    });
}

#[test]
fn attach_without_a_terminal_relays_stdin_and_output_as_docker_does() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let root = rootfs.to_str().unwrap();
        // -i alone: the shell reads commands from a pipe the relay keeps open.
        ok(caller, store, &["run", "-di", "--name", "pi", root, "sh"]);
        let mut cmd = caller.command(store);
        cmd.args(["attach", "pi"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut client = cmd.spawn().unwrap();
        let mut stdin = client.stdin.take().unwrap();
        stdin.write_all(b"echo = $((6*7))\nexit 4\n").unwrap();
        drop(stdin);
        let out = client.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "= 42\n",
            "{caller:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(4));

        // Neither -i nor -t: output only, then the exit code (docker attaches the same way).
        let script = "for i in 1 2 3 4 5 6 7 8 9 10; do \
                      [ -e /go ] && break; sleep 0.2; done; echo late; exit 5";
        ok(
            caller,
            store,
            &["run", "-d", "--name", "po", root, "sh", "-c", script],
        );
        let mut cmd = caller.command(store);
        cmd.args(["attach", "po"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let client = cmd.spawn().unwrap();
        ok(caller, store, &["exec", "po", "touch", "/go"]);
        let out = client.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "late\n");
        assert_eq!(out.status.code(), Some(5));
        ok(caller, store, &["rm", "pi", "po"]);
    });
}

#[test]
fn only_the_owner_can_attach() {
    if !run_support::userns_works() || Caller::all().len() < 2 {
        return;
    }
    let store = support::temp_root();
    let store = store.path();
    let rootfs = Caller::Host.rootfs();
    let root = rootfs.to_str().unwrap();
    ok(
        Caller::Host,
        store,
        &["run", "-dit", "--name", "own", root, "sh"],
    );
    let sock = std::fs::read_dir(store.join("containers"))
        .unwrap()
        .map(|e| e.unwrap().path().join("attach.sock"))
        .find(|p| p.exists())
        .expect("an attach socket");
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let meta = std::fs::metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // Another uid (as a container's root is, when root runs rsafe) cannot connect, even when
    // it may list the containers (here it may, to get as far as the socket)…
    let containers = store.join("containers");
    std::fs::set_permissions(&containers, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = rsafe_cmd(Caller::User, store, &["attach", "own"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    // …and if the socket's mode let it, the relay still checks who connects and hangs up.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = rsafe_cmd(Caller::User, store, &["attach", "own"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("closed it"), "{}", out.stderr);
    assert!(status(Caller::Host, store, "own").contains("Up"));
    ok(Caller::Host, store, &["rm", "-f", "own"]);
}

#[test]
fn a_container_created_with_a_terminal_starts_attached_on_it() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        ok(
            caller,
            store,
            &["create", "-it", "--name", "tty", rootfs, "sh"],
        );
        assert!(status(caller, store, "tty").contains("Created"));
        // docker's `create -it` then `start -ai`: the shell on this terminal, its exit code.
        let mut cmd = caller.command(store);
        cmd.args(["start", "-ai", "tty"]);
        let mut t = OnPty::spawn(cmd);
        compute(&mut t, 40, 2);
        t.send(b"tty\r");
        t.expect("/dev/pts/");
        t.send(b"exit 3\r");
        let (code, rest) = t.wait();
        assert_eq!(code, 3, "{caller:?}: {rest:?}");
        assert!(status(caller, store, "tty").contains("Exited (3)"));
        ok(caller, store, &["rm", "tty"]);
    });
}
