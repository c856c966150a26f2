//! `--network slirp4netns` and `-p`: a web server in the container reached through a published
//! port on the host's loopback, the host's own loopback services out of the container's reach,
//! the generated `/etc/resolv.conf` and `/etc/hosts`, and no slirp4netns left behind, even when
//! rsafe is killed. As root, and as the test user with and without subordinate ids.
#[allow(dead_code)]
#[path = "support/run.rs"]
mod run_support;
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use run_support::{for_each_caller, rsafe_cmd, run};
use support::free_port;

/// `GET /index.html` from `127.0.0.1:port`, retried while the server starts.
fn http_get(port: u16) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match attempt {
            Ok(body) if !body.is_empty() => return Ok(body),
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(_) => return Err("empty answer".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// slirp4netns processes whose command line names the container's init `pid`.
fn slirps_of(pid: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.starts_with("slirp4netns ") && cmdline.contains(&format!("/proc/{pid}/ns/user"))
        {
            found.push(cmdline);
        }
    }
    found
}

/// A directory with an `index.html`, readable by every caller.
fn web_root() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rsafe-www-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::write(dir.path().join("index.html"), "hello from the container\n").unwrap();
    support::sh(Command::new("chmod").arg("-R").arg("a+rX").arg(dir.path()));
    dir
}

#[test]
fn a_published_port_reaches_the_container_on_the_hosts_loopback_only() {
    let www = web_root();
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let port = free_port();
        let publish = format!("{port}:8000");
        let volume = format!("{}:/www:ro", www.path().display());
        let out = run(
            caller,
            store,
            &[
                "-d",
                "--name",
                "web",
                "-p",
                &publish,
                "-v",
                &volume,
                rootfs.to_str().unwrap(),
                "--",
                "httpd",
                "-f",
                "-p",
                "8000",
                "-h",
                "/www",
            ],
        );
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert_eq!(
            out.stderr,
            format!("rsafe: publishing 127.0.0.1:{port} -> 8000/tcp\n"),
            "{caller:?}"
        );
        let ps = rsafe_cmd(caller, store, &["ps", "-a"]);
        assert!(
            ps.stdout.lines().nth(1).is_some_and(
                |l| l.contains("web") && l.ends_with(&format!(" 127.0.0.1:{port}->8000/tcp"))
            ),
            "{caller:?}: {ps:?}"
        );
        let body = http_get(port).unwrap_or_else(|e| panic!("{caller:?}: {e}"));
        assert!(
            body.contains("hello from the container"),
            "{caller:?}: {body}"
        );
        // Bound to loopback only: the port is not listening on any other address.
        let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let listening: Vec<&str> = tcp
            .lines()
            .filter(|l| l.split_whitespace().nth(3) == Some("0A"))
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|local| local.ends_with(&format!(":{port:04X}")))
            .collect();
        assert_eq!(listening, [format!("0100007F:{port:04X}")], "{caller:?}");
        let id = out.stdout.trim().to_string();
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(store.join("containers").join(&id).join("state.json"))
                .unwrap(),
        )
        .unwrap();
        let init = state["pid"][0].as_i64().unwrap().to_string();
        assert_eq!(slirps_of(&init).len(), 1, "{caller:?}");
        let stop = rsafe_cmd(caller, store, &["stop", "web"]);
        assert_eq!(stop.code, 0, "{caller:?}: {stop:?}");
        assert!(
            slirps_of(&init).is_empty(),
            "{caller:?}: slirp4netns outlived its container"
        );
        assert!(http_get(port).is_err(), "{caller:?}: the port stayed open");
        assert_eq!(rsafe_cmd(caller, store, &["rm", "web"]).code, 0);
    });
}

#[test]
fn the_hosts_loopback_services_stay_out_of_reach() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    server.set_nonblocking(true).unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    for_each_caller(|caller, store| {
        // Through the gateway (slirp4netns would map it to the host's 127.0.0.1), and the
        // container's own loopback, which is not the host's.
        let script = format!(
            "for a in 10.0.2.2 127.0.0.1; do nc -w 2 $a {port} </dev/null && echo reached $a || echo refused $a; done"
        );
        let out = run_support::run_sh(caller, store, &["--network", "slirp4netns"], &script);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert_eq!(
            out.stdout, "refused 10.0.2.2\nrefused 127.0.0.1\n",
            "{caller:?}: {out:?}"
        );
        assert!(
            server.accept().is_err(),
            "{caller:?}: the host's server was reached"
        );
    });
}

#[test]
fn resolv_conf_and_hosts_are_generated_and_read_only() {
    for_each_caller(|caller, store| {
        let script = "ip -4 addr show tap0 | awk '/inet /{print $2}'; cat /etc/resolv.conf /etc/hosts; \
            echo x >> /etc/resolv.conf || echo refused";
        let out = run_support::run_sh(
            caller,
            store,
            &[
                "--network",
                "slirp4netns",
                "--hostname",
                "app",
                "--dns",
                "192.0.2.53",
                "--dns-search",
                "svc.example",
                "--add-host",
                "db:192.0.2.20",
            ],
            script,
        );
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert_eq!(
            out.stdout,
            "10.0.2.100/24\nsearch svc.example\nnameserver 192.0.2.53\n\
             127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             10.0.2.100\tapp\n192.0.2.20\tdb\nrefused\n",
            "{caller:?}: {out:?}"
        );
        // Without --dns: slirp4netns's forwarder, which asks the host's resolvers.
        let out = run_support::run_sh(
            caller,
            store,
            &["-p", &format!("{}:80", free_port())],
            "grep nameserver /etc/resolv.conf",
        );
        assert_eq!(out.stdout, "nameserver 10.0.2.3\n", "{caller:?}: {out:?}");
    });
}

#[test]
fn publishing_needs_a_network_that_carries_it_and_a_valid_spec() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        for (args, says) in [
            (
                vec!["--network", "none", "-p", "8080:80"],
                "-p needs a network that can carry it",
            ),
            (
                vec!["--network", "host", "-p", "8080:80"],
                "-p needs a network that can carry it",
            ),
            (vec!["-p", "80"], "rsafe does not pick a host port"),
            (vec!["-p", "8080:80/sctp"], "tcp or udp"),
        ] {
            let mut all = args.clone();
            all.extend([rootfs, "--", "true"]);
            let out = run(caller, store, &all);
            assert_eq!(out.code, 125, "{caller:?} {args:?}: {out:?}");
            assert!(out.stderr.contains(says), "{caller:?} {args:?}: {out:?}");
            assert_eq!(out.stderr.lines().count(), 1, "{caller:?}: {out:?}");
        }
        // A host port already taken: the run fails and says so, and nothing is left.
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = format!("{}:80", taken.local_addr().unwrap().port());
        let out = run(caller, store, &["--rm", "-p", &busy, rootfs, "--", "true"]);
        assert_eq!(out.code, 125, "{caller:?}: {out:?}");
        assert!(
            out.stderr.contains("is the host port taken?"),
            "{caller:?}: {out:?}"
        );
        let ps = rsafe_cmd(caller, store, &["ps", "-a", "-q"]);
        assert_eq!(ps.stdout, "", "{caller:?}: {ps:?}");
    });
}

/// rsafe killed with SIGKILL while its container serves a published port: slirp4netns goes
/// too (its exit pipe closed with rsafe), and the port is free again.
#[test]
fn slirp4netns_dies_with_a_killed_rsafe() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let port = free_port();
        let mut child = caller
            .command(store)
            .args([
                "run",
                "--rm",
                "-p",
                &format!("{port}:8000"),
                rootfs.to_str().unwrap(),
            ])
            .args(["--", "httpd", "-f", "-p", "8000", "-h", "/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{caller:?}: never published");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "{caller:?}: the port outlived rsafe"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Nobody was left to remove the --rm container: `ps -a` does, cgroup and all, once its
        // processes are gone (the killed init waits, a zombie, for the host's pid 1, and a v1
        // cgroup with a zombie in it cannot be removed: until then it is listed as Dead).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ps = rsafe_cmd(caller, store, &["ps", "-a", "-q"]);
            let left = std::fs::read_dir(store.join("containers")).map_or(0, |d| d.count());
            if ps.stdout.is_empty() && left == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{caller:?}: {ps:?}, {left} left");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

/// An image ships no `/etc/resolv.conf` (the official ones do not): on the host's network the
/// container gets the host's, so names resolve as on the host; every container gets an
/// `/etc/hosts` where `localhost` and its own name resolve.
#[test]
fn every_network_mode_gets_names_that_resolve() {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    for_each_caller(|caller, store| {
        let out = run_support::run_sh(
            caller,
            store,
            &["--network", "host"],
            "cat /etc/resolv.conf",
        );
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert_eq!(out.stdout, host_resolv, "{caller:?}");
        let out = run_support::run_sh(
            caller,
            store,
            &["--hostname", "box"],
            "grep -c . /etc/hosts; httpd -p 8000 -h /etc; sleep 0.2; \
             for name in localhost box; do wget -q -O- http://$name:8000/hostname; done",
        );
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert_eq!(out.stdout, "3\nbox\nbox\n", "{caller:?}: {out:?}");
    });
}

/// `rsafe exec NAME sh -c script` as `caller`: its standard output, the run asserted to pass.
fn exec_sh(
    caller: run_support::Caller,
    store: &std::path::Path,
    name: &str,
    script: &str,
) -> String {
    let out = rsafe_cmd(caller, store, &["exec", name, "sh", "-c", script]);
    assert_eq!(out.code, 0, "{caller:?}: exec {name} {script}: {out:?}");
    out.stdout
}

/// `--network container:NAME`, a pod: the sidecar reaches the app's server on 127.0.0.1, sees
/// the app's name servers and names in its generated files and keeps its own hostname (as
/// podman does), and is in the same network namespace. Ports belong to the app (`-p` refused),
/// an unknown or stopped container is refused in one line, and when the app stops a sidecar
/// still running keeps the namespace: its loopback stays, the app's server is gone.
#[test]
fn a_container_joins_a_running_containers_network() {
    let www = web_root();
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let volume = format!("{}:/www:ro", www.path().display());
        let app = run(
            caller,
            store,
            &[
                "-d",
                "--name",
                "app",
                "--hostname",
                "apphost",
                "--network",
                "slirp4netns",
                "--add-host",
                "db:192.0.2.20",
                "-v",
                &volume,
                rootfs,
                "--",
                "httpd",
                "-f",
                "-p",
                "8000",
                "-h",
                "/www",
            ],
        );
        assert_eq!(app.code, 0, "{caller:?}: {app:?}");
        let script = "sleep 0.2; wget -q -O- http://127.0.0.1:8000/index.html; hostname; \
                      cat /etc/hosts /etc/resolv.conf; readlink /proc/self/ns/net";
        let side = run_support::run_sh(
            caller,
            store,
            &["--rm", "--hostname", "side", "--network", "container:app"],
            script,
        );
        assert_eq!(side.code, 0, "{caller:?}: {side:?}");
        let app_net = exec_sh(caller, store, "app", "readlink /proc/self/ns/net");
        let lines: Vec<&str> = side.stdout.lines().collect();
        assert_eq!(lines[0], "hello from the container", "{caller:?}: {side:?}");
        assert_eq!(lines[1], "side", "{caller:?}: {side:?}");
        let hosts = lines[2..].join("\n");
        for line in [
            "10.0.2.100\tside",
            "10.0.2.100\tapphost",
            "10.0.2.100\tapp",
            "192.0.2.20\tdb",
            "nameserver 10.0.2.3",
        ] {
            assert!(hosts.contains(line), "{caller:?}: no {line:?} in {side:?}");
        }
        assert_eq!(lines.last().copied(), Some(app_net.trim()), "{caller:?}");

        for (args, says) in [
            (
                vec!["--network", "container:app", "-p", "8081:80"],
                "-p with --network container:app",
            ),
            (
                vec!["--network", "container:nosuch"],
                "no container \"nosuch\"",
            ),
        ] {
            let mut all = args.clone();
            all.extend([rootfs, "--", "true"]);
            let out = run(caller, store, &all);
            assert_eq!(out.code, 125, "{caller:?} {args:?}: {out:?}");
            assert!(out.stderr.contains(says), "{caller:?} {args:?}: {out:?}");
            assert_eq!(out.stderr.lines().count(), 1, "{caller:?}: {out:?}");
        }

        // The app stops while a sidecar is in its network: the namespace is the sidecar's now.
        let side = run(
            caller,
            store,
            &[
                "-d",
                "--name",
                "side",
                "--network",
                "container:app",
                rootfs,
                "--",
                "sleep",
                "60",
            ],
        );
        assert_eq!(side.code, 0, "{caller:?}: {side:?}");
        assert_eq!(rsafe_cmd(caller, store, &["stop", "app"]).code, 0);
        let after = exec_sh(
            caller,
            store,
            "side",
            "readlink /proc/self/ns/net; wget -q -T 2 -O- http://127.0.0.1:8000/ || echo gone; \
             ip -o link show up | awk '{print $2}'",
        );
        assert_eq!(
            after,
            format!("{}\ngone\nlo:\n", app_net.trim()),
            "{caller:?}: the stopped app's namespace, loopback only"
        );
        let out = run(
            caller,
            store,
            &["--network", "container:app", rootfs, "--", "true"],
        );
        assert_eq!(out.code, 125, "{caller:?}: {out:?}");
        assert_eq!(
            out.stderr, "rsafe: --network container:app: container app is not running\n",
            "{caller:?}"
        );
        for name in ["side", "app"] {
            assert_eq!(rsafe_cmd(caller, store, &["rm", "-f", name]).code, 0);
        }
    });
}

/// [`support::busybox_layout`]'s `root` image with `ExposedPorts` 8000/tcp and 9000/udp, as
/// tag `web`.
fn layout_with_exposed_ports() -> std::path::PathBuf {
    let base = support::busybox_layout();
    support::fixture("oci-busybox-exposed", |dest| {
        support::sh(Command::new("cp").arg("-a").arg(&base).arg(dest));
        support::sh(
            Command::new("umoci")
                .args(["config", "--image"])
                .arg(format!("{}:root", dest.display()))
                .args(["--tag", "web", "--config.exposedports", "8000/tcp"])
                .args(["--config.exposedports", "9000/udp"]),
        );
    })
}

/// `-P`: every port of the image's ExposedPorts on a port of 127.0.0.1 the kernel picked,
/// printed as `-p`'s are and shown by `ps` while the container runs (not after).
#[test]
fn publish_all_publishes_the_images_exposed_ports_on_free_loopback_ports() {
    let www = web_root();
    let image = format!("{}:web", layout_with_exposed_ports().display());
    for_each_caller(|caller, store| {
        let volume = format!("{}:/www:ro", www.path().display());
        let out = run(
            caller,
            store,
            &[
                "-d",
                "--name",
                "web",
                "-P",
                "-v",
                &volume,
                &image,
                "httpd -f -p 8000 -h /www",
            ],
        );
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let mut published = Vec::new();
        for line in out.stderr.lines() {
            let rest = line.strip_prefix("rsafe: publishing 127.0.0.1:");
            let (port, to) = rest.and_then(|r| r.split_once(" -> ")).unwrap_or_else(|| {
                panic!("{caller:?}: not a publishing line: {line:?} in {out:?}")
            });
            published.push((port.parse::<u16>().unwrap(), to.to_string()));
        }
        let to: Vec<&str> = published.iter().map(|(_, to)| to.as_str()).collect();
        assert_eq!(to, ["8000/tcp", "9000/udp"], "{caller:?}: {out:?}");
        let tcp = published[0].0;
        let body = http_get(tcp).unwrap_or_else(|e| panic!("{caller:?}: {e}"));
        assert!(body.contains("hello from the container"), "{caller:?}");
        let ps = rsafe_cmd(caller, store, &["ps", "-a"]);
        let want = format!(
            " 127.0.0.1:{tcp}->8000/tcp, 127.0.0.1:{}->9000/udp",
            published[1].0
        );
        assert!(
            ps.stdout.lines().nth(1).is_some_and(|l| l.ends_with(&want)),
            "{caller:?}: {ps:?}"
        );
        assert_eq!(rsafe_cmd(caller, store, &["stop", "web"]).code, 0);
        let ps = rsafe_cmd(caller, store, &["ps", "-a"]);
        assert!(
            ps.stdout.lines().nth(1).is_some_and(|l| !l.contains("->")),
            "{caller:?}: a stopped container shows no ports: {ps:?}"
        );
        assert_eq!(rsafe_cmd(caller, store, &["rm", "web"]).code, 0);
    });
}

/// `-P` serves on the very ports it prints, TCP and UDP, each through one socket (the one bound
/// when the port was picked, which the unit test
/// `dash_capital_p_ports_are_served_on_the_sockets_bound_when_picked` follows by inode), and
/// `rm -f` releases them at once.
#[test]
fn publish_all_answers_on_the_printed_tcp_and_udp_ports() {
    let Some(echo) = udp_echo() else { return };
    let www = web_root();
    let image = format!("{}:web", layout_with_exposed_ports().display());
    for_each_caller(|caller, store| {
        let www = format!("{}:/www:ro", www.path().display());
        let echo = format!("{}:/echo:ro", echo.display());
        let script = "httpd -p 8000 -h /www && exec /echo/udp-echo 9000";
        let args = [
            "-d", "--name", "both", "-P", "-v", &www, "-v", &echo, &image,
        ];
        // The image's entrypoint is `sh -c`.
        let out = run(caller, store, &[&args[..], &[script]].concat());
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let ports: Vec<u16> = out
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix("rsafe: publishing 127.0.0.1:"))
            .filter_map(|r| r.split_once(" -> ")?.0.parse().ok())
            .collect();
        assert_eq!(ports.len(), 2, "{caller:?}: {out:?}");
        let body = http_get(ports[0]).unwrap_or_else(|e| panic!("{caller:?}: {e}"));
        assert!(body.contains("hello from the container"), "{caller:?}");
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 64];
        let deadline = Instant::now() + Duration::from_secs(5);
        let answer = loop {
            client.send_to(b"to -P", ("127.0.0.1", ports[1])).unwrap();
            if let Ok((n, from)) = client.recv_from(&mut buf) {
                assert_eq!(from.port(), ports[1], "{caller:?}");
                break String::from_utf8_lossy(&buf[..n]).into_owned();
            }
            assert!(Instant::now() < deadline, "{caller:?}: no answer over UDP");
        };
        assert_eq!(answer, "echo: to -P", "{caller:?}");
        let sockets: Vec<_> = ports.iter().map(|p| bound_sockets(*p)).collect();
        assert_eq!(rsafe_cmd(caller, store, &["rm", "-f", "both"]).code, 0);
        for (port, bound) in ports.iter().zip(sockets) {
            assert_eq!(bound.len(), 1, "{caller:?}: {port}: {bound:?}");
        }
        for port in &ports {
            assert!(holders(*port).is_empty(), "{caller:?}: {port} not released");
        }
    });
}

/// [`udp_echo.c`](support/udp_echo.c) built static, in a directory every caller can read.
fn udp_echo() -> Option<std::path::PathBuf> {
    if !support::have(
        "a C compiler with static libc (cc -static)",
        support::tool("cc"),
    ) {
        return None;
    }
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/udp_echo.c");
    let key = support::source_key(&std::fs::read(&src).unwrap());
    let dir = support::fixture(&format!("udp-echo-{key}"), |dir| {
        std::fs::create_dir_all(dir).unwrap();
        support::sh(
            Command::new("cc")
                .args(["-static", "-O1", "-o"])
                .arg(dir.join("udp-echo"))
                .arg(&src),
        );
        support::sh(Command::new("chmod").arg("-R").arg("a+rX").arg(dir));
    });
    Some(dir)
}

/// `-p HOST:CONTAINER/udp`: datagrams from the host's 127.0.0.1 reach a UDP echo server in the
/// container and its answers come back (slirp4netns carries UDP ports). And ICMP: with
/// `--cap-add NET_RAW` busybox ping reaches the gateway, which slirp4netns answers itself (no
/// packet leaves it); without the capability ping is refused.
#[test]
fn udp_ports_and_ping_to_the_gateway() {
    let Some(echo) = udp_echo() else { return };
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let volume = format!("{}:/echo:ro", echo.display());
        let out = run(
            caller,
            store,
            &[
                "-d",
                "--name",
                "echo",
                "-p",
                &format!("{port}:7000/udp"),
                "-v",
                &volume,
                rootfs.to_str().unwrap(),
                "--",
                "/echo/udp-echo",
                "7000",
            ],
        );
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert_eq!(
            out.stderr,
            format!("rsafe: publishing 127.0.0.1:{port} -> 7000/udp\n")
        );
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 64];
        let deadline = Instant::now() + Duration::from_secs(5);
        let answer = loop {
            client
                .send_to(b"ping over udp", ("127.0.0.1", port))
                .unwrap();
            if let Ok((n, from)) = client.recv_from(&mut buf) {
                assert_eq!(from.port(), port, "{caller:?}");
                break String::from_utf8_lossy(&buf[..n]).into_owned();
            }
            assert!(Instant::now() < deadline, "{caller:?}: no answer over UDP");
        };
        assert_eq!(answer, "echo: ping over udp", "{caller:?}");
        assert_eq!(rsafe_cmd(caller, store, &["rm", "-f", "echo"]).code, 0);

        let ping = "ping -c 1 -W 2 10.0.2.2 >/dev/null && echo reached || echo refused";
        for (flags, want) in [
            (
                vec!["--network", "slirp4netns", "--cap-add", "NET_RAW"],
                "reached\n",
            ),
            (vec!["--network", "slirp4netns"], "refused\n"),
        ] {
            let out = run_support::run_sh(caller, store, &flags, ping);
            assert_eq!(out.stdout, want, "{caller:?} {flags:?}: {out:?}");
        }
    });
}

/// The strict policy lets the workload bind no TCP port (landlock): `-p` adds a bind rule for
/// each published container port, so a server can listen where it is published and nowhere
/// else; `rsafe policy show -p` says so.
#[test]
fn a_published_port_is_one_the_workload_may_bind_under_the_policy() {
    let show = support::rsafe(support::temp_root().path())
        .args([
            "policy",
            "show",
            "strict",
            "-p",
            "8080:80",
            "-p",
            "53:53/udp",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(show.status.success(), "{show:?}");
    assert!(
        text.contains("  TCP bind:     only 80  (-p adds a bind rule for 80: a published port is one the workload binds)\n"),
        "{text}"
    );
    let plain = support::rsafe(support::temp_root().path())
        .args(["policy", "show", "strict"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&plain.stdout).contains("  TCP bind:     none\n"));

    for_each_caller(|caller, store| {
        let script =
            "for p in 8000 8001; do httpd -p $p -h /etc && echo bound $p || echo refused $p; done";
        let port = free_port().to_string();
        let publish = format!("{port}:8000");
        let out = run_support::run_sh(
            caller,
            store,
            &["--policy", "strict", "-p", &publish],
            script,
        );
        assert_eq!(
            out.stdout, "bound 8000\nrefused 8001\n",
            "{caller:?}: {out:?}"
        );
        let out = run_support::run_sh(
            caller,
            store,
            &["--policy", "strict", "--network", "slirp4netns"],
            script,
        );
        assert_eq!(
            out.stdout, "refused 8000\nrefused 8001\n",
            "{caller:?}: {out:?}"
        );
    });
}

/// The sockets (`socket:[INODE]`) bound to 127.0.0.1:`port`, TCP or UDP, from
/// `/proc/net/{tcp,udp}`; a closed connection's TIME_WAIT (inode 0) is no socket.
fn bound_sockets(port: u16) -> Vec<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/udp"] {
        for line in std::fs::read_to_string(table).unwrap().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[1] == format!("0100007F:{port:04X}") && f[9] != "0" {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    inodes
}

/// Host pids holding a socket bound to 127.0.0.1:`port` (TCP or UDP), found from
/// `/proc/net/{tcp,udp}` and every process's descriptors.
fn holders(port: u16) -> Vec<u32> {
    let inodes = bound_sockets(port);
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.filter_map(|f| f.ok()).any(|f| {
            std::fs::read_link(f.path()).is_ok_and(|l| inodes.contains(&l.display().to_string()))
        });
        if holds {
            pids.push(pid);
        }
    }
    pids
}

/// Whether process `pid` is gone, or a zombie whose threads have all exited. A zombie
/// leader alone is not enough: the forwarder is multi-threaded, its leader shows `Z` as soon
/// as it exits while the other threads may still be closing the shared file table, listening
/// socket included (seen once in CI as EADDRINUSE right after every helper looked gone).
fn gone(pid: u32) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
    });
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    zombie && threads <= 1
}

/// No helper outlives its container: after `rsafe stop`, `rsafe rm -f`, and `kill -9` of a
/// foreground `rsafe run -p`, neither slirp4netns nor the port forwarder is left, and the
/// published TCP and UDP ports can be bound again by anyone right away.
#[test]
fn no_helper_outlives_its_container() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        for how in ["stop", "rm -f", "kill -9"] {
            let (tcp, udp) = (free_port(), free_port());
            let (p1, p2) = (format!("{tcp}:8000"), format!("{udp}:7000/udp"));
            let flags = ["-p", &p1, "-p", &p2, "--name", "svc"];
            let cmd = ["--", "httpd", "-f", "-p", "8000", "-h", "/"];
            let mut foreground = None;
            if how == "kill -9" {
                let child = caller
                    .command(store)
                    .arg("run")
                    .args(flags)
                    .arg(rootfs)
                    .args(cmd)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                foreground = Some(child);
            } else {
                let mut args = vec!["-d"];
                args.extend(flags);
                args.push(rootfs);
                args.extend(cmd);
                let out = run(caller, store, &args);
                assert_eq!(out.code, 0, "{caller:?} {how}: {out:?}");
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while TcpStream::connect(("127.0.0.1", tcp)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "{caller:?} {how}: never published"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let state = std::fs::read_dir(store.join("containers"))
                .unwrap()
                .next()
                .unwrap();
            let state: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(state.unwrap().path().join("state.json")).unwrap(),
            )
            .unwrap();
            let init = state["pid"][0].as_i64().unwrap().to_string();
            let mut helpers = holders(tcp);
            helpers.extend(holders(udp));
            assert!(!helpers.is_empty(), "{caller:?} {how}: no forwarder found");
            assert_eq!(slirps_of(&init).len(), 1, "{caller:?} {how}");
            match foreground.take() {
                Some(mut child) => {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    // Their parent-death signal and exit pipe end them as rsafe goes.
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while !helpers.iter().all(|&p| gone(p)) || !slirps_of(&init).is_empty() {
                        assert!(
                            Instant::now() < deadline,
                            "{caller:?}: helpers outlived rsafe"
                        );
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                None => {
                    let mut args: Vec<&str> = how.split(' ').collect();
                    args.push("svc");
                    let out = rsafe_cmd(caller, store, &args);
                    assert_eq!(out.code, 0, "{caller:?} {how}: {out:?}");
                    assert!(
                        helpers.iter().all(|&p| gone(p)),
                        "{caller:?} {how}: {helpers:?} left"
                    );
                    assert!(
                        slirps_of(&init).is_empty(),
                        "{caller:?} {how}: slirp4netns left"
                    );
                }
            }
            TcpListener::bind(("127.0.0.1", tcp))
                .unwrap_or_else(|e| panic!("{caller:?} {how}: TCP {tcp}: {e}"));
            std::net::UdpSocket::bind(("127.0.0.1", udp))
                .unwrap_or_else(|e| panic!("{caller:?} {how}: UDP {udp}: {e}"));
            // Whatever is left of the container (stopped, or killed with rsafe) goes.
            let _ = rsafe_cmd(caller, store, &["rm", "-f", "svc"]);
            let deadline = Instant::now() + Duration::from_secs(30);
            while std::fs::read_dir(store.join("containers")).map_or(0, |d| d.count()) > 0 {
                assert!(
                    Instant::now() < deadline,
                    "{caller:?} {how}: container left"
                );
                let _ = rsafe_cmd(caller, store, &["rm", "-f", "svc"]);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
}

/// `rsafe port` lists what `docker port` lists, and `rsafe restart` stops and starts a
/// container again with its ports published anew (root and rootless); a `--rm` container is
/// refused and left running.
#[test]
fn port_lists_published_ports_and_restart_publishes_them_again() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let (tcp, udp) = (free_port(), free_port());
        let (p1, p2) = (format!("{tcp}:8000"), format!("{udp}:7000/udp"));
        let out = run(
            caller,
            store,
            &[
                "-d", "--name", "web", "-p", &p1, "-p", &p2, rootfs, "--", "httpd", "-f", "-p",
                "8000", "-h", "/",
            ],
        );
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let port = |args: &[&str]| {
            let mut all = vec!["port", "web"];
            all.extend_from_slice(args);
            rsafe_cmd(caller, store, &all)
        };
        let all = port(&[]);
        assert_eq!(
            all.stdout,
            format!("8000/tcp -> 127.0.0.1:{tcp}\n7000/udp -> 127.0.0.1:{udp}\n"),
            "{caller:?}: {all:?}"
        );
        assert_eq!(port(&["8000"]).stdout, format!("127.0.0.1:{tcp}\n"));
        assert_eq!(port(&["7000/udp"]).stdout, format!("127.0.0.1:{udp}\n"));
        let none = port(&["7000"]);
        assert_eq!(none.code, 1, "{caller:?}: {none:?}");
        assert!(
            none.stderr
                .contains("no public port '7000/tcp' published for web"),
            "{none:?}"
        );
        let answers = || {
            let deadline = Instant::now() + Duration::from_secs(5);
            while TcpStream::connect(("127.0.0.1", tcp)).is_err() {
                assert!(Instant::now() < deadline, "{caller:?}: {tcp} not published");
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        answers();
        let init = |store: &std::path::Path| -> i64 {
            let state = std::fs::read_dir(store.join("containers"))
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path()
                .join("state.json");
            let s: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap();
            s["pid"][0].as_i64().unwrap()
        };
        let before = init(store);
        let restart = rsafe_cmd(caller, store, &["restart", "-t", "1", "web"]);
        assert_eq!(
            (restart.code, restart.stdout.as_str()),
            (0, "web\n"),
            "{restart:?}"
        );
        assert_ne!(
            init(store),
            before,
            "{caller:?}: the same init after restart"
        );
        answers();
        // Stopped: no ports held; restart starts it again.
        assert_eq!(
            rsafe_cmd(caller, store, &["stop", "-t", "1", "web"]).code,
            0
        );
        assert_eq!(port(&[]).stdout, "", "{caller:?}");
        assert_eq!(rsafe_cmd(caller, store, &["restart", "web"]).code, 0);
        answers();
        assert_eq!(rsafe_cmd(caller, store, &["rm", "-f", "web"]).code, 0);
        let out = run(
            caller,
            store,
            &["-d", "--rm", "--name", "tmp", rootfs, "--", "sleep", "60"],
        );
        assert_eq!(out.code, 0, "{out:?}");
        let refused = rsafe_cmd(caller, store, &["restart", "tmp"]);
        assert_eq!(refused.code, 1, "{refused:?}");
        assert!(refused.stderr.contains("was run with --rm"), "{refused:?}");
        let ps = rsafe_cmd(caller, store, &["ps", "-a"]);
        assert!(ps.stdout.contains(" Up"), "{caller:?}: {ps:?}");
        assert_eq!(rsafe_cmd(caller, store, &["rm", "-f", "tmp"]).code, 0);
    });
}
