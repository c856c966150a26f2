//! Named networks (`rsafe network create`, `run --network NAME`): containers on one network
//! reach each other by name over a bridge, containers on another cannot, the host's services
//! stay out of reach, concurrent runs get distinct addresses, and nothing is left (veth pair,
//! lease, hosts file) after `stop`, `rm -f` or kill -9 of rsafe. As root (a bridge in the
//! host) and as the unprivileged test user, with and without subordinate ids (a bridge in the
//! network's holder's namespaces, each container's user namespace nested under the holder's;
//! the holder gone after `network rm`, and replaced after kill -9). Outbound, root: a container
//! reaches an "outside" namespace of the test's own through the host, masqueraded, and nothing
//! of the host; the rules come back after a flush and go with `network rm`; a docker-like
//! FORWARD DROP policy drops it. Outbound, rootless: through the holder's slirp4netns, seen
//! as the host, reaching none of the host's services (127.0.0.1, 0.0.0.0, slirp4netns's host
//! alias), with the host's `ip_forward` and nft untouched; slirp4netns goes with its holder.
//! No traffic leaves the tests' own namespaces.
#[allow(dead_code)]
#[path = "support/escape.rs"]
mod escape_support;
#[allow(dead_code)]
#[path = "support/run.rs"]
mod run_support;
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use run_support::{Caller, rsafe_cmd, run, userns_works};
use serde_json::Value;

/// The test's networks, removed (containers first) however the test ends, so that no bridge
/// is left on the host.
struct Networks<'a> {
    store: &'a Path,
    names: Vec<String>,
    caller: Caller,
}

impl<'a> Networks<'a> {
    fn new(store: &'a Path) -> Networks<'a> {
        Networks::of(Caller::Host, store)
    }

    fn of(caller: Caller, store: &'a Path) -> Networks<'a> {
        Networks {
            store,
            names: Vec::new(),
            caller,
        }
    }

    fn create(&mut self, args: &[&str]) -> Value {
        let name = args.last().unwrap().to_string();
        let mut all = vec!["network", "create"];
        all.extend_from_slice(args);
        let out = rsafe_cmd(self.caller, self.store, &all);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.stdout, format!("{name}\n"));
        self.names.push(name.clone());
        inspect_network_as(self.caller, self.store, &name)
    }
}

impl Drop for Networks<'_> {
    fn drop(&mut self) {
        let ps = rsafe_cmd(self.caller, self.store, &["ps", "-a", "-q"]);
        for id in ps.stdout.split_whitespace() {
            rsafe_cmd(self.caller, self.store, &["rm", "-f", id]);
        }
        for name in &self.names {
            rsafe_cmd(self.caller, self.store, &["network", "rm", name]);
        }
    }
}

fn inspect_network(store: &Path, name: &str) -> Value {
    inspect_network_as(Caller::Host, store, name)
}

fn inspect_network_as(caller: Caller, store: &Path, name: &str) -> Value {
    let out = rsafe_cmd(caller, store, &["network", "inspect", name]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    doc[0].clone()
}

fn inspect_container(store: &Path, name: &str) -> Value {
    inspect_container_as(Caller::Host, store, name)
}

fn inspect_container_as(caller: Caller, store: &Path, name: &str) -> Value {
    let out = rsafe_cmd(caller, store, &["inspect", name]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    if doc.is_array() { doc[0].clone() } else { doc }
}

/// Whether this run can test named networks: as root, with user namespaces and iproute2.
fn root_with_bridges() -> bool {
    userns_works()
        && support::have("root (named networks are root's)", support::is_root())
        && support::have("iproute2 (ip)", support::tool("ip"))
}

/// A directory with an `index.html` naming `who`, readable by every container's root.
fn web_root(who: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rsafe-www-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::write(dir.path().join("index.html"), format!("hello from {who}\n")).unwrap();
    support::sh(Command::new("chmod").arg("-R").arg("a+rX").arg(dir.path()));
    dir
}

/// `rsafe run -d --name NAME --network NET` of busybox httpd serving `www` on `port`, with
/// the UDP echo server at `/echo/udp-echo`.
fn serve(store: &Path, name: &str, net: &str, www: &Path, port: u16) -> String {
    serve_as(Caller::Host, store, name, net, www, port)
}

/// [`serve`] run by `caller`.
fn serve_as(caller: Caller, store: &Path, name: &str, net: &str, www: &Path, port: u16) -> String {
    let rootfs = caller.rootfs();
    let volume = format!("{}:/www:ro", www.display());
    let echo = format!("{}:/echo:ro", udp_echo().display());
    let port = port.to_string();
    let out = run(
        caller,
        store,
        &[
            "-d",
            "--name",
            name,
            "--network",
            net,
            "-v",
            &volume,
            "-v",
            &echo,
            rootfs.to_str().unwrap(),
            "--",
            "httpd",
            "-f",
            "-p",
            &port,
            "-h",
            "/www",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout.trim().to_string()
}

/// `sh -c script` in a fresh `--rm` container on `net`.
fn sh_on(store: &Path, net: &str, script: &str) -> run_support::Output {
    sh_on_as(Caller::Host, store, net, script)
}

/// [`sh_on`] run by `caller`.
fn sh_on_as(caller: Caller, store: &Path, net: &str, script: &str) -> run_support::Output {
    let rootfs = caller.rootfs();
    run(
        caller,
        store,
        &[
            "--rm",
            "--network",
            net,
            rootfs.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            script,
        ],
    )
}

/// `wget` of `url` from inside, retried for a few seconds while the server starts.
fn fetch_script(url: &str) -> String {
    format!("i=0; until wget -q -O- {url}; do i=$((i+1)); [ $i -ge 30 ] && exit 1; sleep 0.1; done")
}

#[test]
fn network_commands_take_podmans_shapes_and_refuse_bad_input_in_one_line() {
    let store = support::temp_root();
    let store = store.path();
    let mut nets = Networks::new(store);
    let a = nets.create(&["alpha"]);
    assert_eq!(a["name"], "alpha");
    assert_eq!(a["driver"], "bridge");
    assert_eq!(a["internal"], false);
    assert_eq!(a["id"].as_str().unwrap().len(), 64);
    let subnet = a["subnets"][0]["subnet"].as_str().unwrap().to_string();
    assert!(
        subnet.starts_with("10.89.") && subnet.ends_with(".0/24"),
        "{a}"
    );
    let b = nets.create(&["--subnet", "10.201.0.0/16", "beta"]);
    assert_eq!(b["subnets"][0]["gateway"], "10.201.0.1");
    let ls = rsafe_cmd(Caller::Host, store, &["network", "ls"]);
    let lines: Vec<&str> = ls.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{ls:?}");
    assert!(lines[0].starts_with("NETWORK ID"), "{ls:?}");
    assert!(
        lines[1].contains(" alpha ") && lines[1].ends_with(&subnet),
        "{ls:?}"
    );
    let quiet = rsafe_cmd(Caller::Host, store, &["network", "ls", "-q"]);
    assert_eq!(quiet.stdout, "alpha\nbeta\n");
    for (args, says) in [
        (
            vec!["network", "create", "alpha"],
            "network alpha already exists",
        ),
        (vec!["network", "create", "-bad"], "unexpected argument"),
        (
            vec!["network", "create", "a/b"],
            "\"a/b\" is not a valid network name",
        ),
        (vec!["network", "create", "host"], "\"host\" is reserved"),
        (
            vec!["network", "create", "--subnet", "10.201.3.0/24", "gamma"],
            "overlaps network beta",
        ),
        (
            vec!["network", "create", "--subnet", "10.201.0.1/16", "gamma"],
            "did you mean 10.201.0.0/16",
        ),
        (vec!["network", "rm", "nosuch"], "network nosuch not found"),
        // The holder's own command, run by hand in the host's namespaces: it would hold nothing.
        (
            vec!["network", "hold", "alpha"],
            "the holder of a rootless network, started by rsafe run itself",
        ),
        (
            vec!["network", "inspect", "nosuch"],
            "network nosuch not found",
        ),
    ] {
        let out = rsafe_cmd(Caller::Host, store, &args);
        assert_eq!(out.code, 125, "{args:?}: {out:?}");
        assert!(out.stderr.contains(says), "{args:?}: {out:?}");
        if says != "unexpected argument" {
            assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
        }
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
    // A run on an unknown network, or publishing a named network's port: one line, 125.
    let rootfs = Caller::Host.rootfs();
    let rootfs = rootfs.to_str().unwrap();
    for (flags, says) in [
        (vec!["--network", "nosuch"], "network nosuch not found"),
        (vec!["--network", "alpha", "-p", "8080:0"], "1 to 65535"),
    ] {
        let mut args = flags.clone();
        args.extend([rootfs, "--", "true"]);
        let out = run(Caller::Host, store, &args);
        assert_eq!(out.code, 125, "{flags:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{flags:?}: {out:?}");
        assert!(out.stderr.contains(says), "{flags:?}: {out:?}");
    }
    for name in ["alpha", "beta"] {
        let out = rsafe_cmd(Caller::Host, store, &["network", "rm", name]);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, format!("{name}\n").as_str())
        );
    }
    nets.names.clear();
    let ls = rsafe_cmd(Caller::Host, store, &["network", "ls", "-q"]);
    assert_eq!(ls.stdout, "");
}

/// Two containers on one network reach each other by name (TCP, and UDP between their network
/// namespaces); a container started later is seen by an earlier one; a container on another
/// network reaches neither; the host's loopback and the bridge serve nothing to them.
#[test]
fn containers_on_a_named_network_reach_each_other_by_name_and_nothing_else() {
    if !root_with_bridges() {
        return;
    }
    let store = support::temp_root();
    let store = store.path();
    let mut nets = Networks::new(store);
    let front = nets.create(&["front"]);
    nets.create(&["back"]);
    let www = web_root("server");
    let server_id = serve(store, "server", "front", www.path(), 8000);
    let got = sh_on(
        store,
        "front",
        &fetch_script("http://server:8000/index.html"),
    );
    assert_eq!(
        (got.code, got.stdout.as_str()),
        (0, "hello from server\n"),
        "{got:?}"
    );
    // By its short id too (its default hostname).
    let got = sh_on(
        store,
        "front",
        &fetch_script(&format!("http://{}:8000/", &server_id[..12])),
    );
    assert_eq!(got.stdout, "hello from server\n", "{got:?}");

    // docker inspect's fields, the address the names resolve to.
    let doc = inspect_container(store, "server");
    assert_eq!(doc["HostConfig"]["NetworkMode"], "front");
    let settings = &doc["NetworkSettings"]["Networks"]["front"];
    let ip = settings["IPAddress"].as_str().unwrap().to_string();
    let subnet = front["subnets"][0]["subnet"].as_str().unwrap();
    let prefix = subnet.trim_end_matches("0/24");
    assert!(ip.starts_with(prefix), "{ip} not in {subnet}");
    assert_eq!(settings["IPPrefixLen"], 24);
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
    let mac = format!(
        "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
        octets[0], octets[1], octets[2], octets[3]
    );
    assert_eq!(settings["MacAddress"], mac.as_str());
    assert_eq!(settings["Gateway"], front["subnets"][0]["gateway"]);
    let net = inspect_network(store, "front");
    assert_eq!(net["containers"][&server_id]["name"], "server", "{net}");

    // A container started after the server is in the server's /etc/hosts at once.
    let www2 = web_root("late");
    serve(store, "late", "front", www2.path(), 8001);
    let exec = rsafe_cmd(
        Caller::Host,
        store,
        &[
            "exec",
            "server",
            "sh",
            "-c",
            &fetch_script("http://late:8001/"),
        ],
    );
    assert_eq!(exec.stdout, "hello from late\n", "{exec:?}");

    // A published port of a container on the network: the host's 127.0.0.1 reaches its
    // address on the bridge through rsafe's forwarder.
    let port = support::free_port();
    let publish = format!("{port}:8000");
    let volume = format!("{}:/www:ro", www.path().display());
    let rootfs = Caller::Host.rootfs();
    let out = run(
        Caller::Host,
        store,
        &[
            "-d",
            "--name",
            "published",
            "--network",
            "front",
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
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stderr,
        format!("rsafe: publishing 127.0.0.1:{port} -> 8000/tcp\n")
    );
    let body = http_get(port);
    assert_eq!(body.lines().last(), Some("hello from server"), "{body}");

    // UDP between the two containers' namespaces: an echo server in `server`'s, a client
    // socket made in `late`'s.
    udp_between(store, "server", "late", &ip);

    // Another network: the name is unknown there and the address unreachable.
    let other = sh_on(
        store,
        "back",
        &format!("wget -q -O- http://server:8000/; echo; timeout 3 wget -q -O- http://{ip}:8000/"),
    );
    assert!(!other.stdout.contains("hello"), "{other:?}");
    assert!(
        other.stderr.contains("bad address 'server:8000'"),
        "{other:?}"
    );

    // The host's services: one on its loopback, one on every address of it (tried through the
    // bridge's gateway address, the container's default route).
    let lo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let any = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let (lo_port, any_port) = (
        lo.local_addr().unwrap().port(),
        any.local_addr().unwrap().port(),
    );
    let gateway = front["subnets"][0]["gateway"].as_str().unwrap();
    let probe = sh_on(
        store,
        "front",
        &format!(
            "timeout 3 wget -q -O- http://127.0.0.1:{lo_port}/ && echo LOOPBACK-REACHED; \
             timeout 3 wget -q -O- http://{gateway}:{any_port}/ && echo BRIDGE-REACHED; \
             ip route; true"
        ),
    );
    assert!(!probe.stdout.contains("REACHED"), "{probe:?}");
    assert!(
        probe
            .stdout
            .contains(&format!("default via {gateway} dev eth0")),
        "outbound: a default route through the gateway: {probe:?}"
    );
    for l in [&lo, &any] {
        l.set_nonblocking(true).unwrap();
        assert!(
            l.accept().is_err(),
            "a container connected to the host: {probe:?}"
        );
    }
}

/// `GET /index.html` from the host's `127.0.0.1:port`, retried while the server starts.
fn http_get(port: u16) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match attempt {
            Ok(body) if !body.is_empty() => return body,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("127.0.0.1:{port}: {other:?}"),
        }
    }
}

/// A UDP echo server in container `server` (at `ip`) answers a datagram sent from a socket in
/// container `client`'s network namespace (this test thread enters it: root may).
fn udp_between(store: &Path, server: &str, client: &str, ip: &str) {
    udp_between_as(Caller::Host, store, server, client, ip);
}

/// [`udp_between`] for containers of `caller`.
fn udp_between_as(caller: Caller, store: &Path, server: &str, client: &str, ip: &str) {
    let mut echo_server = caller
        .command(store)
        .args(["exec", server, "/echo/udp-echo", "7000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = inspect_container_as(caller, store, client)["State"]["Pid"]
        .as_i64()
        .unwrap();
    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let addr = format!("{ip}:7000");
    let answer = std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&netns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap();
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 64];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            socket.send_to(b"over the bridge", &addr).unwrap();
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            if Instant::now() > deadline {
                return None;
            }
        }
    })
    .join()
    .unwrap();
    let _ = echo_server.kill();
    let _ = echo_server.wait();
    assert_eq!(answer.as_deref(), Some("echo: over the bridge"));
}

/// [`udp_echo.c`](support/udp_echo.c) built static, in a directory every container can read
/// (as tests/network.rs builds it).
fn udp_echo() -> std::path::PathBuf {
    assert!(
        support::tool("cc"),
        "a C compiler with static libc (cc -static) is needed"
    );
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/udp_echo.c");
    let key = support::source_key(&std::fs::read(&src).unwrap());
    support::fixture(&format!("udp-echo-{key}"), |dir| {
        std::fs::create_dir_all(dir).unwrap();
        support::sh(
            Command::new("cc")
                .args(["-static", "-O1", "-o"])
                .arg(dir.join("udp-echo"))
                .arg(&src),
        );
        support::sh(Command::new("chmod").arg("-R").arg("a+rX").arg(dir));
    })
}

/// Four `run --network n` started at once get four distinct addresses of the subnet, and each
/// container's hosts file names itself at its own.
#[test]
fn concurrent_runs_get_distinct_addresses() {
    if !root_with_bridges() {
        return;
    }
    let store = support::temp_root();
    let store = store.path();
    let mut nets = Networks::new(store);
    nets.create(&["--subnet", "10.89.250.0/24", "busy"]);
    let rootfs = Caller::Host.rootfs();
    let children: Vec<_> = (0..4)
        .map(|i| {
            Caller::Host
                .command(store)
                .args([
                    "run",
                    "--rm",
                    "--name",
                    &format!("c{i}"),
                    "--network",
                    "busy",
                ])
                .arg(&rootfs)
                .args([
                    "--",
                    "sh",
                    "-c",
                    "ip -o -4 addr show eth0; grep \"$(hostname)\" /etc/hosts; sleep 1",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut addrs = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let addr = stdout
            .split_whitespace()
            .find(|w| w.starts_with("10.89.250."))
            .unwrap_or_else(|| panic!("no address: {stdout}"))
            .trim_end_matches("/24")
            .to_string();
        let own_line = stdout.lines().nth(1).unwrap_or_default();
        assert!(own_line.starts_with(&format!("{addr}\t")), "{stdout}");
        addrs.push(addr);
    }
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 4, "{addrs:?}");
    assert_eq!(
        inspect_network(store, "busy")["containers"],
        serde_json::json!({})
    );
}

/// After `stop`, `rm -f`, and kill -9 of a foreground `rsafe run`: the veth pair is gone, the
/// address is free again (the network lists no container), no process holds the network's
/// files, and `network rm` removes the network and its bridge.
#[test]
fn nothing_is_left_after_stop_rm_or_kill_9() {
    if !root_with_bridges() {
        return;
    }
    let store = support::temp_root();
    let store = store.path();
    let mut nets = Networks::new(store);
    let net = nets.create(&["--subnet", "10.89.251.0/24", "left"]);
    let bridge = net["network_interface"].as_str().unwrap().to_string();
    let rootfs = Caller::Host.rootfs();
    let rootfs = rootfs.to_str().unwrap();
    for how in ["stop", "rm -f", "kill -9"] {
        let flags = [
            "--name",
            "svc",
            "--network",
            "left",
            rootfs,
            "--",
            "sleep",
            "600",
        ];
        let mut foreground = None;
        if how == "kill -9" {
            let child = Caller::Host
                .command(store)
                .arg("run")
                .args(flags)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            foreground = Some(child);
        } else {
            let mut args = vec!["-d"];
            args.extend(flags);
            let out = run(Caller::Host, store, &args);
            assert_eq!(out.code, 0, "{how}: {out:?}");
        }
        // Attached: the lease is listed and the host end of the veth pair is on the bridge.
        let deadline = Instant::now() + Duration::from_secs(10);
        let id = loop {
            let doc = inspect_network(store, "left");
            if let Some((id, _)) = doc["containers"].as_object().and_then(|c| c.iter().next()) {
                break id.clone();
            }
            assert!(Instant::now() < deadline, "{how}: never attached");
            std::thread::sleep(Duration::from_millis(20));
        };
        let veth = Path::new("/sys/class/net").join(format!("rsv{}", &id[..11]));
        // Made, then put on the bridge: wait for both (a loaded machine saw the first alone).
        let deadline = Instant::now() + Duration::from_secs(5);
        while !veth.join("master").exists() {
            assert!(Instant::now() < deadline, "{how}: no {}", veth.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        let master = std::fs::read_link(veth.join("master")).unwrap();
        assert!(master.ends_with(&bridge), "{how}: {}", master.display());
        match foreground.take() {
            Some(mut child) => {
                child.kill().unwrap();
                child.wait().unwrap();
            }
            None => {
                let mut args: Vec<&str> = how.split(' ').collect();
                args.push("svc");
                let out = rsafe_cmd(Caller::Host, store, &args);
                assert_eq!(out.code, 0, "{how}: {out:?}");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while veth.exists() {
            assert!(Instant::now() < deadline, "{how}: {} left", veth.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        // The lease goes with the container; a killed rsafe's as soon as `ps -a` looks.
        if how == "kill -9" {
            assert_eq!(rsafe_cmd(Caller::Host, store, &["ps", "-a"]).code, 0);
        }
        let leases = std::fs::read_dir(store.join("networks/left/leases"))
            .unwrap()
            .count();
        assert_eq!(leases, 0, "{how}");
        let hosts = store.join("networks/left/hosts").join(&id);
        assert!(!hosts.exists(), "{how}: {} left", hosts.display());
        let containers = inspect_network(store, "left")["containers"].clone();
        assert_eq!(containers, serde_json::json!({}), "{how}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let _ = rsafe_cmd(Caller::Host, store, &["rm", "-f", "svc"]);
            if std::fs::read_dir(store.join("containers")).map_or(0, |d| d.count()) == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{how}: container left");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let out = rsafe_cmd(Caller::Host, store, &["network", "rm", "left"]);
    assert_eq!(out.code, 0, "{out:?}");
    nets.names.clear();
    assert!(
        !Path::new("/sys/class/net").join(&bridge).exists(),
        "bridge left"
    );
    assert!(!store.join("networks/left").exists());
}

/// A network in use cannot be removed (root's and a rootless user's).
#[test]
fn a_network_in_use_is_kept() {
    if !root_with_bridges() {
        return;
    }
    for caller in Caller::all() {
        if caller == Caller::User {
            continue; // the same code as UserWithSubids past the id map
        }
        let store = support::temp_root();
        let store = store.path();
        let mut nets = Networks::of(caller, store);
        nets.create(&["--subnet", "10.89.252.0/24", "kept"]);
        let www = web_root("kept");
        serve_as(caller, store, "web", "kept", www.path(), 8000);
        let out = rsafe_cmd(caller, store, &["network", "rm", "kept"]);
        assert_eq!(out.code, 125, "{caller:?}: {out:?}");
        assert_eq!(
            out.stderr, "rsafe: network kept is in use by container web (stop it first)\n",
            "{caller:?}"
        );
    }
}

/// Whether this run can test rootless named networks: as root (to switch to the test user and
/// look into its namespaces), with the test user, iproute2, curl and lsns.
fn rootless_with_bridges(caller: Caller) -> bool {
    root_with_bridges()
        && support::have(
            "the test user rsafe-test (rootless named networks)",
            Caller::all().contains(&caller),
        )
        && support::have("curl", support::tool("curl"))
        && support::have("lsns (util-linux)", support::tool("lsns"))
}

/// The network's holder as recorded in the store: its pid.
fn holder_pid(store: &Path, net: &str) -> i32 {
    let text = std::fs::read_to_string(store.join("networks").join(net).join("holder")).unwrap();
    let record: Value = serde_json::from_str(&text).unwrap();
    i32::try_from(record["pid"].as_i64().unwrap()).unwrap()
}

/// `lsns`'s COLUMN of process `pid`'s namespace of `kind` (an inode number).
fn ns_column(pid: i32, kind: &str, column: &str) -> String {
    let out = support::sh(Command::new("lsns").args([
        "-n",
        "-o",
        column,
        "-t",
        kind,
        "-p",
        &pid.to_string(),
    ]));
    out.trim().to_string()
}

/// `GET /index.html` from the host's `127.0.0.1:port` with curl, retried while the server
/// starts.
fn curl(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/index.html");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("curl")
            .args(["-s", "-f", "--max-time", "3", &url])
            .output()
            .unwrap();
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(Instant::now() < deadline, "curl {url}: {out:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rootless_containers_reach_each_other_by_name_and_nothing_else() {
    rootless_reach(Caller::UserWithSubids);
}

#[test]
fn rootless_without_subordinate_ids_too() {
    rootless_reach(Caller::User);
}

/// A rootless user's two containers on one network reach each other by name (and by `exec`
/// from the earlier one), the host reaches one through `-p` with curl, a container on another
/// network reaches neither, the host's loopback and every other host address stay out of
/// reach, and each container's user namespace is its own, nested under the holder's, with
/// container root the user (never host root) and without the holder's network.
fn rootless_reach(caller: Caller) {
    if !rootless_with_bridges(caller) {
        return;
    }
    let store = support::temp_root();
    let store = store.path();
    let mut nets = Networks::of(caller, store);
    let front = nets.create(&["front"]);
    nets.create(&["back"]);
    let www = web_root("server");
    let port = support::free_port();
    let publish = format!("127.0.0.1:{port}:8000");
    let volume = format!("{}:/www:ro", www.path().display());
    let rootfs = caller.rootfs();
    let rootfs = rootfs.to_str().unwrap();
    let out = run(
        caller,
        store,
        &[
            "-d",
            "--name",
            "server",
            "--network",
            "front",
            "-p",
            &publish,
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
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stderr,
        format!("rsafe: publishing 127.0.0.1:{port} -> 8000/tcp\n")
    );
    let server_id = out.stdout.trim().to_string();
    let got = sh_on_as(
        caller,
        store,
        "front",
        &fetch_script("http://server:8000/index.html"),
    );
    assert_eq!(
        (got.code, got.stdout.as_str()),
        (0, "hello from server\n"),
        "{got:?}"
    );
    let got = sh_on_as(
        caller,
        store,
        "front",
        &fetch_script(&format!("http://{}:8000/", &server_id[..12])),
    );
    assert_eq!(got.stdout, "hello from server\n", "{got:?}");
    assert_eq!(curl(port), "hello from server\n");

    // The same `inspect` as root's.
    let doc = inspect_container_as(caller, store, "server");
    let settings = &doc["NetworkSettings"]["Networks"]["front"];
    let ip = settings["IPAddress"].as_str().unwrap().to_string();
    let subnet = front["subnets"][0]["subnet"].as_str().unwrap();
    assert!(
        ip.starts_with(subnet.trim_end_matches("0/24")),
        "{ip} {subnet}"
    );
    let net = inspect_network_as(caller, store, "front");
    assert_eq!(net["containers"][&server_id]["name"], "server", "{net}");

    // A later container, reached from the earlier one through `rsafe exec`.
    let www2 = web_root("late");
    serve_as(caller, store, "late", "front", www2.path(), 8001);
    let exec = rsafe_cmd(
        caller,
        store,
        &[
            "exec",
            "server",
            "sh",
            "-c",
            &fetch_script("http://late:8001/"),
        ],
    );
    assert_eq!(exec.stdout, "hello from late\n", "{exec:?}");
    // UDP: an echo server in `late`, a client socket in `server`'s network namespace.
    let late_ip = inspect_container_as(caller, store, "late")["NetworkSettings"]["Networks"]
        ["front"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    udp_between_as(caller, store, "late", "server", &late_ip);

    // Another network (another holder): the name is unknown, the address unreachable.
    let other = sh_on_as(
        caller,
        store,
        "back",
        &format!("wget -q -O- http://server:8000/; echo; wget -q -T 2 -O- http://{ip}:8000/"),
    );
    assert!(!other.stdout.contains("hello"), "{other:?}");
    assert!(
        other.stderr.contains("bad address 'server:8000'"),
        "{other:?}"
    );
    assert_ne!(holder_pid(store, "front"), holder_pid(store, "back"));

    // The host's services, on its loopback and on all its addresses: out of reach; a route
    // out through the gateway (the network is not internal), and no interface but lo and
    // eth0 in sight.
    let lo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let any = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let (lo_port, any_port) = (
        lo.local_addr().unwrap().port(),
        any.local_addr().unwrap().port(),
    );
    let gateway = front["subnets"][0]["gateway"].as_str().unwrap();
    let probe = sh_on_as(
        caller,
        store,
        "front",
        &format!(
            "wget -q -T 2 -O- http://127.0.0.1:{lo_port}/ && echo LOOPBACK-REACHED; \
             wget -q -T 2 -O- http://{gateway}:{any_port}/ && echo BRIDGE-REACHED; \
             ip route; ls /sys/class/net; true"
        ),
    );
    assert!(!probe.stdout.contains("REACHED"), "{probe:?}");
    assert!(
        probe.stdout.contains(&format!("default via {gateway}")),
        "{probe:?}"
    );
    let links: Vec<&str> = probe.stdout.lines().rev().take(2).collect();
    assert_eq!(links, ["lo", "eth0"], "{probe:?}");
    for l in [&lo, &any] {
        l.set_nonblocking(true).unwrap();
        assert!(
            l.accept().is_err(),
            "a container connected to the host: {probe:?}"
        );
    }
    nested_namespaces(caller, store, "front", &["server", "late"]);
}

/// The containers' user namespaces: one each, children of the holder's (which owns the
/// network namespace with the bridge), and container root is the test user on the host. From
/// inside, container root has no way into the holder's namespaces: it cannot see the holder's
/// pid, and its capabilities are its own namespace's.
fn nested_namespaces(caller: Caller, store: &Path, net: &str, containers: &[&str]) {
    let holder = holder_pid(store, net);
    let cmdline = std::fs::read(format!("/proc/{holder}/cmdline")).unwrap();
    assert_eq!(cmdline, format!("rsafe\0network\0hold\0{net}\0").as_bytes());
    let u0 = ns_column(holder, "user", "NS");
    assert_eq!(ns_column(holder, "net", "ONS"), u0, "N0 is owned by U0");
    let (uid, _) = support::test_user().unwrap();
    let mut seen = Vec::new();
    for name in containers {
        let pid = inspect_container_as(caller, store, name)["State"]["Pid"]
            .as_i64()
            .unwrap();
        let pid = i32::try_from(pid).unwrap();
        let uc = ns_column(pid, "user", "NS");
        assert_eq!(ns_column(pid, "user", "PNS"), u0, "{name}: nested under U0");
        assert_eq!(
            ns_column(pid, "net", "ONS"),
            uc,
            "{name}: its own network namespace"
        );
        assert!(!seen.contains(&uc), "{name}: a user namespace of its own");
        seen.push(uc);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let host_uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next())
            .unwrap();
        assert_eq!(
            host_uid,
            uid.to_string(),
            "{name}: container root is the user"
        );
    }
    let inside = rsafe_cmd(
        caller,
        store,
        &[
            "exec",
            containers[0],
            "sh",
            "-c",
            &format!("cat /proc/self/uid_map; ls /proc/{holder}/ns 2>&1 || echo UNSEEN"),
        ],
    );
    let first = inside.stdout.split_whitespace().take(3).collect::<Vec<_>>();
    assert_eq!(
        first,
        ["0", "0", "1"],
        "root is U0's root, not the host's: {inside:?}"
    );
    assert!(
        inside.stdout.contains("No such file or directory") && inside.stdout.contains("UNSEEN"),
        "the holder is out of sight: {inside:?}"
    );
}

// ---- Outbound traffic (issue 16): an "outside" namespace that the host routes to ----

/// A network namespace of the test's own, deleted (with whatever is in it) when dropped.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("rsafe-test-{}-{tag}", std::process::id());
        support::sh(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns(name);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS`.
    fn ip(&self, args: &[&str]) -> String {
        support::sh(Command::new("ip").arg("-n").arg(&self.0).args(args))
    }

    /// `PROGRAM ARGS` run inside it.
    fn exec(&self, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0]).arg(program);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// The outside world, for a test: a namespace linked to the host (or to a namespace standing
/// for one) by a veth pair on `NET/29` of TEST-NET-2 (198.51.100.0/24), the host's end `.1`,
/// the outside's `.2`, where busybox httpd serves `/cgi-bin/peer`: the client's address as the
/// server sees it. Server, namespace, veth pair and route go when this is dropped, however the
/// test ends. No traffic goes anywhere else.
struct Outside {
    server: std::process::Child,
    host_end: String,
    host: Option<String>,
    /// The server's address, and the host's on the link.
    addr: String,
    host_addr: String,
    _ns: Netns,
    _www: tempfile::TempDir,
}

impl Outside {
    fn new(tag: &str, net: u8, host: Option<&Netns>) -> Outside {
        let ns = Netns::new(&format!("out-{tag}"));
        let host_end = format!("rso{}{tag}", std::process::id() % 100_000);
        let (addr, host_addr) = (
            format!("198.51.100.{}", net + 2),
            format!("198.51.100.{}", net + 1),
        );
        let on_host = |args: &[&str]| match host {
            Some(h) => h.ip(args),
            None => support::sh(Command::new("ip").args(args)),
        };
        let www = tempfile::Builder::new()
            .prefix("rsafe-outside-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::create_dir(www.path().join("cgi-bin")).unwrap();
        let cgi = www.path().join("cgi-bin/peer");
        std::fs::write(
            &cgi,
            "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"peer $REMOTE_ADDR\"\n",
        )
        .unwrap();
        support::sh(Command::new("chmod").arg("755").arg(&cgi));
        // The guard exists before anything is made on the host, so a failure below cleans up.
        let mut outside = Outside {
            server: Command::new("true").spawn().unwrap(),
            host_end: host_end.clone(),
            host: host.map(|h| h.0.clone()),
            addr: addr.clone(),
            host_addr: host_addr.clone(),
            _ns: ns,
            _www: www,
        };
        on_host(&[
            "link",
            "add",
            &host_end,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &outside._ns.0,
        ]);
        on_host(&["addr", "add", &format!("{host_addr}/29"), "dev", &host_end]);
        on_host(&["link", "set", &host_end, "up"]);
        outside
            ._ns
            .ip(&["addr", "add", &format!("{addr}/29"), "dev", "eth0"]);
        outside._ns.ip(&["link", "set", "eth0", "up"]);
        outside.server = outside
            ._ns
            .exec(Path::new("busybox"))
            .args(["httpd", "-f", "-p", &format!("{addr}:8080"), "-h"])
            .arg(outside._www.path())
            .spawn()
            .unwrap();
        outside.wait_until_served(host);
        outside
    }

    /// Until the server answers from the host's side of the link.
    fn wait_until_served(&self, host: Option<&Netns>) {
        let url = format!("http://{}:8080/cgi-bin/peer", self.addr);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // curl: Debian's busybox 1.35 wget crashes with -T here.
            let mut cmd = match host {
                Some(h) => h.exec(Path::new("curl")),
                None => Command::new("curl"),
            };
            let got = cmd.args(["-s", "-m", "2", &url]).output().unwrap();
            if String::from_utf8_lossy(&got.stdout).starts_with("peer ") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the outside's server never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The address of the outside's server page.
    fn url(&self) -> String {
        format!("http://{}:8080/cgi-bin/peer", self.addr)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let mut del = Command::new("ip");
        if let Some(h) = &self.host {
            del.args(["-n", h]);
        }
        // Gone with the namespace's end of the pair, unless the namespace is still held.
        let _ = del
            .args(["link", "del", &self.host_end])
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether this run can test outbound traffic: named networks, nft, busybox (the outside's
/// server) and curl on the host.
fn root_with_nft() -> bool {
    root_with_bridges()
        && support::have("nftables (nft)", Path::new("/usr/sbin/nft").exists())
        && support::have("busybox", support::tool("busybox"))
        && support::have("curl", support::tool("curl"))
}

/// `nft list table inet rsafe` in the host (or `host`), empty if there is no such table.
fn rsafe_rules(host: Option<&Netns>) -> String {
    let mut cmd = match host {
        Some(h) => h.exec(Path::new("nft")),
        None => Command::new("nft"),
    };
    let out = cmd
        .args(["list", "table", "inet", "rsafe"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The host's IPv4 addresses, loopback's left out.
fn host_addresses() -> Vec<String> {
    let out = support::sh(Command::new("ip").args(["-o", "-4", "addr", "show"]));
    out.lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|a| a.split('/').next())
        .filter(|a| !a.starts_with("127."))
        .map(String::from)
        .collect()
}

/// A container on an outbound network fetches from the outside, which sees the host's address
/// (masqueraded); on an `--internal` network it cannot and has no route out. Neither reaches a
/// host service through any of the host's addresses (the gateway's included) nor a container
/// of another rsafe network, and the outside does not reach a container through the host;
/// `nft list table inet rsafe` names each network in its rules, and `network rm` leaves none
/// of them, nor the bridges.
#[test]
fn outbound_goes_out_as_the_host_and_reaches_nothing_of_it_nor_other_networks() {
    if !root_with_nft() {
        return;
    }
    let outside = Outside::new("a", 0, None);
    let store = support::temp_root();
    let store = store.path();
    let mut nets = Networks::new(store);
    let out = nets.create(&["--subnet", "10.89.232.0/24", "egress"]);
    assert_eq!(out["internal"], false);
    nets.create(&["--subnet", "10.89.233.0/24", "neighbour"]);
    let closed = nets.create(&["--internal", "--subnet", "10.89.234.0/24", "sealed"]);
    assert_eq!(closed["internal"], true);
    let bridges: Vec<String> = ["egress", "neighbour", "sealed"]
        .iter()
        .map(|n| {
            inspect_network(store, n)["network_interface"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();

    // A container on another outbound network, and the host's services on every address.
    let www = web_root("neighbour");
    serve(store, "next-door", "neighbour", www.path(), 8000);
    let next_door = inspect_container(store, "next-door")["NetworkSettings"]["Networks"]
        ["neighbour"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let any = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = any.local_addr().unwrap().port();
    let mut targets = host_addresses();
    targets.push(out["subnets"][0]["gateway"].as_str().unwrap().to_string());
    let tries: String = targets
        .iter()
        .map(|a| format!("(timeout 3 wget -q -O- http://{a}:{port}/ && echo HOST-REACHED {a}) & "))
        .collect();
    let script = format!(
        "{}; echo; {tries} (timeout 3 wget -q -O- http://{next_door}:8000/ && echo NEIGHBOUR-REACHED) & wait; ip route",
        fetch_script(&outside.url())
    );
    let got = sh_on(store, "egress", &script);
    assert_eq!(got.code, 0, "{got:?}");
    assert!(
        got.stdout
            .starts_with(&format!("peer {}\n", outside.host_addr)),
        "the outside sees the host's address: {got:?}"
    );
    assert!(!got.stdout.contains("REACHED"), "{got:?}");
    let gateway = out["subnets"][0]["gateway"].as_str().unwrap();
    assert!(
        got.stdout.contains(&format!("default via {gateway}")),
        "{got:?}"
    );
    any.set_nonblocking(true).unwrap();
    assert!(
        any.accept().is_err(),
        "a container connected to the host: {got:?}"
    );
    // The bridge's 127.0.0.0/8 stays a martian.
    let localnet = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", bridges[0]);
    assert_eq!(std::fs::read_to_string(localnet).unwrap(), "0\n");
    // Nothing is forwarded in: the outside, routing the network through the host, does not
    // reach the container's server (only -p does, from inside its namespace).
    let host_addr = outside.host_addr.clone();
    outside
        ._ns
        .ip(&["route", "add", "10.89.233.0/24", "via", &host_addr]);
    let inbound = outside
        ._ns
        .exec(Path::new("curl"))
        .args(["-s", "-m", "3", &format!("http://{next_door}:8000/")])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&inbound.stdout);
    assert!(!said.contains("hello"), "forwarded in: {said}");

    // Both ask rsafe's name server in their own namespace (the host's resolvers are where it
    // forwards outside names, from an outbound network only: tests `dns_*`).
    for net in ["egress", "sealed"] {
        let resolv = sh_on(store, net, "grep -v ^search /etc/resolv.conf");
        assert_eq!(
            resolv.stdout, "nameserver 127.0.0.11\noptions ndots:0\n",
            "{net}: {resolv:?}"
        );
    }

    // --internal: nothing out, no route.
    let sealed = sh_on(
        store,
        "sealed",
        &format!(
            "timeout 3 wget -q -O- {} && echo OUTSIDE-REACHED; ip route",
            outside.url()
        ),
    );
    assert!(!sealed.stdout.contains("REACHED"), "{sealed:?}");
    assert!(!sealed.stdout.contains("default"), "{sealed:?}");
    assert!(
        sealed.stdout.contains("10.89.234.0/24 dev eth0"),
        "{sealed:?}"
    );

    // What rsafe did, as nft lists it: each network's chains, its rules named after it.
    let rules = rsafe_rules(None);
    for (name, br) in ["egress", "neighbour", "sealed"].iter().zip(&bridges) {
        for chain in ["input", "forward"] {
            assert!(
                rules.contains(&format!("chain {br}-{chain} {{")),
                "{br}-{chain}\n{rules}"
            );
        }
        assert!(
            rules.contains(&format!("comment \"rsafe network {name}")),
            "{rules}"
        );
    }
    assert!(rules.contains(&format!(
        "ip saddr 10.89.232.0/24 oifname != \"{}\" masquerade",
        bridges[0]
    )));
    assert!(
        !rules.contains(&format!("chain {}-nat", bridges[2])),
        "{rules}"
    );

    // network rm: no chain, no bridge left of any of them.
    drop(nets);
    let rules = rsafe_rules(None);
    for br in &bridges {
        assert!(!rules.contains(br.as_str()), "{br} left:\n{rules}");
        assert!(!Path::new("/sys/class/net").join(br).exists(), "{br} left");
    }
}

/// The lines of `nft list table inet rsafe` that are network `name`'s rules.
fn rules_of(rules: &str, name: &str) -> usize {
    rules
        .lines()
        .filter(|l| l.contains(&format!("comment \"rsafe network {name}: ")))
        .count()
}

/// The rules are made again by the next run after their chains (or the bridge too: a reboot)
/// are gone, and never twice; the container gets out each time.
#[test]
fn rules_are_made_again_after_a_flush_or_reboot_and_never_twice() {
    if !root_with_nft() {
        return;
    }
    let outside = Outside::new("b", 8, None);
    let store = support::temp_root();
    let store = store.path();
    let mut nets = Networks::new(store);
    let net = nets.create(&["--subnet", "10.89.235.0/24", "again"]);
    let br = net["network_interface"].as_str().unwrap().to_string();
    let fetch = fetch_script(&outside.url());
    let want = format!("peer {}\n", outside.host_addr);
    for gone in ["", "chains", "", "chains and bridge"] {
        if gone.contains("chains") {
            for chain in ["input", "forward", "nat"] {
                support::sh(Command::new("nft").args([
                    "delete",
                    "chain",
                    "inet",
                    "rsafe",
                    &format!("{br}-{chain}"),
                ]));
            }
            assert_eq!(rules_of(&rsafe_rules(None), "again"), 0);
        }
        if gone.contains("bridge") {
            support::sh(Command::new("ip").args(["link", "del", &br]));
        }
        let got = sh_on(store, "again", &fetch);
        assert_eq!(
            (got.code, got.stdout.as_str()),
            (0, want.as_str()),
            "{gone}: {got:?}"
        );
        // input 1, forward 5, nat 1: one copy each.
        assert_eq!(rules_of(&rsafe_rules(None), "again"), 7, "{gone}");
    }
}

/// On a host whose `ip filter` FORWARD policy is DROP (docker's, through iptables-nft), rsafe's
/// accept does not overrule it: the container's traffic is dropped until the host accepts it
/// there too (as docker's DOCKER-USER chain is for). Played in a namespace standing for that
/// host, with `ip_forward` off: `network create` turns it on there and says so, and so does a
/// run that finds it off again (as after a reboot).
#[test]
fn a_docker_hosts_forward_drop_policy_drops_outbound_until_accepted() {
    if !root_with_nft() || !support::have("iptables", support::tool("iptables")) {
        return;
    }
    let host = Netns::new("dockerhost");
    support::sh(
        host.exec(Path::new("sysctl"))
            .args(["-qw", "net.ipv4.ip_forward=0"]),
    );
    let outside = Outside::new("c", 16, Some(&host));
    let store = support::temp_root();
    let store = store.path();
    let rsafe = |args: &[&str]| {
        let out = host
            .exec(&support::rsafe_bin())
            .arg("--root")
            .arg(store)
            .args(args)
            .output()
            .unwrap();
        run_support::Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let created = rsafe(&["network", "create", "--subnet", "10.89.236.0/24", "docked"]);
    assert_eq!(
        (created.code, created.stdout.as_str()),
        (0, "docked\n"),
        "{created:?}"
    );
    assert!(
        created
            .stderr
            .starts_with("rsafe: set net.ipv4.ip_forward=1 (host-wide, as docker does)"),
        "{created:?}"
    );
    let forward = support::sh(
        host.exec(Path::new("sysctl"))
            .args(["-n", "net.ipv4.ip_forward"]),
    );
    assert_eq!(forward, "1\n");
    let rootfs = Caller::Host.rootfs();
    let fetch = |tag: &str| {
        let script = format!(
            "timeout 5 wget -q -O- {} || echo {tag}-FAILED",
            outside.url()
        );
        rsafe(&[
            "run",
            "--rm",
            "--network",
            "docked",
            rootfs.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &script,
        ])
    };
    let want = format!("peer {}\n", outside.host_addr);
    // Off again, as after a reboot: the run turns it on and says so.
    support::sh(
        host.exec(Path::new("sysctl"))
            .args(["-qw", "net.ipv4.ip_forward=0"]),
    );
    let open = fetch("open");
    assert_eq!(open.stdout, want, "{open:?}");
    assert!(
        open.stderr
            .starts_with("rsafe: warning: set net.ipv4.ip_forward=1 (host-wide, as docker does)"),
        "{open:?}"
    );
    let br = serde_json::from_str::<Value>(&rsafe(&["network", "inspect", "docked"]).stdout)
        .unwrap()[0]["network_interface"]
        .as_str()
        .unwrap()
        .to_string();
    let iptables = |args: &[&str]| support::sh(host.exec(Path::new("iptables")).args(args));
    iptables(&["-P", "FORWARD", "DROP"]);
    assert_eq!(fetch("dropped").stdout, "dropped-FAILED\n");
    iptables(&["-I", "FORWARD", "-i", &br, "-j", "ACCEPT"]);
    iptables(&[
        "-I",
        "FORWARD",
        "-o",
        &br,
        "-m",
        "conntrack",
        "--ctstate",
        "RELATED,ESTABLISHED",
        "-j",
        "ACCEPT",
    ]);
    assert_eq!(fetch("accepted").stdout, want);
    let rm = rsafe(&["network", "rm", "docked"]);
    assert_eq!(rm.code, 0, "{rm:?}");
    assert_eq!(
        rsafe_rules(Some(&host)),
        "",
        "the last network's removal removes the table"
    );
}

/// `rsafe ARGS` as `caller`, in network namespace `host` (standing for the host).
fn rsafe_in(host: &Netns, caller: Caller, store: &Path, args: &[&str]) -> run_support::Output {
    let as_caller = caller.command(store);
    let mut cmd = host.exec(Path::new(as_caller.get_program()));
    cmd.args(as_caller.get_args());
    for (key, value) in as_caller.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    let out = cmd.args(args).output().unwrap();
    run_support::Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// As a rootless user, in a namespace standing for a host with `ip_forward` 0 and a route to
/// an outside: a network created without `--internal` reaches the outside through the
/// holder's slirp4netns, which connects from that host (the outside sees the host's address),
/// with the host's `ip_forward` and nft untouched (the forwarding and rules are in the
/// holder's namespace); nothing of the host is reached: its 127.0.0.1 and 0.0.0.0 listeners
/// through every host address, slirp4netns's host alias 10.0.2.2 and DNS 10.0.2.3, the
/// gateway; nor a container of another rootless network. An `--internal` network has no route
/// and gets nothing out. `network inspect` and `inspect` say how it goes out; kill -9 of the
/// holder takes slirp4netns with it (the next run starts both again), and `network rm` leaves
/// neither.
#[test]
fn rootless_outbound_goes_out_through_slirp4netns_and_reaches_nothing_of_the_host() {
    let caller = Caller::UserWithSubids;
    if !rootless_with_bridges(caller)
        || !root_with_nft()
        || !support::have("slirp4netns", support::tool("slirp4netns"))
    {
        return;
    }
    let host = Netns::new("rootlesshost");
    let sysctl = |args: &[&str]| support::sh(host.exec(Path::new("sysctl")).args(args));
    sysctl(&["-qw", "net.ipv4.ip_forward=0"]);
    let outside = Outside::new("d", 24, Some(&host));
    let store = support::temp_root();
    let store = store.path();
    let rsafe = |args: &[&str]| rsafe_in(&host, caller, store, args);
    // However the test ends: no container, holder or slirp4netns left.
    let _cleanup = OnDrop(|| {
        rsafe(&["rm", "-f", "next"]);
        rsafe(&["network", "rm", "open", "closed", "other"]);
    });
    let created = rsafe(&["network", "create", "--subnet", "10.89.238.0/24", "open"]);
    assert_eq!(
        (
            created.code,
            created.stdout.as_str(),
            created.stderr.as_str()
        ),
        (0, "open\n", ""),
    );
    for (args, name) in [
        (&["--internal", "--subnet", "10.89.237.0/24"][..], "closed"),
        (&["--subnet", "10.89.236.0/24"][..], "other"),
    ] {
        let mut all = vec!["network", "create"];
        all.extend_from_slice(args);
        all.push(name);
        let out = rsafe(&all);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    }
    for (name, internal, way) in [
        ("open", false, "slirp4netns: "),
        ("closed", true, "none: internal"),
    ] {
        let doc: Value =
            serde_json::from_str(&rsafe(&["network", "inspect", name]).stdout).unwrap();
        assert_eq!(doc[0]["internal"], internal, "{doc}");
        let said = doc[0]["options"]["rsafe.outbound"].as_str().unwrap();
        assert!(said.starts_with(way), "{doc}");
    }
    let rootfs = caller.rootfs();
    let rootfs = rootfs.to_str().unwrap();
    let www = web_root("other");
    let volume = format!("{}:/www:ro", www.path().display());
    let served = rsafe(&[
        "run",
        "-d",
        "--name",
        "next",
        "--network",
        "other",
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
    ]);
    assert_eq!(served.code, 0, "{served:?}");
    let doc: Value = serde_json::from_str(&rsafe(&["inspect", "next"]).stdout).unwrap();
    let doc = if doc.is_array() { doc[0].clone() } else { doc };
    let next = doc["NetworkSettings"]["Networks"]["other"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        doc["NetworkSettings"]["Networks"]["other"]["Gateway"], "10.89.236.1",
        "{doc}"
    );

    // The host's services, in the namespace standing for it: on 127.0.0.1 and on 0.0.0.0,
    // each ending (and saying so) at its first connection.
    let listen = |addr: &str, port: &str| {
        let mut cmd = host.exec(Path::new("python3"));
        cmd.args([
            "-c",
            "import socket,sys\ns=socket.socket()\ns.bind((sys.argv[1],int(sys.argv[2])))\ns.listen()\nprint('LISTENING', flush=True)\nprint('ACCEPTED', s.accept()[1], flush=True)",
            addr,
            port,
        ]);
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = Reaped(child);
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.0.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line, "LISTENING\n");
        child
    };
    let lo_port = 18777;
    let mut lo = listen("127.0.0.1", "18777");
    let mut any = listen("0.0.0.0", "18778");
    let host_addrs: Vec<String> = host
        .ip(&["-o", "-4", "addr", "show"])
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|a| a.split('/').next())
        .filter(|a| !a.starts_with("127."))
        .map(String::from)
        .collect();
    assert!(host_addrs.contains(&outside.host_addr), "{host_addrs:?}");
    let mut targets: Vec<String> = host_addrs.iter().map(|a| format!("{a}:18778")).collect();
    for a in ["10.0.2.2", "10.0.2.3", "10.89.238.1", "10.0.2.100"] {
        targets.push(format!("{a}:18778"));
        targets.push(format!("{a}:{lo_port}"));
    }
    targets.push(format!("{next}:8000"));
    let tries: String = targets
        .iter()
        .map(|t| {
            let (addr, port) = t.split_once(':').unwrap();
            format!("(timeout 3 nc {addr} {port} </dev/null && echo REACHED {t}) & ")
        })
        .collect();
    let script = format!(
        "{}; echo; {tries} wait; ip route; grep -c nameserver /etc/resolv.conf",
        fetch_script(&outside.url())
    );
    let got = rsafe(&[
        "run",
        "--rm",
        "--network",
        "open",
        rootfs,
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(got.code, 0, "{got:?}");
    assert!(
        got.stdout
            .starts_with(&format!("peer {}\n", outside.host_addr)),
        "the outside sees the host's address: {got:?}"
    );
    assert!(!got.stdout.contains("REACHED"), "{got:?}");
    assert!(got.stdout.contains("default via 10.89.238.1"), "{got:?}");
    for server in [&mut lo, &mut any] {
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "a container connected to a host service: {got:?}"
        );
    }

    // --internal: no route, nothing out.
    let sealed = rsafe(&[
        "run",
        "--rm",
        "--network",
        "closed",
        rootfs,
        "--",
        "sh",
        "-c",
        &format!(
            "ip route; timeout 5 wget -q -O- {} || echo OUT-FAILED",
            outside.url()
        ),
    ]);
    assert_eq!(sealed.code, 0, "{sealed:?}");
    assert!(!sealed.stdout.contains("default"), "{sealed:?}");
    assert!(sealed.stdout.ends_with("OUT-FAILED\n"), "{sealed:?}");
    assert!(
        sealed.stderr.contains("Network is unreachable"),
        "at once, not a timeout: {sealed:?}"
    );
    // Nothing of the host's was changed: its forwarding, its nft.
    assert_eq!(sysctl(&["-n", "net.ipv4.ip_forward"]), "0\n");
    assert_eq!(rsafe_rules(Some(&host)), "", "no nft table");

    // The holder's slirp4netns goes with it: kill -9, then the next run starts both again.
    let uplink = |store: &Path| -> i32 {
        let text = std::fs::read_to_string(store.join("networks/open/holder")).unwrap();
        let record: Value = serde_json::from_str(&text).unwrap();
        i32::try_from(record["uplink"][0].as_i64().unwrap()).unwrap()
    };
    let slirp = uplink(store);
    let cmdline = std::fs::read(format!("/proc/{slirp}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.starts_with("slirp4netns "), "{cmdline}");
    assert!(cmdline.contains(" --disable-host-loopback "), "{cmdline}");
    kill_9(holder_pid(store, "open"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(slirp) {
        assert!(
            Instant::now() < deadline,
            "slirp4netns {slirp} outlived its holder"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let again = rsafe(&[
        "run",
        "--rm",
        "--network",
        "open",
        rootfs,
        "--",
        "sh",
        "-c",
        &fetch_script(&outside.url()),
    ]);
    assert_eq!(
        (again.code, again.stdout.clone()),
        (0, format!("peer {}\n", outside.host_addr)),
        "{again:?}"
    );
    // Its slirp4netns killed alone (or never recorded: rsafe killed during the holder's
    // start): the holder is replaced, the old one ended.
    let (old_holder, old_slirp) = (holder_pid(store, "open"), uplink(store));
    kill_9(old_slirp);
    let again = rsafe(&[
        "run",
        "--rm",
        "--network",
        "open",
        rootfs,
        "--",
        "sh",
        "-c",
        &fetch_script(&outside.url()),
    ]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(gone(old_holder), "the holder without its uplink was left");
    assert_ne!(holder_pid(store, "open"), old_holder);
    assert_eq!(rsafe(&["rm", "-f", "next"]).code, 0);
    let holders = [holder_pid(store, "open"), holder_pid(store, "other")];
    let slirps = [uplink(store), slirp];
    let rm = rsafe(&["network", "rm", "open", "closed", "other"]);
    assert_eq!(
        (rm.code, rm.stdout.as_str()),
        (0, "open\nclosed\nother\n"),
        "{rm:?}"
    );
    for pid in holders.into_iter().chain(slirps) {
        assert!(gone(pid), "{pid} left");
    }
    assert_eq!(sysctl(&["-n", "net.ipv4.ip_forward"]), "0\n");
}

/// Runs its closure when dropped: a test's cleanup, however the test ends.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// A test's child process, killed and reaped when dropped.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// As a rootless user: four runs started at once, before the network has a holder, share one
/// holder and get four distinct addresses.
#[test]
fn rootless_concurrent_runs_share_one_holder() {
    let caller = Caller::UserWithSubids;
    if !rootless_with_bridges(caller) {
        return;
    }
    let store = support::temp_root();
    let store = store.path();
    let mut nets = Networks::of(caller, store);
    nets.create(&["--subnet", "10.89.249.0/24", "busy"]);
    let rootfs = caller.rootfs();
    let children: Vec<_> = (0..4)
        .map(|i| {
            caller
                .command(store)
                .args([
                    "run",
                    "--rm",
                    "--name",
                    &format!("c{i}"),
                    "--network",
                    "busy",
                ])
                .arg(&rootfs)
                .args([
                    "--",
                    "sh",
                    "-c",
                    "ip -o -4 addr show eth0; grep \"$(hostname)\" /etc/hosts; sleep 1",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut addrs = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout} {stderr}");
        assert!(stderr.is_empty(), "{stderr}");
        let addr = stdout
            .split_whitespace()
            .find(|w| w.starts_with("10.89.249."))
            .unwrap_or_else(|| panic!("no address: {stdout}"))
            .trim_end_matches("/24")
            .to_string();
        addrs.push(addr);
    }
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 4, "{addrs:?}");
    let holders =
        support::sh(Command::new("pgrep").args(["-f", "-c", "^rsafe network hold busy$"]));
    assert_eq!(holders.trim(), "1", "one holder");
}

/// kill -9 of process `pid`, and its end awaited.
fn kill_9(pid: i32) {
    support::sh(Command::new("kill").args(["-9", &pid.to_string()]));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(pid) {
        assert!(Instant::now() < deadline, "{pid} survived kill -9");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether process `pid` has ended (a zombie its reaper has not collected yet counts).
fn gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    })
}

/// The host ends of veth pairs in the holder's network namespace.
fn holder_veths(holder: i32) -> Vec<String> {
    let dev = std::fs::read_to_string(format!("/proc/{holder}/net/dev")).unwrap_or_default();
    dev.lines()
        .filter_map(|l| l.trim_start().split(':').next())
        .filter(|n| n.starts_with("rsv"))
        .map(String::from)
        .collect()
}

/// As a rootless user: after `stop`, `rm -f` and kill -9 of `rsafe run`, no veth is left in the
/// holder's namespace, no lease and no hosts file; after kill -9 of the holder itself the next
/// run starts a new one (saying so in one line when a container of the old one still runs);
/// `network rm` ends the holder and removes the network.
#[test]
fn rootless_nothing_is_left_and_a_killed_holder_is_replaced() {
    let caller = Caller::UserWithSubids;
    if !rootless_with_bridges(caller) {
        return;
    }
    let store = support::temp_root();
    let store = store.path();
    let mut nets = Networks::of(caller, store);
    nets.create(&["--subnet", "10.89.248.0/24", "left"]);
    let rootfs = caller.rootfs();
    let rootfs = rootfs.to_str().unwrap();
    let flags = [
        "--name",
        "svc",
        "--network",
        "left",
        rootfs,
        "--",
        "sleep",
        "600",
    ];
    for how in ["stop", "rm -f", "kill -9"] {
        let mut foreground = None;
        if how == "kill -9" {
            let child = caller
                .command(store)
                .arg("run")
                .args(flags)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            foreground = Some(child);
        } else {
            let mut args = vec!["-d"];
            args.extend(flags);
            let out = run(caller, store, &args);
            assert_eq!(out.code, 0, "{how}: {out:?}");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let id = loop {
            let doc = inspect_network_as(caller, store, "left");
            if let Some((id, _)) = doc["containers"].as_object().and_then(|c| c.iter().next()) {
                break id.clone();
            }
            assert!(Instant::now() < deadline, "{how}: never attached");
            std::thread::sleep(Duration::from_millis(20));
        };
        let holder = holder_pid(store, "left");
        let veth = format!("rsv{}", &id[..11]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !holder_veths(holder).contains(&veth) {
            assert!(Instant::now() < deadline, "{how}: no {veth}");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !Path::new("/sys/class/net").join(&veth).exists(),
            "{how}: a veth in the host"
        );
        match foreground.take() {
            Some(mut child) => {
                child.kill().unwrap();
                child.wait().unwrap();
            }
            None => {
                let mut args: Vec<&str> = how.split(' ').collect();
                args.push("svc");
                let out = rsafe_cmd(caller, store, &args);
                assert_eq!(out.code, 0, "{how}: {out:?}");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !holder_veths(holder).is_empty() {
            assert!(Instant::now() < deadline, "{how}: {veth} left");
            std::thread::sleep(Duration::from_millis(20));
        }
        if how == "kill -9" {
            assert_eq!(rsafe_cmd(caller, store, &["ps", "-a"]).code, 0);
        }
        let leases = std::fs::read_dir(store.join("networks/left/leases"))
            .unwrap()
            .count();
        assert_eq!(leases, 0, "{how}");
        assert!(
            !store.join("networks/left/hosts").join(&id).exists(),
            "{how}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let _ = rsafe_cmd(caller, store, &["rm", "-f", "svc"]);
            if std::fs::read_dir(store.join("containers")).map_or(0, |d| d.count()) == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{how}: container left");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            holder_pid(store, "left"),
            holder,
            "{how}: the same holder throughout"
        );
    }

    // kill -9 of the holder with no container on the network: the next run starts a new one
    // and says nothing.
    let old = holder_pid(store, "left");
    kill_9(old);
    let quiet = sh_on_as(caller, store, "left", "ip -o -4 addr show eth0");
    assert_eq!((quiet.code, quiet.stderr.as_str()), (0, ""), "{quiet:?}");
    assert!(quiet.stdout.contains("10.89.248.2/24"), "{quiet:?}");
    let second = holder_pid(store, "left");
    assert_ne!(second, old);
    // With a container of it still running: one line says what happened to it.
    let out = run(
        caller,
        store,
        &[
            "-d",
            "--name",
            "stranded",
            "--network",
            "left",
            rootfs,
            "--",
            "sleep",
            "600",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    kill_9(second);
    let said = sh_on_as(caller, store, "left", "true");
    assert_eq!(said.code, 0, "{said:?}");
    assert_eq!(
        said.stderr,
        "rsafe: warning: network left's holder process was gone (killed?): started a new one; containers started before have lost this network\n"
    );
    let third = holder_pid(store, "left");
    rsafe_cmd(caller, store, &["rm", "-f", "stranded"]);

    let out = rsafe_cmd(caller, store, &["network", "rm", "left"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "left\n"), "{out:?}");
    nets.names.clear();
    assert!(gone(third), "the holder is gone");
    assert!(!store.join("networks/left").exists());
}

/// tests/escape.rs's hostile probe in a container on a named network, as root and rootless
/// with and without subordinate ids: every vector stays blocked with the container's user
/// namespace nested under the holder's, the host's 127.0.0.1 listener and abstract socket among
/// them. One known leak: `/etc/hosts` is bound from the network's hosts file in the store (so
/// that rsafe can rewrite it in place), and `/proc/self/mountinfo` shows a bind's path from its
/// filesystem's root, so the store's path is seen (`mountinfo_host_paths`). The test checks
/// that this is the only path seen.
#[test]
fn escape_attempts_fail_on_a_named_network() {
    if !rootless_with_bridges(Caller::UserWithSubids) {
        return;
    }
    let Some(probe) = escape_support::probe() else {
        return;
    };
    let bait = escape_support::Bait::new();
    for caller in Caller::all() {
        let store = support::temp_root();
        let store = store.path();
        let mut nets = Networks::of(caller, store);
        nets.create(&["probed"]);
        let rootfs = escape_support::rootfs_with_probe(caller, &probe);
        let env: Vec<String> = bait
            .env(&[store, &support::fixtures_dir()])
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut args = vec!["--rm", "--network", "probed"];
        for e in &env {
            args.extend(["-e", e]);
        }
        args.extend([rootfs.to_str().unwrap(), "--", "/probe"]);
        let out = run(caller, store, &args);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let lines = escape_support::results(&out.stdout);
        let printed: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
        let mut expected = escape_support::VECTORS.to_vec();
        expected.push("done");
        assert_eq!(printed, expected, "{caller:?}: {}", out.stdout);
        for (vector, result) in lines.iter().filter(|(k, _)| k != "done") {
            // TIOCSTI needs a terminal, which `cargo test` may not give (as in tests/escape.rs).
            let not_applicable = vector == "tiocsti" && result.starts_with("n/a:");
            // The probe names the first mount line with a host path: it must be the hosts
            // file's (the same probe finds none without a named network: tests/escape.rs).
            let hosts_dir = format!("{}/networks/probed/hosts/", store.display());
            let known_leak = vector == "mountinfo_host_paths"
                && result.contains(&hosts_dir)
                && result.contains(" /etc/hosts ro,");
            assert!(
                result.starts_with("blocked:") || not_applicable || known_leak,
                "{caller:?}: {vector}={result}"
            );
        }
    }
}

// ---- Names by DNS: the server in each container's namespace (src/runtime/dns.rs) ----

/// Whether `caller`'s named networks can be tested here (root's, or the test user's).
fn named_networks_for(caller: Caller) -> bool {
    match caller {
        Caller::Host => root_with_bridges(),
        _ => rootless_with_bridges(caller),
    }
}

/// `rsafe run -d --name NAME --network NET` of a container that sleeps.
fn sleeper(caller: Caller, store: &Path, name: &str, net: &str) {
    sleeper_with(caller, store, name, net, &[]);
}

/// [`sleeper`] with more options for `run`.
fn sleeper_with(caller: Caller, store: &Path, name: &str, net: &str, options: &[&str]) {
    let rootfs = caller.rootfs();
    let mut args = vec!["-d", "--name", name, "--network", net];
    args.extend_from_slice(options);
    args.extend([rootfs.to_str().unwrap(), "--", "sleep", "600"]);
    let out = run(caller, store, &args);
    assert_eq!(out.code, 0, "{caller:?}: {out:?}");
}

/// Container `name`'s address on network `net`.
fn address_on(caller: Caller, store: &Path, name: &str, net: &str) -> String {
    let doc = inspect_container_as(caller, store, name);
    doc["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What busybox nslookup said (stdout and stderr).
fn said(out: &run_support::Output) -> String {
    format!("{}{}", out.stdout, out.stderr)
}

#[test]
fn dns_answers_the_networks_names_in_each_containers_namespace() {
    for caller in Caller::all() {
        if !named_networks_for(caller) {
            continue;
        }
        dns_names(caller);
    }
}

/// `nslookup NAME 127.0.0.11` from a second container finds NAME, a container started later
/// is found by an earlier one (`rsafe exec`, which shares its namespace and so its server) and
/// by a `--network container:` joiner, a name of another network does not exist, and a
/// container gone is gone from the answers.
fn dns_names(caller: Caller) {
    let store = support::temp_root();
    let store = store.path();
    let mut nets = Networks::of(caller, store);
    // Subnets of their own: tests run in parallel, each in its own store.
    let third = match caller {
        Caller::Host => 240,
        Caller::UserWithSubids => 242,
        Caller::User => 244,
    };
    nets.create(&["--subnet", &format!("10.89.{third}.0/24"), "front"]);
    nets.create(&["--subnet", &format!("10.89.{}.0/24", third + 1), "back"]);
    sleeper(caller, store, "web", "front");
    sleeper(caller, store, "early", "front");
    sleeper(caller, store, "other", "back");
    let web = address_on(caller, store, "web", "front");
    let got = sh_on_as(
        caller,
        store,
        "front",
        &format!(
            "cat /etc/resolv.conf; nslookup web 127.0.0.11; nslookup other 127.0.0.11; \
             nslookup {web} 127.0.0.11; nslookup 10.89.{third}.250 127.0.0.11"
        ),
    );
    let text = said(&got);
    // PTR: web's address names web; another address of the subnet does not exist.
    let reverse = |ip: &str| {
        let mut o: Vec<&str> = ip.split('.').collect();
        o.reverse();
        format!("{}.in-addr.arpa", o.join("."))
    };
    assert!(
        text.contains(&format!("{}\tname = web\n", reverse(&web))),
        "{caller:?}: {got:?}"
    );
    assert!(
        text.contains(&format!(
            "{}: NXDOMAIN",
            reverse(&format!("10.89.{third}.250"))
        )),
        "{caller:?}: {got:?}"
    );
    assert!(
        text.starts_with("nameserver 127.0.0.11\noptions ndots:0\n"),
        "{caller:?}: {got:?}"
    );
    assert!(
        text.contains(&format!("Name:\tweb\nAddress: {web}\n")),
        "{caller:?}: {got:?}"
    );
    assert!(
        text.contains("can't find other: NXDOMAIN"),
        "{caller:?}: {got:?}"
    );

    // Over TCP too, from the host: a thread in the container's namespace connects.
    let pid = inspect_container_as(caller, store, "early")["State"]["Pid"]
        .as_i64()
        .unwrap();
    assert_eq!(tcp_lookup(pid, "web."), vec![web.as_str()], "{caller:?}");

    sleeper(caller, store, "late", "front");
    let late = address_on(caller, store, "late", "front");
    let exec = rsafe_cmd(
        caller,
        store,
        &["exec", "early", "nslookup", "late", "127.0.0.11"],
    );
    assert!(
        said(&exec).contains(&format!("Address: {late}\n")),
        "{caller:?}: {exec:?}"
    );
    // A joiner of web's namespace asks web's server through its resolv.conf.
    let rootfs = caller.rootfs();
    let joiner = run(
        caller,
        store,
        &[
            "--rm",
            "--network",
            "container:web",
            rootfs.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "grep nameserver /etc/resolv.conf; nslookup late",
        ],
    );
    assert!(
        said(&joiner).starts_with("nameserver 127.0.0.11\n")
            && said(&joiner).contains(&format!("Address: {late}\n")),
        "{caller:?}: {joiner:?}"
    );
    // From the other network, front's names do not exist.
    let back = sh_on_as(caller, store, "back", "nslookup web 127.0.0.11");
    assert!(
        said(&back).contains("can't find web: NXDOMAIN"),
        "{caller:?}: {back:?}"
    );
    // Gone with its container.
    let rm = rsafe_cmd(caller, store, &["rm", "-f", "late"]);
    assert_eq!(rm.code, 0, "{rm:?}");
    let exec = rsafe_cmd(
        caller,
        store,
        &["exec", "early", "nslookup", "late", "127.0.0.11"],
    );
    assert!(
        said(&exec).contains("can't find late: NXDOMAIN"),
        "{caller:?}: {exec:?}"
    );

    // kill -9 of web's monitor (the server's process) leaves nothing in its namespace: no
    // helper, no server; the namespace itself is gone once the container is.
    let web_pid = inspect_container_as(caller, store, "web")["State"]["Pid"]
        .as_i64()
        .unwrap();
    let netns = std::fs::read_link(format!("/proc/{web_pid}/ns/net")).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{web_pid}/stat")).unwrap();
    let monitor: i32 = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    kill_9(monitor);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let holders: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.parse::<i32>().ok()?;
                let ns = std::fs::read_link(format!("/proc/{name}/ns/net")).ok()?;
                (ns == netns).then_some(name)
            })
            .collect();
        if holders.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{caller:?}: left in web's namespace after kill -9 of its monitor: {holders:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The A records `name` has for the server at 127.0.0.11:53 (TCP) in the network namespace
/// of process `pid`.
fn tcp_lookup(pid: i64, name: &str) -> Vec<String> {
    let answer = tcp_ask(pid, name);
    answer.answers.iter().map(|r| r.data.to_string()).collect()
}

/// The answer of the server at 127.0.0.11:53 (TCP) in the network namespace of process `pid`
/// to an A query for `name`.
fn tcp_ask(pid: i64, name: &str) -> hickory_proto::op::Message {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    use std::io::{Read, Write};
    let mut q = Message::query();
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let bytes = q.to_vec().unwrap();
    let netns = format!("/proc/{pid}/ns/net");
    let answer = std::thread::spawn(move || {
        let file = std::fs::File::open(&netns).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut stream = std::net::TcpStream::connect("127.0.0.11:53").unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut answer).unwrap();
        answer
    })
    .join()
    .unwrap();
    let answer = Message::from_vec(&answer).unwrap();
    assert_eq!(answer.metadata.id, q.metadata.id);
    answer
}

/// A TCP listener on `addr` in network namespace `ns`.
fn tcp_in(ns: &Netns, addr: &str) -> std::net::TcpListener {
    let path = format!("/run/netns/{}", ns.0);
    let addr = addr.to_string();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        std::net::TcpListener::bind(addr).unwrap()
    })
    .join()
    .unwrap()
}

/// A fake upstream name server over TCP on `listener`: every query is answered with 40 A
/// records (more than a UDP answer without EDNS holds), and its name recorded, until the
/// returned flag is set.
fn fake_tcp_upstream(
    listener: std::net::TcpListener,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<Vec<String>>,
) {
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::{RData, Record, rdata::A};
    use std::io::{Read, Write};
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    listener.set_nonblocking(true).unwrap();
    let thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut len = [0u8; 2];
            if s.read_exact(&mut len).is_err() {
                continue;
            }
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut q).unwrap();
            let mut msg = Message::from_vec(&q).unwrap();
            let name = msg.queries[0].name().clone();
            seen.push(name.to_ascii());
            msg.metadata.message_type = MessageType::Response;
            for i in 0..40 {
                msg.add_answer(Record::from_rdata(
                    name.clone(),
                    60,
                    RData::A(A(std::net::Ipv4Addr::new(192, 0, 2, i))),
                ));
            }
            let bytes = msg.to_vec().unwrap();
            let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            let _ = s.write_all(&framed);
        }
        seen
    });
    (stop, thread)
}

/// A UDP socket bound to `addr` in network namespace `ns` (made by a thread that entered it:
/// a socket stays in the namespace it was made in).
fn udp_in(ns: &Netns, addr: &str) -> std::net::UdpSocket {
    let path = format!("/run/netns/{}", ns.0);
    let addr = addr.to_string();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        std::net::UdpSocket::bind(addr).unwrap()
    })
    .join()
    .unwrap()
}

/// A fake upstream name server on `socket`, answering every A query with 192.0.2.77 and
/// recording each query's name and source, until the returned flag is set.
fn fake_upstream(
    socket: std::net::UdpSocket,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<Vec<(String, std::net::SocketAddr)>>,
) {
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::{RData, Record, RecordType, rdata::A};
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(mut msg) = Message::from_vec(&buf[..n]) else {
                seen.push(("(not DNS)".to_string(), from));
                continue;
            };
            let q = msg.queries[0].clone();
            seen.push((q.name().to_ascii(), from));
            msg.metadata.message_type = MessageType::Response;
            if q.query_type() == RecordType::A {
                msg.add_answer(Record::from_rdata(
                    q.name().clone(),
                    60,
                    RData::A(A(std::net::Ipv4Addr::new(192, 0, 2, 77))),
                ));
            }
            let _ = socket.send_to(&msg.to_vec().unwrap(), from);
        }
        seen
    });
    (stop, thread)
}

/// Outside names are forwarded from the container's own namespace: on an outbound network
/// they reach `--dns`'s server in an "outside" namespace (as the host's address, masqueraded)
/// and the answer comes back; unknown single labels are never sent; on an `--internal`
/// network nothing reaches that server (which the host itself reaches: a forward from the
/// host's namespace would), nor a server on the host's loopback, and the answer is SERVFAIL.
#[test]
fn dns_forwards_outside_names_only_from_the_containers_namespace() {
    if !root_with_nft() {
        return;
    }
    let outside = Outside::new("e", 32, None);
    let (stop, upstream) = fake_upstream(udp_in(&outside._ns, &format!("{}:53", outside.addr)));
    let (tcp_stop, tcp_upstream) =
        fake_tcp_upstream(tcp_in(&outside._ns, &format!("{}:53", outside.addr)));
    // A server on the host's loopback: `--dns 127.0.0.1` must not make rsafe use it.
    let host_lo = std::net::UdpSocket::bind("127.0.0.1:53")
        .expect("the test's fake server on the host's 127.0.0.1:53 (is port 53 taken?)");
    host_lo.set_nonblocking(true).unwrap();
    let store = support::temp_root();
    let store = store.path();
    let mut nets = Networks::new(store);
    nets.create(&["--subnet", "10.89.246.0/24", "open"]);
    nets.create(&["--internal", "--subnet", "10.89.247.0/24", "shut"]);
    let rootfs = Caller::Host.rootfs();
    let lookup = |net: &str| {
        run(
            Caller::Host,
            store,
            &[
                "--rm",
                "--network",
                net,
                "--dns",
                &outside.addr,
                "--dns",
                "127.0.0.1",
                rootfs.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                "nslookup -type=A example.test 127.0.0.11; nslookup nosuch 127.0.0.11; \
                 nslookup 10.89.246.200 127.0.0.11; nslookup 192.0.2.5 127.0.0.11",
            ],
        )
    };
    let open = lookup("open");
    assert!(
        said(&open).contains("Name:\texample.test\nAddress: 192.0.2.77\n"),
        "{open:?}"
    );
    assert!(
        said(&open).contains("can't find nosuch: NXDOMAIN"),
        "{open:?}"
    );
    // A reverse name of the network's subnet is answered in the container.
    assert!(
        said(&open).contains("200.246.89.10.in-addr.arpa: NXDOMAIN"),
        "{open:?}"
    );
    let shut = lookup("shut");
    assert!(said(&shut).contains("SERVFAIL"), "{shut:?}");
    assert!(!said(&shut).contains("192.0.2.77"), "{shut:?}");
    // Over TCP, an outside name goes over TCP and its answer, too large for UDP without
    // EDNS, comes back whole; from the internal network, nothing arrives.
    let dns = ["--dns", outside.addr.as_str()];
    sleeper_with(Caller::Host, store, "asker", "open", &dns);
    sleeper_with(Caller::Host, store, "shut-asker", "shut", &dns);
    let pid = |name: &str| {
        inspect_container_as(Caller::Host, store, name)["State"]["Pid"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(tcp_ask(pid("asker"), "big.test.").answers.len(), 40);
    let refused = tcp_ask(pid("shut-asker"), "big.test.");
    assert!(refused.answers.is_empty(), "{refused:?}");
    tcp_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(tcp_upstream.join().unwrap(), ["big.test."]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = upstream.join().unwrap();
    assert!(!seen.is_empty(), "the outbound query never arrived");
    for (name, from) in &seen {
        // Only the open network's queries, as the host's address on the link: never one of
        // its own subnet's reverse names.
        assert!(
            ["example.test.", "5.2.0.192.in-addr.arpa."].contains(&name.as_str()),
            "{seen:?}"
        );
        assert_eq!(from.ip().to_string(), outside.host_addr, "{seen:?}");
    }
    assert!(
        seen.iter().any(|(n, _)| n == "5.2.0.192.in-addr.arpa."),
        "an outside reverse name is forwarded: {seen:?}"
    );
    let mut buf = [0u8; 512];
    assert!(
        host_lo.recv_from(&mut buf).is_err(),
        "a query reached the host's loopback"
    );
}
