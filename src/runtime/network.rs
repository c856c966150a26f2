//! A user-mode network for the container's own network namespace, and published ports: what
//! `--network slirp4netns` and `-p` give, for root and rootless alike.
//!
//! ```text
//! rsafe run (host netns)                    container init
//! clone ───────────────────────────────────▶ unshare(NEWNET)
//! wait until its netns is not ours
//! slirp4netns --configure PID tap0 ────────▶ tap0 10.0.2.100/24, gw 10.0.2.2, DNS 10.0.2.3
//!   ◀── ready-fd
//! port forwarder 127.0.0.1:8080 → :80 (super::portfwd)
//! Go ──────────────────────────────────────▶ mounts …, /etc/resolv.conf → 10.0.2.3
//! …
//! exit-fd closed (rsafe ends, or is killed) ─▶ slirp4netns exits
//! ```
//!
//! Why slirp4netns and not pasta: Debian 12's pasta (2023-03) neither exits when its target
//! namespace goes away nor says when it is ready if kept in the foreground, so a killed rsafe
//! would leave it running, unseen. slirp4netns has `--exit-fd` (it exits when rsafe's end of a
//! pipe closes, however rsafe ends) and `--ready-fd`. Its `--disable-host-loopback` keeps the
//! container from reaching the host's 127.0.0.1 services through the gateway, and published
//! ports bind 127.0.0.1 unless an address is given (Docker's 0.0.0.0 default exposes a
//! development database to the whole network).

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::landlock::PortAccess;

/// What can go wrong with the container's network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("-p {spec:?}: {problem}")]
    Publish { spec: String, problem: String },
    #[error(
        "slirp4netns is not installed (apt-get install slirp4netns): --network slirp4netns and -p need it"
    )]
    NotInstalled,
    #[error("slirp4netns: {0}")]
    Slirp(String),
    /// A named network (`--network NAME`, see [`super::bridge`]) could not be joined.
    #[error("{0}")]
    Named(String),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> NetworkError {
    let what = what.into();
    move |source| NetworkError::Io { what, source }
}

/// The container's address, gateway and DNS forwarder on slirp4netns's network.
pub const CONTAINER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port: connections to `host_ip:host_port` on the host reach
/// `container_port` in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortMapping {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl std::fmt::Display for PortMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = match self.host_ip {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        write!(
            f,
            "{host}:{} -> {}/{}",
            self.host_port,
            self.container_port,
            self.proto.name()
        )
    }
}

impl PortMapping {
    /// As `docker ps` shows a port: `127.0.0.1:8080->80/tcp`.
    pub fn short(&self) -> String {
        self.to_string().replace(" -> ", "->")
    }
}

/// Parses `-p [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]`, with equal-length ranges
/// (`8080-8081:80-81`) and `HOSTIP::CONTAINERPORT` refused (rsafe picks no random port). The
/// host address defaults to 127.0.0.1.
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>, NetworkError> {
    let bad = |problem: &str| NetworkError::Publish {
        spec: spec.to_string(),
        problem: problem.to_string(),
    };
    let (body, proto) = match spec.rsplit_once('/') {
        Some((b, "tcp")) => (b, Proto::Tcp),
        Some((b, "udp")) => (b, Proto::Udp),
        Some(_) => return Err(bad("the protocol is tcp or udp")),
        None => (spec, Proto::Tcp),
    };
    // An IPv6 host address is bracketed: [::1]:8080:80.
    let (host_ip, ports) = if let Some(rest) = body.strip_prefix('[') {
        let (ip, rest) = rest
            .split_once("]:")
            .ok_or_else(|| bad("unclosed [ address"))?;
        let ip: IpAddr = ip.parse().map_err(|_| bad("not an IP address"))?;
        (ip, rest)
    } else {
        match body.split(':').collect::<Vec<_>>().as_slice() {
            [_, _] => (IpAddr::V4(Ipv4Addr::LOCALHOST), body),
            [ip, _, _] => {
                let ip: IpAddr = ip.parse().map_err(|_| bad("not an IP address"))?;
                (ip, &body[body.find(':').map_or(0, |i| i + 1)..])
            }
            [_] => {
                return Err(bad(
                    "give HOSTPORT:CONTAINERPORT (rsafe does not pick a host port for you)",
                ));
            }
            _ => return Err(bad("expected [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]")),
        }
    };
    let (host, container) = ports
        .split_once(':')
        .ok_or_else(|| bad("expected HOSTPORT:CONTAINERPORT"))?;
    if host.is_empty() {
        return Err(bad(
            "give a host port (rsafe does not pick a random one for you)",
        ));
    }
    let range = |s: &str| -> Result<(u16, u16), NetworkError> {
        let port = |p: &str| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad("ports are 1 to 65535")),
            Ok(n) => Ok(n),
        };
        match s.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (port(a)?, port(b)?);
                if a > b {
                    return Err(bad("a range goes from low to high"));
                }
                Ok((a, b))
            }
            None => port(s).map(|p| (p, p)),
        }
    };
    let (h0, h1) = range(host)?;
    let (c0, c1) = range(container)?;
    if h1 - h0 != c1 - c0 {
        return Err(bad("the host and container ranges differ in length"));
    }
    Ok((0..=h1 - h0)
        .map(|i| PortMapping {
            host_ip,
            host_port: h0 + i,
            container_port: c0 + i,
            proto,
        })
        .collect())
}

/// `-P`'s sockets, each bound when the kernel picked its port and kept open until the port
/// forwarder listens on that very socket ([`take_held`]): a port closed and bound again later
/// could be taken in between by any process, failing the run. A registry and not a field of
/// the [`super::spec::Spec`]: the spec is data (saved for `ps` and `start`), a socket is not;
/// the forwarder is forked from this process, so it inherits them.
static HELD: std::sync::Mutex<Vec<(PortMapping, OwnedFd)>> = std::sync::Mutex::new(Vec::new());

/// The socket [`publish_exposed`] bound for `port`, removed from the registry (the caller now
/// owns it); `None` for a `-p` port (bound by the forwarder) or one already taken.
pub fn take_held(port: &PortMapping) -> Option<OwnedFd> {
    let mut held = HELD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let at = held.iter().position(|(p, _)| p == port)?;
    Some(held.swap_remove(at).1)
}

/// `-P`: each of an image's `ExposedPorts` (`80/tcp`, `53/udp`, `8000`, `9000-9001/tcp`)
/// published on a free port of 127.0.0.1 that the kernel picks (a socket bound to port 0,
/// listening for TCP). The socket stays open, kept for the forwarder ([`take_held`]), so the
/// port is never free between its choice and the forwarder serving it.
pub fn publish_exposed(exposed: &[String]) -> Result<Vec<PortMapping>, NetworkError> {
    let mut out = Vec::new();
    let mut held = Vec::new();
    for key in exposed {
        let bad = |problem: &str| NetworkError::Publish {
            spec: format!("-P {key}"),
            problem: format!("the image's ExposedPorts: {problem}"),
        };
        let (ports, proto) = match key.rsplit_once('/') {
            Some((p, "tcp")) => (p, Proto::Tcp),
            Some((p, "udp")) => (p, Proto::Udp),
            Some(_) => return Err(bad("the protocol is tcp or udp")),
            None => (key.as_str(), Proto::Tcp),
        };
        let port = |p: &str| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad("ports are 1 to 65535")),
            Ok(n) => Ok(n),
        };
        let (first, last) = match ports.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(ports)?, port(ports)?),
        };
        for container_port in first..=last {
            let (socket, host_port) = free_port(proto).map_err(io_err("pick a free port"))?;
            let mapping = PortMapping {
                host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                host_port,
                container_port,
                proto,
            };
            held.push((mapping, socket));
            out.push(mapping);
        }
    }
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(held);
    // A config's ExposedPorts is a JSON object: in port order, whatever order it was read in.
    out.sort_by_key(|p| (p.container_port, p.proto == Proto::Udp));
    Ok(out)
}

/// A port of 127.0.0.1 the kernel picked, with the socket holding it.
fn free_port(proto: Proto) -> io::Result<(OwnedFd, u16)> {
    let any = (Ipv4Addr::LOCALHOST, 0);
    Ok(match proto {
        Proto::Tcp => {
            let l = std::net::TcpListener::bind(any)?;
            let port = l.local_addr()?.port();
            (l.into(), port)
        }
        Proto::Udp => {
            let u = std::net::UdpSocket::bind(any)?;
            let port = u.local_addr()?.port();
            (u.into(), port)
        }
    })
}

/// Lets the workload bind what it publishes: each published TCP container port a landlock
/// bind list (`access`) lacks is added to it (`any` needs nothing). Returns the ports added,
/// for `rsafe policy show -p` to say why they are there.
pub fn allow_published(access: &mut PortAccess, ports: &[PortMapping]) -> Vec<u16> {
    let PortAccess::Only(allowed) = access else {
        return Vec::new();
    };
    let mut added: Vec<u16> = ports
        .iter()
        .filter(|p| p.proto == Proto::Tcp && !allowed.contains(&p.container_port))
        .map(|p| p.container_port)
        .collect();
    added.sort_unstable();
    added.dedup();
    allowed.extend(&added);
    allowed.sort_unstable();
    added
}

/// `/etc/resolv.conf` for a container on slirp4netns's network: its DNS forwarder, which asks
/// the host's resolvers (so a host resolver on 127.0.0.53 works too), and the host's search
/// domains. `dns` and `search` replace them (`--dns`, `--dns-search`).
pub fn resolv_conf(host: &str, dns: &[IpAddr], search: &[String]) -> String {
    let mut out = String::new();
    let host_search: Vec<&str> = host
        .lines()
        .filter_map(|l| l.trim().strip_prefix("search"))
        .flat_map(str::split_whitespace)
        .collect();
    let search: Vec<&str> = if search.is_empty() {
        host_search
    } else {
        search.iter().map(String::as_str).collect()
    };
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if dns.is_empty() {
        out.push_str(&format!("nameserver {DNS}\n"));
    }
    for ip in dns {
        out.push_str(&format!("nameserver {ip}\n"));
    }
    out
}

/// `/etc/resolv.conf` for a container on a named network that reaches the outside: the host's
/// file without its loopback name servers (a container reaches the host only as the way out,
/// never its services; a stub resolver such as systemd-resolved's 127.0.0.53 is one), as
/// docker's default bridge does; `search` replaces the host's search domains. When only
/// loopback servers are left, none is written (docker would fall back to Google's public
/// servers; rsafe does not send a workload's queries anywhere it was not told): `--dns` names
/// one.
pub fn outbound_resolv_conf(host: &str, search: &[String]) -> String {
    let mut out = String::new();
    for line in host.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["nameserver", ip, ..] => {
                let loopback = ip
                    .split('%')
                    .next()
                    .and_then(|ip| ip.parse::<IpAddr>().ok())
                    .is_none_or(|ip| ip.is_loopback());
                if !loopback {
                    out.push_str(&format!("nameserver {ip}\n"));
                }
            }
            ["search" | "domain", ..] if !search.is_empty() => {}
            [first, ..] if !first.starts_with(['#', ';']) => {
                out.push_str(line.trim());
                out.push('\n');
            }
            _ => {}
        }
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    out
}

/// The name servers of a resolv.conf's text that a container on an outbound named network may
/// use: those [`outbound_resolv_conf`] keeps (no loopback one).
pub fn name_servers(host: &str) -> Vec<IpAddr> {
    outbound_resolv_conf(host, &[])
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .filter_map(|ip| ip.split('%').next()?.parse().ok())
        .collect()
}

/// `/etc/resolv.conf` for a container on a named network, as docker writes it on its
/// user-defined networks: rsafe's server in the container's own namespace
/// ([`super::dns::ADDR`]), which answers the network's names and forwards the rest,
/// `options ndots:0` (a name with no dot is tried as it is first), and the host's search
/// domains, or `search` (`--dns-search`) instead.
pub fn named_resolv_conf(host: &str, search: &[String]) -> String {
    let host_search: Vec<&str> = host
        .lines()
        .filter_map(|l| l.trim().strip_prefix("search"))
        .flat_map(str::split_whitespace)
        .collect();
    let search: Vec<&str> = match search.is_empty() {
        true => host_search,
        false => search.iter().map(String::as_str).collect(),
    };
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    out.push_str(&format!(
        "nameserver {}\noptions ndots:0\n",
        super::dns::ADDR
    ));
    out
}

/// How rsafe runs slirp4netns, for a container (`--network slirp4netns`) and for a rootless
/// named network's holder alike: it configures the tap device, never lets the namespace reach
/// the host's loopback through 10.0.2.2, says it is ready on fd 3 and exits when fd 4 closes.
pub(super) const SLIRP4NETNS_FLAGS: [&str; 5] = [
    "--configure",
    "--mtu=65520",
    "--disable-host-loopback",
    "--ready-fd=3",
    "--exit-fd=4",
];

/// slirp4netns serving a container's network namespace. It exits when this is dropped, or when
/// rsafe dies, whichever comes first (its exit pipe closes).
#[derive(Debug)]
pub struct UserNetwork {
    child: Child,
    exit: Option<OwnedFd>,
    /// The TCP port forwarder (see [`super::portfwd`]), killed with this.
    forwarder: Option<super::portfwd::Forwarder>,
}

impl UserNetwork {
    /// Starts slirp4netns for the network namespace of process `pid` (owned by its user
    /// namespace), waits until the namespace's `tap0` is configured, and publishes `ports`
    /// through rsafe's forwarder ([`super::portfwd`]).
    pub fn start(pid: i32, ports: &[PortMapping]) -> Result<UserNetwork, NetworkError> {
        wait_for_own_netns(pid)?;
        tun_usable()?;
        // Close-on-exec: slirp4netns gets them only as fds 3 and 4 (dup2 clears the flag); a
        // copy of the exit pipe's write end anywhere else would keep it running forever.
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io_err("pipe")(e.into()))
        };
        let (ready_read, ready_write) = pipe()?;
        let (exit_read, exit_write) = pipe()?;
        let mut cmd = Command::new("slirp4netns");
        cmd.args(SLIRP4NETNS_FLAGS)
            .arg(format!("--userns-path=/proc/{pid}/ns/user"))
            .arg(pid.to_string())
            .arg("tap0")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // What it says goes to an unnamed file: read back if it fails, never a pipe to fill.
        let log = tempfile::tempfile().map_err(io_err("slirp4netns's log"))?;
        cmd.stderr(log.try_clone().map_err(io_err("slirp4netns's log"))?);
        let (ready_fd, exit_fd) = (ready_write.as_raw_fd(), exit_read.as_raw_fd());
        // SAFETY: between fork and exec only async-signal-safe calls: dup2 and prctl.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(ready_fd, 3) < 0 || libc::dup2(exit_fd, 4) < 0 {
                    return Err(io::Error::last_os_error());
                }
                // And should rsafe die between fork and exec, or the exit pipe be inherited
                // somewhere, the kernel still ends it with rsafe.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(NetworkError::NotInstalled);
            }
            Err(e) => return Err(io_err("start slirp4netns")(e)),
        };
        drop((ready_write, exit_read));
        let mut net = UserNetwork {
            child,
            exit: Some(exit_write),
            forwarder: None,
        };
        let mut byte = [0u8; 1];
        let ready = std::fs::File::from(ready_read).read(&mut byte);
        if !matches!(ready, Ok(1)) {
            return Err(NetworkError::Slirp(last_line(log)));
        }
        // Through rsafe's own forwarder (the kernel's TCP and UDP on both sides): slirp4netns's
        // UDP forwarding loses the answers (see `super::portfwd`).
        if !ports.is_empty() {
            net.forwarder = Some(super::portfwd::spawn(pid, ports, CONTAINER_ADDR)?);
        }
        Ok(net)
    }
}

impl Drop for UserNetwork {
    fn drop(&mut self) {
        // Closing the exit pipe is slirp4netns's signal to go; it gets a second to.
        drop(self.exit.take());
        let deadline = Instant::now() + Duration::from_secs(1);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last line slirp4netns wrote to its log before it gave up.
pub(super) fn last_line(mut log: std::fs::File) -> String {
    use std::io::Seek;
    let mut text = String::new();
    let _ = log.rewind();
    let _ = log.read_to_string(&mut text);
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("it ended without saying why")
        .to_string()
}

/// slirp4netns opens `/dev/net/tun` from inside the container's user namespace, where only
/// its "other" permission bits count: a device left at mode 0600 (Debian's udev makes it 0666;
/// a host without udev may not) fails there with a bare "child failed". Say why instead.
pub(super) fn tun_usable() -> Result<(), NetworkError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata("/dev/net/tun").map(|m| m.permissions().mode() & 0o777);
    match mode {
        Ok(mode) if mode & 0o006 == 0o006 => Ok(()),
        Ok(mode) => Err(NetworkError::Slirp(format!(
            "/dev/net/tun is mode {mode:04o}: a user-mode network needs it usable from the container's user namespace (0666, Debian's default: chmod 666 /dev/net/tun)"
        ))),
        Err(e) => Err(io_err("/dev/net/tun")(e)),
    }
}

/// Waits (a second at most) until process `pid` has a network namespace of its own: the
/// container's init makes it first thing, and slirp4netns (or a named network's veth) must never
/// be pointed at the host's.
pub(super) fn wait_for_own_netns(pid: i32) -> Result<(), NetworkError> {
    let ours = std::fs::read_link("/proc/self/ns/net").map_err(io_err("/proc/self/ns/net"))?;
    let theirs = format!("/proc/{pid}/ns/net");
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match std::fs::read_link(&theirs) {
            Ok(ns) if ns != ours => return Ok(()),
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_micros(200)),
            Ok(_) => {
                return Err(NetworkError::Slirp(
                    "the container has no network namespace of its own".into(),
                ));
            }
            Err(e) => return Err(io_err(theirs)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortMapping {
        let mut all = parse_publish(spec).unwrap();
        assert_eq!(all.len(), 1, "{spec}");
        all.remove(0)
    }

    #[test]
    fn published_ports_bind_loopback_unless_an_address_is_given() {
        let p = one("8080:80");
        assert_eq!(p.host_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            (p.host_port, p.container_port, p.proto),
            (8080, 80, Proto::Tcp)
        );
        assert_eq!(p.to_string(), "127.0.0.1:8080 -> 80/tcp");
        let p = one("0.0.0.0:53:53/udp");
        assert_eq!(p.to_string(), "0.0.0.0:53 -> 53/udp");
        let p = one("[::1]:8443:443");
        assert_eq!(p.to_string(), "[::1]:8443 -> 443/tcp");
        let range = parse_publish("127.0.0.1:9000-9002:8000-8002").unwrap();
        assert_eq!(range.len(), 3);
        assert_eq!((range[2].host_port, range[2].container_port), (9002, 8002));
    }

    #[test]
    fn bad_publish_specs_say_what_is_wrong() {
        for (spec, says) in [
            ("80", "rsafe does not pick a host port"),
            (":80", "give a host port"),
            ("8080:80/sctp", "tcp or udp"),
            ("8080:0", "1 to 65535"),
            ("70000:80", "1 to 65535"),
            ("9000-9001:80", "differ in length"),
            ("9001-9000:80-81", "low to high"),
            ("nohost:8080:80", "not an IP address"),
            ("[::1:8080:80", "unclosed"),
        ] {
            let err = parse_publish(spec).unwrap_err().to_string();
            assert!(err.contains(says), "{spec}: {err}");
            assert!(err.starts_with(&format!("-p {spec:?}")), "{err}");
        }
    }

    #[test]
    fn exposed_ports_get_distinct_free_loopback_ports() {
        let keys = ["8000/tcp", "53/udp", "9000-9001/tcp", "70"].map(String::from);
        let all = publish_exposed(&keys).unwrap();
        let container: Vec<_> = all.iter().map(|p| (p.container_port, p.proto)).collect();
        assert_eq!(
            container,
            [
                (53, Proto::Udp),
                (70, Proto::Tcp),
                (8000, Proto::Tcp),
                (9000, Proto::Tcp),
                (9001, Proto::Tcp)
            ]
        );
        let mut hosts: Vec<u16> = all.iter().map(|p| p.host_port).collect();
        assert!(
            all.iter()
                .all(|p| p.host_ip == IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        hosts.sort_unstable();
        hosts.dedup();
        assert_eq!(hosts.len(), all.len(), "{all:?}");
        assert!(!hosts.contains(&0));
        // Still held once picked, for the forwarder: nobody else can bind them, TCP or UDP.
        for p in &all {
            let at = (Ipv4Addr::LOCALHOST, p.host_port);
            let again = match p.proto {
                Proto::Tcp => std::net::TcpListener::bind(at).map(drop),
                Proto::Udp => std::net::UdpSocket::bind(at).map(drop),
            };
            let err = again.expect_err(&format!("{p} was free to bind after -P picked it"));
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{p}");
            let socket = take_held(p).unwrap_or_else(|| panic!("{p} is not held"));
            let bound = match p.proto {
                Proto::Tcp => std::net::TcpListener::from(socket).local_addr(),
                Proto::Udp => std::net::UdpSocket::from(socket).local_addr(),
            };
            assert_eq!(bound.unwrap(), (p.host_ip, p.host_port).into(), "{p}");
            assert!(take_held(p).is_none(), "{p} handed out twice");
        }
        let err = publish_exposed(&["80/sctp".to_string()]).unwrap_err();
        assert!(err.to_string().contains("tcp or udp"), "{err}");
    }

    #[test]
    fn publishing_a_tcp_port_adds_its_container_port_to_a_bind_list() {
        let ports: Vec<PortMapping> = ["8080:80", "8443:443", "5353:53/udp", "9090:80"]
            .iter()
            .flat_map(|s| parse_publish(s).unwrap())
            .collect();
        let mut only = PortAccess::Only(vec![443, 8000]);
        assert_eq!(allow_published(&mut only, &ports), [80]);
        assert_eq!(only, PortAccess::Only(vec![80, 443, 8000]));
        let mut none = PortAccess::Only(vec![]);
        assert_eq!(allow_published(&mut none, &ports), [80, 443]);
        let mut any = PortAccess::Any;
        assert!(allow_published(&mut any, &ports).is_empty());
        assert_eq!(any, PortAccess::Any);
    }

    #[test]
    fn outbound_resolv_conf_keeps_the_hosts_servers_but_not_its_loopback_ones() {
        // systemd-resolved's stub, a local dnsmasq, an IPv6 loopback and a link-local zone.
        let host = "# Generated by NetworkManager\nsearch corp.example lab.example\n\
                    nameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\n\
                    nameserver fe80::1%eth0\noptions edns0 trust-ad\n; comment\n";
        assert_eq!(
            outbound_resolv_conf(host, &[]),
            "search corp.example lab.example\nnameserver 10.0.0.2\n\
             nameserver fe80::1%eth0\noptions edns0 trust-ad\n"
        );
        // --dns-search replaces the host's domains.
        assert_eq!(
            outbound_resolv_conf(host, &["app.internal".into()]),
            "nameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions edns0 trust-ad\n\
             search app.internal\n"
        );
        // Only a stub on loopback: no server at all rather than one nobody named.
        assert_eq!(
            outbound_resolv_conf("nameserver 127.0.0.53\noptions edns0\n", &[]),
            "options edns0\n"
        );
        assert_eq!(outbound_resolv_conf("nameserver not-an-ip\n", &[]), "");
    }

    #[test]
    fn resolv_conf_points_at_the_forwarder_and_keeps_search_domains() {
        let host = "nameserver 127.0.0.53\nsearch corp.example lab.example\noptions edns0\n";
        assert_eq!(
            resolv_conf(host, &[], &[]),
            "search corp.example lab.example\nnameserver 10.0.2.3\n"
        );
        let dns = ["9.9.9.9".parse().unwrap()];
        assert_eq!(
            resolv_conf(host, &dns, &["svc.local".into()]),
            "search svc.local\nnameserver 9.9.9.9\n"
        );
    }

    #[test]
    fn a_named_network_resolves_through_the_server_in_the_container() {
        let host = "search corp.example\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n\
                    nameserver fe80::1%eth0\noptions edns0\n";
        assert_eq!(
            named_resolv_conf(host, &[]),
            "search corp.example\nnameserver 127.0.0.11\noptions ndots:0\n"
        );
        assert_eq!(
            named_resolv_conf(host, &["app.internal".into()]),
            "search app.internal\nnameserver 127.0.0.11\noptions ndots:0\n"
        );
        assert_eq!(
            named_resolv_conf("nameserver 10.0.0.2\n", &[]),
            "nameserver 127.0.0.11\noptions ndots:0\n"
        );
        // What it forwards to: the host's servers but its loopback stub.
        let servers: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap(), "fe80::1".parse().unwrap()];
        assert_eq!(name_servers(host), servers);
        assert!(name_servers("nameserver 127.0.0.53\n").is_empty());
    }
}
