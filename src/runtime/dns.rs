//! The name server of a container on a named network, docker's shape: UDP and TCP sockets on
//! `127.0.0.11:53` *inside the container's own network namespace*, served by a thread of the
//! container's monitor (`rsafe run`, or the background monitor of `run -d`).
//!
//! ```text
//! monitor (host namespaces, single-threaded)      helper (forked)
//! fork ──────────────────────────────────────────▶ [rootless] setns(container's user ns)
//!                                                  setns(container's net ns)
//!                                                  UDP and TCP sockets, bind 127.0.0.11:53
//!                                                    (IP_FREEBIND), listen
//!                                                  UDP socket (upstream side), bind 0.0.0.0:0
//!                                                  16 TCP sockets (upstream side)
//!   ◀── the sockets (SCM_RIGHTS) ────────────────  _exit
//! thread "rsafe-dns": poll them; answer or forward
//!   a TCP connection: a thread of its own (at most 16), outside names asked over TCP
//! … container ends: the monitor drops the server, the thread ends, the sockets close
//! ```
//!
//! A socket keeps the network namespace it was made in, whatever its process joins later:
//! the monitor's thread never enters the container's namespaces, yet both sockets are the
//! container's own. So the server is no host service (nothing of it is reachable from
//! another namespace), a query for an outside name leaves from the container's namespace with
//! exactly the container's reachability (an `--internal` network's has none), and kill -9 of
//! the monitor leaves nothing: there is no process of its own, and the namespace's last user
//! takes the sockets with it. `rsafe exec` and `--network container:NAME` share the namespace,
//! and so the server.
//!
//! The loopback interface is still down when the sockets are made (the container brings it
//! up after its mounts): `IP_FREEBIND` binds 127.0.0.11 before it is a local address.
//!
//! Answers: names of the container's hosts file (its network's running containers: name,
//! hostname, short id; localhost; its `--add-host` lines), read at query time, so a container
//! started later is found at once; read under the file's shared lock, which rsafe's rewrite
//! in place holds exclusively ([`super::netstore::read_hosts`]), so never half rewritten.
//! (Not the lease store under its lock: that lock is held across `ip`, `nft` and a rootless
//! holder's start, and every query would wait as long.) A: its IPv4 addresses; any other type of a known name: no
//! record (NOERROR), as docker does for AAAA. An unknown name of one label: NXDOMAIN, never
//! sent upstream (a workload's internal names stay in the container). PTR: the reverse name
//! of an address the file gives (`2.0.89.10.in-addr.arpa`) points to the first name of its
//! line; any other reverse name inside the network's subnet is answered here too (NXDOMAIN),
//! so the network's addresses never leave in a question; outside it, forwarded, as docker
//! forwards the reverse names it does not know (the LAN's resolver may know them). Everything else goes to
//! the upstream servers (the host's non-loopback ones, or `--dns`) in the client's protocol,
//! as docker's server does: a UDP query over UDP, through a socket made in the container's
//! namespace, its answer passed on as the upstream sent it (a truncated one too: the client
//! asks again over TCP); a TCP query over TCP, through one of [`UPSTREAM_TCP`] sockets also
//! made there (a thread of the monitor cannot make sockets in a rootless container's
//! namespace, so each is reset after use, connect(2) to AF_UNSPEC, and lent again). With no
//! upstream (an `--internal` network, or only loopback servers on the host) REFUSED. A server
//! that does not answer in [`UPSTREAM_WAIT`] (over TCP: connect, send and answer) is left for
//! the next; after the last, SERVFAIL.
//!
//! Hostile queries: the wire format is read and written only by `hickory-proto` (fuzzed in
//! OSS-Fuzz); a datagram that does not decode is dropped, one that is too large too; at most
//! [`MAX_PER_SECOND`] queries a second are taken (over UDP), [`MAX_PENDING`] forwarded at once,
//! [`MAX_TCP`] TCP connections served, each for 16 queries and [`TCP_WAIT`] of silence; an
//! upstream answer is taken only from the server the query went to, with the query's random
//! id and question.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use rustix::net::SocketType;

use super::netstore::Subnet;

/// Where the server listens in the container, as docker's does.
pub const ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// How long an upstream server has to answer before the next is asked.
pub const UPSTREAM_WAIT: Duration = Duration::from_secs(2);

/// Queries taken per second (and in one burst); the rest are dropped, as a busy server's are.
pub const MAX_PER_SECOND: u32 = 2000;

/// Queries forwarded and not yet answered; beyond, SERVFAIL at once.
pub const MAX_PENDING: usize = 256;

/// The largest query taken (EDNS's usual payload limit); a larger datagram is dropped.
const MAX_QUERY: usize = 4096;

/// What a name's answer says about caching: nothing (a container's name goes with it).
const TTL: u32 = 0;

/// Why the server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("name server in the container's namespace: {0}")]
    Open(String),
    #[error("name server: {what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> DnsError {
    move |source| DnsError::Io { what, source }
}

/// What the server answers from and forwards to.
#[derive(Debug, Clone)]
pub struct Config {
    /// The container's hosts file on its network (rewritten in place as containers come and
    /// go), read at each query.
    pub hosts: PathBuf,
    /// Where other names go (port 53 of [`Config::upstreams_of`]'s servers): IPv4 only (the
    /// container's namespace has no IPv6 route on a named network), never a loopback address.
    pub upstreams: Vec<SocketAddr>,
    /// The network's subnet: reverse names (`in-addr.arpa`) inside it are answered here and
    /// never asked outside.
    pub subnet: Option<Subnet>,
}

impl Config {
    /// The upstream servers for `servers` (the host's or `--dns`): loopback ones left out (in
    /// the container's namespace they would be the container itself, or this server), and
    /// IPv6 ones (named networks are IPv4).
    pub fn upstreams_of(servers: &[IpAddr]) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for ip in servers {
            let at = SocketAddr::new(*ip, 53);
            if let IpAddr::V4(v4) = ip
                && !v4.is_loopback()
                && !v4.is_unspecified()
                && !out.contains(&at)
            {
                out.push(at);
            }
        }
        out
    }
}

/// The running server; its thread ends (and its sockets close) when this is dropped.
#[derive(Debug)]
pub struct Server {
    stop: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // The thread polls the pipe's read end: closing the write end wakes it to leave.
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The server of a container (first process `pid`) on a named network: its hosts file
/// `hosts`; other names forwarded to `--dns`'s servers when given, else to the host's (from
/// its `/etc/resolv.conf`, loopback ones left out) when the network reaches the outside
/// (`outbound`), else nowhere.
pub fn start_named(
    pid: i32,
    hosts: PathBuf,
    dns: &[IpAddr],
    outbound: bool,
) -> Result<Server, DnsError> {
    let servers = match (dns.is_empty(), outbound) {
        (false, _) => dns.to_vec(),
        (true, true) => super::network::name_servers(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        ),
        (true, false) => Vec::new(),
    };
    let upstreams = Config::upstreams_of(&servers);
    let subnet = super::netstore::subnet_of_hosts(&hosts)
        .map_err(|e| DnsError::Open(format!("its network: {e}")))?;
    let config = Config {
        hosts,
        upstreams,
        subnet: Some(subnet),
    };
    start(pid, config)
}

/// Opens the server's sockets in the network namespace of process `pid` (the container's
/// first process) and starts serving them on a thread. Call with the process
/// single-threaded (it forks a helper), after the last fork of the monitor that must not
/// carry the thread.
pub fn start(pid: i32, config: Config) -> Result<Server, DnsError> {
    let sockets = open_in_netns(pid, !config.upstreams.is_empty())?;
    let (stop_read, stop_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io_err("pipe")(e.into()))?;
    let thread = std::thread::Builder::new()
        .name("rsafe-dns".into())
        .spawn(move || serve(sockets, &config, &stop_read))
        .map_err(io_err("start its thread"))?;
    Ok(Server {
        stop: Some(stop_write),
        thread: Some(thread),
    })
}

/// The server's sockets.
struct Sockets {
    /// 127.0.0.11:53, UDP and TCP.
    udp: UdpSocket,
    tcp: TcpListener,
    /// Where forwarded queries leave from (none: nowhere to forward to).
    upstream: Option<UdpSocket>,
    /// TCP sockets of the container's namespace for a TCP client's outside names, not yet
    /// connected ([`UPSTREAM_TCP`] of them; none with nowhere to forward to).
    upstream_tcp: Vec<OwnedFd>,
}

/// The listening sockets (127.0.0.11:53) and, with `upstream`, the forwarding one, all made
/// in `pid`'s network namespace by a forked helper and passed back over a socket pair.
fn open_in_netns(pid: i32, upstream: bool) -> Result<Sockets, DnsError> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    let threads = super::sys::thread_count().map_err(io_err("count threads"))?;
    if threads != 1 {
        return Err(DnsError::Open(format!(
            "the monitor has {threads} threads and cannot fork safely"
        )));
    }
    let open = |kind: &str| {
        std::fs::File::open(format!("/proc/{pid}/ns/{kind}"))
            .map_err(io_err("open the container's namespaces"))
    };
    let (user, net) = (open("user")?, open("net")?);
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| io_err("socket pair")(e.into()))?;
    let parent = nix::unistd::getpid();
    // SAFETY: this process has one thread (checked above), so the child is a complete copy
    // and may run any code; it leaves only through `_exit`.
    match unsafe { nix::unistd::fork() }.map_err(|e| io_err("fork")(e.into()))? {
        nix::unistd::ForkResult::Child => {
            drop(ours);
            let made = helper(parent, &user, &net, upstream);
            let sent = send_back(&theirs, made);
            // SAFETY: ends the forked child without running the parent's exit handlers.
            unsafe { libc::_exit(if sent { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            let got = receive(&ours, upstream);
            let _ = nix::sys::wait::waitpid(child, None);
            got
        }
    }
}

/// The helper's work: into the container's namespaces, make and bind the sockets.
fn helper(
    parent: nix::unistd::Pid,
    user: &std::fs::File,
    net: &std::fs::File,
    upstream: bool,
) -> Result<Vec<OwnedFd>, String> {
    use nix::sched::{CloneFlags, setns};
    super::helper::die_with(parent)?;
    // A rootless caller's capabilities over the container's network namespace (and port 53's
    // CAP_NET_BIND_SERVICE) are those of its user namespace; root has them already and need
    // not join.
    if !nix::unistd::geteuid().is_root() {
        setns(user.as_fd(), CloneFlags::CLONE_NEWUSER)
            .map_err(|e| format!("join the container's user namespace: {e}"))?;
    }
    setns(net.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("join the container's network namespace: {e}"))?;
    let at = SocketAddrV4::new(ADDR, 53);
    let mut fds = vec![
        socket_at(at, SocketType::DGRAM)?,
        socket_at(at, SocketType::STREAM)?,
    ];
    rustix::net::listen(&fds[1], 16).map_err(|e| format!("listen on {at}: {e}"))?;
    if upstream {
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        fds.push(socket_at(any, SocketType::DGRAM)?);
        for _ in 0..UPSTREAM_TCP {
            fds.push(tcp_socket()?);
        }
    }
    Ok(fds)
}

/// A socket of `kind` bound to `at`, with `IP_FREEBIND` (127.0.0.11 exists only once the
/// container has brought its loopback up).
fn socket_at(at: SocketAddrV4, kind: SocketType) -> Result<OwnedFd, String> {
    use rustix::net::{AddressFamily, SocketFlags, bind, socket_with, sockopt};
    let fd = socket_with(AddressFamily::INET, kind, SocketFlags::CLOEXEC, None)
        .map_err(|e| format!("socket: {e}"))?;
    sockopt::set_ip_freebind(&fd, true).map_err(|e| format!("IP_FREEBIND: {e}"))?;
    bind(&fd, &SocketAddr::V4(at)).map_err(|e| format!("bind {at}: {e}"))?;
    Ok(fd)
}

/// A TCP socket of the namespace the calling thread is in, not yet bound or connected (it is
/// bound to a free port when it connects).
fn tcp_socket() -> Result<OwnedFd, String> {
    use rustix::net::{AddressFamily, SocketFlags, socket_with};
    socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| format!("socket: {e}"))
}

/// The helper's answer: the sockets, or why not (as text). Whether it was sent.
fn send_back(to: &OwnedFd, made: Result<Vec<OwnedFd>, String>) -> bool {
    let (text, fds): (String, Vec<std::os::fd::BorrowedFd<'_>>) = match &made {
        Ok(fds) => ("ok".to_string(), fds.iter().map(AsFd::as_fd).collect()),
        Err(why) => (why.clone(), Vec::new()),
    };
    super::fdpass::send_fds(to, text.as_bytes(), &fds).is_ok()
}

/// The monitor's side of [`send_back`].
fn receive(from: &OwnedFd, upstream: bool) -> Result<Sockets, DnsError> {
    let mut text = [0u8; 512];
    let (len, fds) = super::fdpass::recv_fds(from, &mut text, 3 + UPSTREAM_TCP)
        .map_err(|e| io_err("receive its sockets")(e.into()))?;
    let said = String::from_utf8_lossy(&text[..len.min(text.len())]).into_owned();
    let wanted = 2 + usize::from(upstream) * (1 + UPSTREAM_TCP);
    if said != "ok" || fds.len() != wanted {
        return Err(DnsError::Open(if said.is_empty() {
            "the helper ended without a word".into()
        } else {
            said
        }));
    }
    let mut fds = fds.into_iter();
    let (Some(udp), Some(tcp)) = (fds.next(), fds.next()) else {
        return Err(DnsError::Open("its sockets did not come back".into()));
    };
    Ok(Sockets {
        udp: UdpSocket::from(udp),
        tcp: TcpListener::from(tcp),
        upstream: fds.next().map(UdpSocket::from),
        upstream_tcp: fds.collect(),
    })
}

/// What to do with one query.
#[derive(Debug)]
pub enum Outcome {
    /// Send this back to the client.
    Reply(Vec<u8>),
    /// Not ours: forward it upstream (an id of our own is set before sending).
    Forward(Message),
    /// Not an answerable query (a response, or not DNS at all): nothing is sent.
    Drop,
}

/// The answer to the datagram `packet` given the container's hosts file `hosts`, its
/// network's `subnet`, and whether there is anywhere to forward other names to.
pub fn answer(packet: &[u8], hosts: &str, subnet: Option<Subnet>, can_forward: bool) -> Outcome {
    if packet.len() > MAX_QUERY {
        return Outcome::Drop;
    }
    let Ok(query) = Message::from_vec(packet) else {
        return Outcome::Drop;
    };
    if query.metadata.message_type != MessageType::Query {
        return Outcome::Drop;
    }
    if query.metadata.op_code != OpCode::Query {
        return reply(&query, ResponseCode::NotImp, Vec::new(), can_forward);
    }
    let [question] = query.queries.as_slice() else {
        return reply(&query, ResponseCode::FormErr, Vec::new(), can_forward);
    };
    let name = question.name().to_ascii();
    let name = name.trim_end_matches('.');
    if let Some(reverse) = Reverse::of(name) {
        return match reverse.answer(question, hosts, subnet) {
            Some((code, records)) => reply(&query, code, records, can_forward),
            None if can_forward => Outcome::Forward(query),
            None => reply(&query, ResponseCode::Refused, Vec::new(), can_forward),
        };
    }
    match lookup(hosts, name) {
        Some(addrs) => {
            let records = match question.query_type() {
                RecordType::A => addrs
                    .into_iter()
                    .map(|ip| Record::from_rdata(question.name().clone(), TTL, RData::A(A(ip))))
                    .collect(),
                _ => Vec::new(),
            };
            reply(&query, ResponseCode::NoError, records, can_forward)
        }
        None if !name.is_empty() && !name.contains('.') => {
            reply(&query, ResponseCode::NXDomain, Vec::new(), can_forward)
        }
        None if can_forward => Outcome::Forward(query),
        None => reply(&query, ResponseCode::Refused, Vec::new(), can_forward),
    }
}

/// The IPv4 addresses `hosts` (a hosts file's text) gives `name` (case-insensitive), or None
/// when it does not name it. An IPv6 line names it without an IPv4 address.
pub fn lookup(hosts: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
    let mut found = None;
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let Some(Ok(ip)) = words.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        if words.any(|w| w.eq_ignore_ascii_case(name)) {
            let addrs: &mut Vec<Ipv4Addr> = found.get_or_insert_with(Vec::new);
            if let IpAddr::V4(v4) = ip
                && !addrs.contains(&v4)
            {
                addrs.push(v4);
            }
        }
    }
    found
}

/// The first name `hosts` gives the IPv4 address `ip`, as glibc's reverse lookup over the file
/// takes it.
pub fn name_of(hosts: &str, ip: Ipv4Addr) -> Option<&str> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let at = words.next()?.parse::<Ipv4Addr>().ok()?;
        (at == ip).then(|| words.next()).flatten()
    })
}

/// A name under `in-addr.arpa`: the address octets its labels give, read from the right (at
/// most four), and whether other labels come before them.
#[derive(Debug, PartialEq)]
struct Reverse {
    octets: Vec<u8>,
    more: bool,
}

impl Reverse {
    /// `name` (no final dot) when it is `in-addr.arpa` or under it.
    fn of(name: &str) -> Option<Reverse> {
        let name = name.to_ascii_lowercase();
        let head = name.strip_suffix("in-addr.arpa")?;
        let labels: Vec<&str> = match head {
            "" => Vec::new(),
            _ => head.strip_suffix('.')?.split('.').collect(),
        };
        let octets: Vec<u8> = labels
            .iter()
            .rev()
            .map_while(|l| l.parse::<u8>().ok().filter(|o| o.to_string() == *l))
            .take(4)
            .collect();
        Some(Reverse {
            more: labels.len() > octets.len(),
            octets,
        })
    }

    /// The address it names, when it names one.
    fn address(&self) -> Option<Ipv4Addr> {
        let o: [u8; 4] = self.octets.as_slice().try_into().ok()?;
        (!self.more).then(|| Ipv4Addr::from(o))
    }

    /// The addresses under it, as a subnet (`in-addr.arpa` itself: all).
    fn range(&self) -> Subnet {
        let mut o = [0u8; 4];
        o[..self.octets.len()].copy_from_slice(&self.octets);
        let prefix = u8::try_from(self.octets.len() * 8).unwrap_or(32);
        Subnet {
            addr: Ipv4Addr::from(o),
            prefix,
        }
    }

    /// The local answer to `question` about it: a PTR record for an address `hosts` names
    /// (no record for other types); inside `subnet`, NXDOMAIN for another name and no record
    /// for the zone and the zones between it and the addresses. None: not ours, for the
    /// upstreams (docker forwards a reverse name it does not know).
    fn answer(
        &self,
        question: &Query,
        hosts: &str,
        subnet: Option<Subnet>,
    ) -> Option<(ResponseCode, Vec<Record>)> {
        let known = self.address().and_then(|ip| name_of(hosts, ip));
        if let Some(host) = known {
            let target = Name::from_ascii(format!("{host}.")).ok();
            let records = match (question.query_type(), target) {
                (RecordType::PTR, Some(t)) => {
                    vec![Record::from_rdata(
                        question.name().clone(),
                        TTL,
                        RData::PTR(PTR(t)),
                    )]
                }
                _ => Vec::new(),
            };
            return Some((ResponseCode::NoError, records));
        }
        let range = self.range();
        let inside = subnet.is_some_and(|s| range.prefix >= s.prefix && range.overlaps(s));
        match (inside, self.octets.len() < 4 && !self.more) {
            (false, _) => None,
            (true, true) => Some((ResponseCode::NoError, Vec::new())),
            (true, false) => Some((ResponseCode::NXDomain, Vec::new())),
        }
    }
}

/// A response to `query` with `code` and `answers`, authoritative for what it answers itself.
fn reply(query: &Message, code: ResponseCode, answers: Vec<Record>, recursion: bool) -> Outcome {
    match response(query, code, answers, recursion).to_vec() {
        Ok(bytes) => Outcome::Reply(bytes),
        Err(_) => Outcome::Drop,
    }
}

fn response(query: &Message, code: ResponseCode, answers: Vec<Record>, recursion: bool) -> Message {
    let mut out = Message::error_msg(query.metadata.id, query.metadata.op_code, code);
    out.metadata.authoritative = matches!(code, ResponseCode::NoError | ResponseCode::NXDomain);
    out.metadata.recursion_desired = query.metadata.recursion_desired;
    out.metadata.recursion_available = recursion;
    out.queries = query.queries.clone();
    out.answers = answers;
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        out.set_edns(edns);
    }
    out
}

/// A UDP query forwarded and waiting for its answer.
struct Pending {
    client: SocketAddr,
    client_id: u16,
    /// As sent upstream (with our id).
    query: Message,
    /// Which upstream it went to last, and until when it may answer.
    upstream: usize,
    deadline: Instant,
}

/// At most this many TCP connections at once, each one thread; more are closed at once.
pub const MAX_TCP: usize = 16;

/// TCP sockets to the upstreams, one for each connection served at once: a TCP client's
/// outside name is asked over TCP, as docker's server does (the client's own protocol).
pub const UPSTREAM_TCP: usize = MAX_TCP;

/// How long a TCP client may take to send a query, or to take its answer.
pub const TCP_WAIT: Duration = Duration::from_secs(5);

/// The thread's loop: queries on the UDP socket and TCP connections (each served by a thread
/// of its own), answers on the upstream socket, until `stop` closes.
fn serve(sockets: Sockets, config: &Config, stop: &OwnedFd) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let Sockets {
        udp,
        tcp,
        upstream,
        upstream_tcp,
    } = sockets;
    let mut connections: Vec<Connection> = Vec::new();
    let _ = tcp.set_nonblocking(true);
    let pool = Arc::new(Pool(Mutex::new(upstream_tcp)));
    let upstreams: Arc<[SocketAddr]> = config.upstreams.clone().into();
    let mut state = Forwarding {
        pending: HashMap::new(),
        random: std::fs::File::open("/dev/urandom").ok(),
        upstreams: &config.upstreams,
    };
    let mut bucket = Bucket::new(MAX_PER_SECOND);
    let mut buf = vec![0u8; MAX_QUERY + 1];
    let mut big = vec![0u8; 65536];
    loop {
        let wait = state
            .next_deadline()
            .map(|d| d.saturating_duration_since(Instant::now()))
            .map_or(PollTimeout::NONE, |d| {
                PollTimeout::from(
                    u16::try_from(d.as_millis() + 1)
                        .unwrap_or(10_000)
                        .min(10_000),
                )
            });
        let mut fds = vec![
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
            PollFd::new(udp.as_fd(), PollFlags::POLLIN),
            PollFd::new(tcp.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(u) = &upstream {
            fds.push(PollFd::new(u.as_fd(), PollFlags::POLLIN));
        }
        if !matches!(poll(&mut fds, wait), Ok(_) | Err(nix::errno::Errno::EINTR)) {
            drop(fds);
            close_all(connections);
            return;
        }
        let ready: Vec<bool> = (0..4)
            .map(|i| {
                fds.get(i)
                    .and_then(PollFd::revents)
                    .is_some_and(|r| !r.is_empty())
            })
            .collect();
        drop(fds);
        if ready[0] {
            close_all(connections);
            return;
        }
        if ready[1] {
            take_query(
                &udp,
                upstream.as_ref(),
                config,
                &mut buf,
                &mut bucket,
                &mut state,
            );
        }
        if ready[2] {
            let peer = TcpPeer {
                hosts: config.hosts.clone(),
                subnet: config.subnet,
                can_forward: upstream.is_some(),
                upstreams: upstreams.clone(),
                pool: pool.clone(),
            };
            connections.retain(|c| !c.thread.is_finished());
            connections.extend(take_connection(&tcp, peer, connections.len()));
        }
        if let Some(u) = &upstream {
            if ready[3] {
                take_answer(&udp, u, &mut big, &mut state);
            }
            state.expire(&udp, u);
        }
    }
}

/// One datagram from the container: answered, forwarded or dropped.
fn take_query(
    listen: &UdpSocket,
    upstream: Option<&UdpSocket>,
    config: &Config,
    buf: &mut [u8],
    bucket: &mut Bucket,
    state: &mut Forwarding<'_>,
) {
    let Ok((n, client)) = listen.recv_from(buf) else {
        return;
    };
    if !bucket.take() {
        return;
    }
    let hosts = read_hosts(&config.hosts);
    match answer(&buf[..n], &hosts, config.subnet, upstream.is_some()) {
        Outcome::Reply(bytes) => {
            let _ = listen.send_to(&bytes, client);
        }
        Outcome::Forward(query) => {
            if let Some(u) = upstream {
                state.forward(listen, u, client, query);
            }
        }
        Outcome::Drop => {}
    }
}

/// The hosts file's text, whole ([`super::netstore::read_hosts`]: under the lock its writer
/// holds); nothing when it cannot be read (the container is going).
fn read_hosts(path: &std::path::Path) -> String {
    super::netstore::read_hosts(path).unwrap_or_default()
}

/// What a TCP connection's thread needs.
struct TcpPeer {
    hosts: PathBuf,
    subnet: Option<Subnet>,
    can_forward: bool,
    upstreams: Arc<[SocketAddr]>,
    pool: Arc<Pool>,
}

/// A TCP connection being served: its thread, and a handle on its socket to shut it down.
struct Connection {
    stream: TcpStream,
    thread: std::thread::JoinHandle<()>,
}

/// A TCP connection, served by a thread of its own unless `serving` are [`MAX_TCP`] already.
fn take_connection(listener: &TcpListener, peer: TcpPeer, serving: usize) -> Option<Connection> {
    let (mut stream, _) = listener.accept().ok()?;
    if serving >= MAX_TCP {
        return None;
    }
    let handle = stream.try_clone().ok()?;
    let thread = std::thread::Builder::new()
        .name("rsafe-dns-tcp".into())
        .spawn(move || {
            serve_tcp(&mut stream, &peer);
            // The loop holds a copy of the socket: shut it down rather than only drop ours.
            let _ = stream.shutdown(std::net::Shutdown::Both);
        })
        .ok()?;
    Some(Connection {
        stream: handle,
        thread,
    })
}

/// Ends every connection's thread: the monitor may need to be single-threaded again once the
/// container has ended (a rootless `--rm` removes its files through a forked helper).
fn close_all(connections: Vec<Connection>) {
    for c in connections {
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
        let _ = c.thread.join();
    }
}

/// Queries on one TCP connection (RFC 1035 4.2.2: each with its length in two bytes), at most
/// 16, each answered before the next is read.
fn serve_tcp(stream: &mut TcpStream, peer: &TcpPeer) {
    use std::io::Write;
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(TCP_WAIT));
    let _ = stream.set_write_timeout(Some(TCP_WAIT));
    for _ in 0..16 {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let len = usize::from(u16::from_be_bytes(len));
        if len > MAX_QUERY {
            return;
        }
        let mut query = vec![0u8; len];
        if stream.read_exact(&mut query).is_err() {
            return;
        }
        let hosts = read_hosts(&peer.hosts);
        let bytes = match answer(&query, &hosts, peer.subnet, peer.can_forward) {
            Outcome::Reply(bytes) => bytes,
            Outcome::Forward(query) => forward_tcp(query, &peer.upstreams, &peer.pool),
            Outcome::Drop => return,
        };
        let Ok(n) = u16::try_from(bytes.len()) else {
            return;
        };
        let mut framed = n.to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        if stream.write_all(&framed).is_err() {
            return;
        }
    }
}

/// The unconnected TCP sockets of the container's namespace (the monitor's threads cannot
/// make more there: a rootless one would have to join its user namespace). One is lent for
/// each forwarded query and comes back unconnected.
struct Pool(Mutex<Vec<OwnedFd>>);

/// A socket of the pool, given back when dropped.
struct Lent<'a> {
    pool: &'a Pool,
    fd: Option<OwnedFd>,
}

impl Pool {
    fn take(&self) -> Option<Lent<'_>> {
        let fd = self.0.lock().ok()?.pop()?;
        Some(Lent {
            pool: self,
            fd: Some(fd),
        })
    }
}

impl Lent<'_> {
    /// Ends the socket's connection, if any, so that it may connect again: connect(2) to
    /// AF_UNSPEC, which TCP allows (the peer gets a reset, the port is freed); then the error
    /// that leaves on the socket is read off. False if the socket would not.
    fn reset(&self) -> bool {
        self.fd.as_ref().is_some_and(|fd| {
            let done = rustix::net::connect_unspec(fd).is_ok();
            let _ = rustix::net::sockopt::socket_error(fd);
            done
        })
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        // A socket that would not reset is closed: the pool has one less.
        if self.reset()
            && let Some(fd) = self.fd.take()
            && let Ok(mut free) = self.pool.0.lock()
        {
            free.push(fd);
        }
    }
}

/// A TCP client's outside name, asked over TCP of each upstream in turn through a socket of
/// `pool`: the first answer with our random id and the question goes back as the upstream
/// sent it, with the client's id. SERVFAIL when none answers in [`UPSTREAM_WAIT`] each, or no
/// socket is free.
fn forward_tcp(mut query: Message, upstreams: &[SocketAddr], pool: &Pool) -> Vec<u8> {
    let client_id = query.metadata.id;
    if let Some(socket) = pool.take() {
        for server in upstreams {
            let (Some(id), Some(fd)) = (random_id(), socket.fd.as_ref()) else {
                break;
            };
            query.metadata.id = id;
            let Ok(bytes) = query.to_vec() else {
                break;
            };
            let got = ask_over_tcp(fd, *server, &bytes);
            socket.reset();
            if let Ok(mut answer) = got
                && is_answer(&answer, id, &query.queries)
            {
                answer[..2].copy_from_slice(&client_id.to_be_bytes());
                return answer;
            }
        }
    }
    query.metadata.id = client_id;
    let failed = response(&query, ResponseCode::ServFail, Vec::new(), true);
    failed.to_vec().unwrap_or_default()
}

/// `query` (encoded) to `server` over TCP from the unconnected socket `fd`, and its answer:
/// connect, send and read all within [`UPSTREAM_WAIT`], whatever the server's pace.
fn ask_over_tcp(fd: &OwnedFd, server: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Write;
    let deadline = Instant::now() + UPSTREAM_WAIT;
    connect_by(fd, server, deadline)?;
    let mut stream = TcpStream::from(fd.try_clone()?);
    let len = u16::try_from(query.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.set_write_timeout(Some(left(deadline)?))?;
    stream.write_all(&framed)?;
    let mut len = [0u8; 2];
    read_by(&mut stream, &mut len, deadline)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    read_by(&mut stream, &mut answer, deadline)?;
    Ok(answer)
}

/// The time left until `deadline`, or a timeout error when none is.
fn left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    match left.is_zero() {
        true => Err(io::ErrorKind::TimedOut.into()),
        false => Ok(left),
    }
}

/// Connects `fd` to `server`, giving up at `deadline`; the socket is blocking again after.
fn connect_by(fd: &OwnedFd, server: SocketAddr, deadline: Instant) -> io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    rustix::io::ioctl_fionbio(fd, true)?;
    match rustix::net::connect(fd, &server) {
        Ok(()) => {}
        Err(rustix::io::Errno::INPROGRESS) => {
            let ms = u16::try_from(left(deadline)?.as_millis() + 1).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
            if poll(&mut fds, PollTimeout::from(ms)).map_err(io::Error::from)? == 0 {
                return Err(io::ErrorKind::TimedOut.into());
            }
            rustix::net::sockopt::socket_error(fd)??;
        }
        Err(e) => return Err(e.into()),
    }
    rustix::io::ioctl_fionbio(fd, false)?;
    Ok(())
}

/// Fills `buf` from `stream`, giving up at `deadline` (a server sending a byte at a time
/// does not hold the thread longer).
fn read_by(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        stream.set_read_timeout(Some(left(deadline)?))?;
        match stream.read(&mut buf[at..])? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => at += n,
        }
    }
    Ok(())
}

/// A query id unpredictable to anyone who would forge an answer.
fn random_id() -> Option<u16> {
    let mut b = [0u8; 2];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .ok()?;
    Some(u16::from_ne_bytes(b))
}

/// Whether `bytes` is a response with `id` to `queries`. Only its header and question are
/// read: the rest goes to the client as the upstream sent it, a truncated (TC) answer too,
/// which would not decode whole (its last record may be cut), so that the client asks again
/// over TCP, as docker's server lets it.
fn is_answer(bytes: &[u8], id: u16, queries: &[Query]) -> bool {
    let mut decoder = BinDecoder::new(bytes);
    let Ok(header) = Header::read(&mut decoder) else {
        return false;
    };
    header.metadata.id == id
        && header.metadata.message_type == MessageType::Response
        && Message::read_queries(&mut decoder, usize::from(header.counts.queries))
            .is_ok_and(|q| q == queries)
}

/// One datagram on the upstream socket: the answer to a pending query, passed on as it came
/// with the client's id, or dropped.
fn take_answer(
    listen: &UdpSocket,
    upstream: &UdpSocket,
    buf: &mut [u8],
    state: &mut Forwarding<'_>,
) {
    let Ok((n, from)) = upstream.recv_from(buf) else {
        return;
    };
    let answer = &mut buf[..n];
    let (Some(&a), Some(&b)) = (answer.first(), answer.get(1)) else {
        return;
    };
    let id = u16::from_be_bytes([a, b]);
    let Some(p) = state.pending.get(&id) else {
        return;
    };
    let expected = state.upstreams.get(p.upstream).copied();
    if Some(from) != expected || !is_answer(answer, id, &p.query.queries) {
        return;
    }
    let Some(p) = state.pending.remove(&id) else {
        return;
    };
    answer[..2].copy_from_slice(&p.client_id.to_be_bytes());
    let _ = listen.send_to(answer, p.client);
}

/// The forwarded queries and what they need.
struct Forwarding<'a> {
    pending: HashMap<u16, Pending>,
    random: Option<std::fs::File>,
    upstreams: &'a [SocketAddr],
}

impl Forwarding<'_> {
    /// An id no pending query has, unpredictable to anyone who would forge an answer.
    fn new_id(&mut self) -> Option<u16> {
        for _ in 0..64 {
            let mut b = [0u8; 2];
            self.random.as_mut()?.read_exact(&mut b).ok()?;
            let id = u16::from_ne_bytes(b);
            if !self.pending.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    /// Sends `query` from `client` to the first upstream that takes it; SERVFAIL when none
    /// does or too many are pending.
    fn forward(
        &mut self,
        listen: &UdpSocket,
        upstream: &UdpSocket,
        client: SocketAddr,
        mut query: Message,
    ) {
        let client_id = query.metadata.id;
        let id = match self.pending.len() < MAX_PENDING {
            true => self.new_id(),
            false => None,
        };
        let Some(id) = id else {
            fail(listen, &query, client);
            return;
        };
        query.metadata.id = id;
        let p = Pending {
            client,
            client_id,
            query,
            upstream: 0,
            deadline: Instant::now(),
        };
        self.send_from(p, 0, listen, upstream);
    }

    /// Sends `p` to the upstreams from `first` on until one takes it (a send that fails at
    /// once, say for want of a route, moves to the next); SERVFAIL after the last.
    fn send_from(
        &mut self,
        mut p: Pending,
        first: usize,
        listen: &UdpSocket,
        upstream: &UdpSocket,
    ) {
        let Ok(bytes) = p.query.to_vec() else {
            return;
        };
        for (i, server) in self.upstreams.iter().enumerate().skip(first) {
            if upstream.send_to(&bytes, server).is_ok() {
                p.upstream = i;
                p.deadline = Instant::now() + UPSTREAM_WAIT;
                self.pending.insert(p.query.metadata.id, p);
                return;
            }
        }
        let mut original = p.query;
        original.metadata.id = p.client_id;
        fail(listen, &original, p.client);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Queries whose upstream said nothing in time go to the next one.
    fn expire(&mut self, listen: &UdpSocket, upstream: &UdpSocket) {
        let now = Instant::now();
        let late: Vec<u16> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(p) = self.pending.remove(&id) {
                let next = p.upstream + 1;
                self.send_from(p, next, listen, upstream);
            }
        }
    }
}

/// SERVFAIL to `client` for `query` (with the client's own id).
fn fail(listen: &UdpSocket, query: &Message, client: SocketAddr) {
    if let Ok(bytes) = response(query, ResponseCode::ServFail, Vec::new(), true).to_vec() {
        let _ = listen.send_to(&bytes, client);
    }
}

/// A token bucket: `rate` queries a second, as a burst too.
struct Bucket {
    rate: u32,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Bucket {
        Bucket {
            rate,
            tokens: f64::from(rate),
            at: Instant::now(),
        }
    }

    /// Whether one more query may be taken now.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * f64::from(self.rate);
        self.tokens = (self.tokens + refill).min(f64::from(self.rate));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
                         10.89.0.3\tclient 3f2a9c1b7d4e\n10.89.0.2\tweb web-host 9b1c2d3e4f5a\n\
                         # a comment naming ghost\n192.0.2.9\tadded.example\n";

    /// The network of [`HOSTS`].
    const ZONE: Option<Subnet> = Some(Subnet {
        addr: Ipv4Addr::new(10, 89, 0, 0),
        prefix: 24,
    });

    fn query(name: &str, kind: RecordType) -> Message {
        let mut q = Message::query();
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        q
    }

    fn reply_of(outcome: Outcome) -> Message {
        match outcome {
            Outcome::Reply(bytes) => Message::from_vec(&bytes).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn addresses(msg: &Message) -> Vec<String> {
        msg.answers.iter().map(|r| r.data.to_string()).collect()
    }

    #[test]
    fn names_of_the_hosts_file_are_answered_with_their_addresses() {
        for name in ["web.", "WEB.", "web-host.", "9b1c2d3e4f5a."] {
            let q = query(name, RecordType::A);
            let r = reply_of(answer(&q.to_vec().unwrap(), HOSTS, ZONE, true));
            assert_eq!(r.metadata.id, q.metadata.id, "{name}");
            assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{name}");
            assert!(r.metadata.authoritative && r.metadata.recursion_desired);
            assert_eq!(addresses(&r), ["10.89.0.2"], "{name}");
            assert_eq!(r.queries, q.queries);
        }
        // An --add-host line of the container, and localhost.
        let r = reply_of(answer(
            &query("added.example.", RecordType::A).to_vec().unwrap(),
            HOSTS,
            ZONE,
            false,
        ));
        assert_eq!(addresses(&r), ["192.0.2.9"]);
        let r = reply_of(answer(
            &query("localhost.", RecordType::A).to_vec().unwrap(),
            HOSTS,
            ZONE,
            false,
        ));
        assert_eq!(addresses(&r), ["127.0.0.1"]);
    }

    #[test]
    fn other_types_of_a_known_name_have_no_record_and_unknown_single_labels_do_not_exist() {
        for kind in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
            let r = reply_of(answer(
                &query("web.", kind).to_vec().unwrap(),
                HOSTS,
                ZONE,
                true,
            ));
            assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{kind}");
            assert!(r.answers.is_empty(), "{kind}");
        }
        // Never sent upstream, even when it could be; "ghost" only in a comment.
        for name in ["nosuch.", "ghost"] {
            let r = reply_of(answer(
                &query(name, RecordType::A).to_vec().unwrap(),
                HOSTS,
                ZONE,
                true,
            ));
            assert_eq!(r.metadata.response_code, ResponseCode::NXDomain, "{name}");
        }
    }

    /// The outcome of a query for `name` of type `kind`, with upstreams to forward to.
    fn asked(name: &str, kind: RecordType) -> Outcome {
        answer(&query(name, kind).to_vec().unwrap(), HOSTS, ZONE, true)
    }

    #[test]
    fn reverse_names_of_known_addresses_are_answered_and_the_networks_never_leave() {
        // The first name of the address's line: a container's, an --add-host one, localhost.
        for (name, target) in [
            ("2.0.89.10.in-addr.arpa.", "web."),
            ("2.0.89.10.IN-ADDR.ARPA.", "web."),
            ("3.0.89.10.in-addr.arpa.", "client."),
            ("9.2.0.192.in-addr.arpa.", "added.example."),
            ("1.0.0.127.in-addr.arpa.", "localhost."),
        ] {
            let r = reply_of(asked(name, RecordType::PTR));
            assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{name}");
            assert!(r.metadata.authoritative, "{name}");
            assert_eq!(addresses(&r), [target], "{name}");
            assert_eq!(r.answers[0].name.to_ascii(), name, "{name}");
        }
        // Another type of a known reverse name: no record.
        let r = reply_of(asked("2.0.89.10.in-addr.arpa.", RecordType::TXT));
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        // Inside the network's subnet, never forwarded: an unknown address, a name below an
        // address, one with a label that is no octet, the subnet's own zone.
        for (name, code) in [
            ("77.0.89.10.in-addr.arpa.", ResponseCode::NXDomain),
            ("1.2.0.89.10.in-addr.arpa.", ResponseCode::NXDomain),
            ("_x.0.89.10.in-addr.arpa.", ResponseCode::NXDomain),
            ("02.0.89.10.in-addr.arpa.", ResponseCode::NXDomain),
            ("0.89.10.in-addr.arpa.", ResponseCode::NoError),
        ] {
            for kind in [RecordType::PTR, RecordType::SOA] {
                let r = reply_of(asked(name, kind));
                assert_eq!(r.metadata.response_code, code, "{name} {kind}");
                assert!(r.answers.is_empty(), "{name} {kind}");
            }
        }
        // Outside it, unknown: forwarded as docker does (a private address of the LAN, the
        // zones that hold the subnet, IPv6), or refused with nowhere to forward to.
        for name in [
            "5.1.168.192.in-addr.arpa.",
            "3.0.90.10.in-addr.arpa.",
            "89.10.in-addr.arpa.",
            "in-addr.arpa.",
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
            "xin-addr.arpa.",
        ] {
            assert!(
                matches!(asked(name, RecordType::PTR), Outcome::Forward(_)),
                "{name}"
            );
            let q = query(name, RecordType::PTR).to_vec().unwrap();
            let r = reply_of(answer(&q, HOSTS, ZONE, false));
            assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{name}");
        }
        // Without a known subnet only the hosts file's addresses are answered.
        let q = query("77.0.89.10.in-addr.arpa.", RecordType::PTR);
        assert!(matches!(
            answer(&q.to_vec().unwrap(), HOSTS, None, true),
            Outcome::Forward(_)
        ));
    }

    #[test]
    fn outside_names_are_forwarded_or_refused() {
        let q = query("example.org.", RecordType::A);
        match answer(&q.to_vec().unwrap(), HOSTS, ZONE, true) {
            Outcome::Forward(m) => assert_eq!(m.queries, q.queries),
            other => panic!("{other:?}"),
        }
        let r = reply_of(answer(&q.to_vec().unwrap(), HOSTS, ZONE, false));
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert!(!r.metadata.recursion_available);
    }

    #[test]
    fn odd_queries_get_dns_errors_and_responses_are_not_answered() {
        let mut q = query("web.", RecordType::A);
        q.metadata.op_code = OpCode::Status;
        let r = reply_of(answer(&q.to_vec().unwrap(), HOSTS, ZONE, true));
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
        let mut two = query("web.", RecordType::A);
        two.add_query(Query::query(
            Name::from_ascii("client.").unwrap(),
            RecordType::A,
        ));
        let r = reply_of(answer(&two.to_vec().unwrap(), HOSTS, ZONE, true));
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        let none = Message::query();
        let r = reply_of(answer(&none.to_vec().unwrap(), HOSTS, ZONE, true));
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        // A response sent to the server (a reflection attempt) gets nothing back.
        let mut resp = query("web.", RecordType::A);
        resp.metadata.message_type = MessageType::Response;
        assert!(matches!(
            answer(&resp.to_vec().unwrap(), HOSTS, ZONE, true),
            Outcome::Drop
        ));
        // EDNS in, EDNS out.
        let mut edns = query("web.", RecordType::A);
        edns.set_edns(Edns::new());
        assert!(
            reply_of(answer(&edns.to_vec().unwrap(), HOSTS, ZONE, true))
                .edns
                .is_some()
        );
    }

    #[test]
    fn malformed_packets_are_dropped_quickly_without_a_panic() {
        let good = query("web.", RecordType::A).to_vec().unwrap();
        let started = Instant::now();
        // Every truncation of a good query.
        for n in 0..good.len() {
            assert!(
                matches!(answer(&good[..n], HOSTS, ZONE, true), Outcome::Drop),
                "{n}"
            );
        }
        // A name that points at itself, and two names pointing at each other.
        let mut header = good[..12].to_vec();
        header[4..6].copy_from_slice(&1u16.to_be_bytes());
        let mut self_loop = header.clone();
        self_loop.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        let mut pair = header.clone();
        pair.extend_from_slice(&[1, b'a', 0xc0, 0x12, 1, b'b', 0xc0, 0x0c, 0, 1, 0, 1]);
        // A pointer past the end; a label longer than the packet; a count of 65535 questions.
        let mut past = header.clone();
        past.extend_from_slice(&[0xc0, 0xff, 0, 1, 0, 1]);
        let mut long_label = header.clone();
        long_label.extend_from_slice(&[63, b'x', b'y']);
        let mut many = good.clone();
        many[4..6].copy_from_slice(&u16::MAX.to_be_bytes());
        for (what, packet) in [
            ("self loop", &self_loop),
            ("pointer pair", &pair),
            ("pointer past the end", &past),
            ("long label", &long_label),
            ("65535 questions", &many),
        ] {
            assert!(
                matches!(answer(packet, HOSTS, ZONE, true), Outcome::Drop),
                "{what}"
            );
        }
        // Larger than any query: dropped before decoding.
        let mut huge = good.clone();
        huge.resize(MAX_QUERY + 1, 0);
        assert!(matches!(answer(&huge, HOSTS, ZONE, true), Outcome::Drop));
        // Pseudo-random bytes of every length up to 600 (xorshift, a fixed seed).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..600 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = answer(&bytes, HOSTS, ZONE, true);
        }
        // Bounded work: well under a second for all of it, even in a debug build.
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn lookup_reads_hosts_lines_and_upstreams_leave_out_loopback() {
        assert_eq!(
            lookup(HOSTS, "Client"),
            Some(vec![Ipv4Addr::new(10, 89, 0, 3)])
        );
        // Named by an IPv6 line only: known, without an IPv4 address.
        assert_eq!(lookup(HOSTS, "ip6-loopback"), Some(vec![]));
        assert_eq!(lookup(HOSTS, "ghost"), None);
        assert_eq!(lookup("not-an-ip web\n", "web"), None);
        let servers: Vec<IpAddr> = [
            "127.0.0.53",
            "10.0.0.2",
            "::1",
            "fe80::1",
            "10.0.0.2",
            "0.0.0.0",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(
            Config::upstreams_of(&servers),
            vec!["10.0.0.2:53".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn the_bucket_takes_its_rate_and_no_more() {
        let mut b = Bucket::new(50);
        let taken = (0..200).filter(|_| b.take()).count();
        // 50 at once, and at most a few more refilled while the loop ran.
        assert!((50..60).contains(&taken), "{taken}");
    }

    /// The server's loop on loopback sockets of the test's own namespace, `upstreams` its
    /// upstream servers; returns its address and the server (stopped when dropped).
    fn serving(upstreams: Vec<SocketAddr>) -> (SocketAddr, Server, tempfile::NamedTempFile) {
        let hosts = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(hosts.path(), HOSTS).unwrap();
        let sockets = Sockets {
            udp: UdpSocket::bind("127.0.0.1:0").unwrap(),
            tcp: TcpListener::bind("127.0.0.1:0").unwrap(),
            upstream: Some(UdpSocket::bind("127.0.0.1:0").unwrap()),
            // One: every TCP forward reuses the same socket.
            upstream_tcp: vec![tcp_socket().unwrap()],
        };
        // TCP on the same port as UDP, as on 127.0.0.11:53.
        let addr = sockets.udp.local_addr().unwrap();
        let sockets = Sockets {
            tcp: TcpListener::bind(addr).unwrap(),
            ..sockets
        };
        let config = Config {
            hosts: hosts.path().to_path_buf(),
            upstreams,
            subnet: ZONE,
        };
        let (stop_read, stop_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let thread = std::thread::spawn(move || serve(sockets, &config, &stop_read));
        let server = Server {
            stop: Some(stop_write),
            thread: Some(thread),
        };
        (addr, server, hosts)
    }

    fn client() -> UdpSocket {
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c
    }

    #[test]
    fn a_forwarded_answer_comes_back_only_from_its_server_with_the_clients_id() {
        let fake = UdpSocket::bind("127.0.0.1:0").unwrap();
        fake.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (addr, server, _hosts) = serving(vec![fake.local_addr().unwrap()]);
        let c = client();
        let q = query("example.org.", RecordType::A);
        c.send_to(&q.to_vec().unwrap(), addr).unwrap();
        let mut buf = [0u8; 4096];
        let (n, from) = fake.recv_from(&mut buf).unwrap();
        let forwarded = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(forwarded.queries, q.queries);
        let mut answer = forwarded.clone();
        answer.metadata.message_type = MessageType::Response;
        answer.add_answer(Record::from_rdata(
            Name::from_ascii("example.org.").unwrap(),
            60,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
        ));
        // A forgery from another port, with the right id, then one with another question.
        let forger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut forged = answer.clone();
        forged.answers[0] = Record::from_rdata(
            Name::from_ascii("example.org.").unwrap(),
            60,
            RData::A(A(Ipv4Addr::new(203, 0, 113, 66))),
        );
        forger.send_to(&forged.to_vec().unwrap(), from).unwrap();
        let mut other_question = forged.clone();
        other_question.queries = query("evil.example.", RecordType::A).queries;
        fake.send_to(&other_question.to_vec().unwrap(), from)
            .unwrap();
        fake.send_to(&answer.to_vec().unwrap(), from).unwrap();
        let (n, _) = c.recv_from(&mut buf).unwrap();
        let got = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(got.metadata.id, q.metadata.id);
        assert_eq!(addresses(&got), ["192.0.2.1"]);
        drop(server);
    }

    #[test]
    fn silent_upstreams_are_tried_in_turn_then_servfail() {
        let silent = [
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        ];
        let ups = silent.iter().map(|s| s.local_addr().unwrap()).collect();
        let (addr, _server, _hosts) = serving(ups);
        let c = client();
        let q = query("example.org.", RecordType::A);
        let started = Instant::now();
        c.send_to(&q.to_vec().unwrap(), addr).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = c.recv_from(&mut buf).unwrap();
        let got = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(got.metadata.id, q.metadata.id);
        assert_eq!(got.metadata.response_code, ResponseCode::ServFail);
        assert!(started.elapsed() >= UPSTREAM_WAIT * 2);
        for s in &silent {
            s.set_nonblocking(true).unwrap();
            assert!(s.recv_from(&mut buf).is_ok(), "each upstream was asked");
        }
        // Local names are still answered at once by the same loop.
        c.send_to(&query("web.", RecordType::A).to_vec().unwrap(), addr)
            .unwrap();
        let (n, _) = c.recv_from(&mut buf).unwrap();
        assert_eq!(
            addresses(&Message::from_vec(&buf[..n]).unwrap()),
            ["10.89.0.2"]
        );
    }

    /// One query over TCP (two bytes of length first), its answer read back.
    fn over_tcp(stream: &mut TcpStream, q: &Message) -> Message {
        use std::io::Write;
        let bytes = q.to_vec().unwrap();
        let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut answer).unwrap();
        Message::from_vec(&answer).unwrap()
    }

    /// `q`'s answer with `n` A records (192.0.2.0, .1, …).
    fn answer_with(q: &Message, n: u8) -> Message {
        let mut a = q.clone();
        a.metadata.message_type = MessageType::Response;
        for i in 0..n {
            a.add_answer(Record::from_rdata(
                q.queries[0].name().clone(),
                60,
                RData::A(A(Ipv4Addr::new(192, 0, 2, i))),
            ));
        }
        a
    }

    /// A fake upstream on TCP: on each of `conns` connections it reads one query and sends
    /// `reply(query)` back (None: nothing, the connection held until the other side leaves).
    /// The thread returns the queries it read.
    fn tcp_upstream(
        conns: usize,
        reply: fn(&Message) -> Option<Message>,
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<Message>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..conns {
                let (mut s, _) = listener.accept().unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut len = [0u8; 2];
                s.read_exact(&mut len).unwrap();
                let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                s.read_exact(&mut q).unwrap();
                let q = Message::from_vec(&q).unwrap();
                match reply(&q) {
                    Some(a) => {
                        use std::io::Write;
                        let bytes = a.to_vec().unwrap();
                        let n = u16::try_from(bytes.len()).unwrap();
                        s.write_all(&n.to_be_bytes()).unwrap();
                        s.write_all(&bytes).unwrap();
                    }
                    None => {
                        let mut rest = Vec::new();
                        let _ = s.read_to_end(&mut rest);
                    }
                }
                seen.push(q);
            }
            seen
        });
        (at, thread)
    }

    /// An address where nothing listens on TCP (a port just freed).
    fn refusing() -> SocketAddr {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    #[test]
    fn tcp_queries_are_answered_and_outside_names_forwarded_over_tcp_whole() {
        // Three answers of 100 records each (over 1600 bytes: more than UDP's 512 without
        // EDNS), one connection each; a refusing server is asked first every time.
        let (fake, upstream) = tcp_upstream(3, |q| Some(answer_with(q, 100)));
        let (addr, _server, _hosts) = serving(vec![refusing(), fake]);
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let got = over_tcp(&mut stream, &query("web.", RecordType::A));
        assert_eq!(addresses(&got), ["10.89.0.2"]);
        // Three outside names on one connection: the pool's one socket is reused each time,
        // after a refused connection and after an answer.
        let mut sent = Vec::new();
        for name in ["big.example.", "big.example.", "other.example."] {
            let q = query(name, RecordType::A);
            let got = over_tcp(&mut stream, &q);
            assert_eq!(got.metadata.id, q.metadata.id, "{name}");
            assert_eq!(got.queries, q.queries, "{name}");
            assert_eq!(got.answers.len(), 100, "{name}: the answer came whole");
            assert!(!got.metadata.truncation, "{name}");
            sent.push(q);
        }
        let seen = upstream.join().unwrap();
        for (q, s) in sent.iter().zip(&seen) {
            assert_eq!(s.queries, q.queries);
        }
        // Each query went out with an id of the server's own.
        assert!(
            seen.iter()
                .zip(&sent)
                .any(|(s, q)| s.metadata.id != q.metadata.id)
        );
        // A length larger than any query closes the connection.
        use std::io::Write;
        stream.write_all(&[0xff, 0xff]).unwrap();
        let mut rest = Vec::new();
        assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0);
    }

    #[test]
    fn a_forged_or_silent_tcp_upstream_is_left_then_servfail() {
        // The first answers with another id, the second holds the connection and says nothing.
        let (forger, forging) = tcp_upstream(2, |q| {
            let mut a = answer_with(q, 1);
            a.metadata.id = q.metadata.id.wrapping_add(1);
            Some(a)
        });
        let (silent, silence) = tcp_upstream(1, |_| None);
        let (addr, server, _hosts) = serving(vec![forger, silent]);
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let q = query("example.org.", RecordType::A);
        let started = Instant::now();
        let got = over_tcp(&mut stream, &q);
        assert_eq!(got.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(got.metadata.id, q.metadata.id);
        assert!(got.answers.is_empty());
        assert!(started.elapsed() >= UPSTREAM_WAIT);
        assert_eq!(silence.join().unwrap().len(), 1);
        // The socket came back to the pool: the next query is asked again (the forger's
        // second connection), and fails again.
        let got = over_tcp(&mut stream, &q);
        assert_eq!(got.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(forging.join().unwrap().len(), 2);
        drop(server);
    }

    #[test]
    fn a_truncated_udp_answer_goes_to_the_client_as_it_came() {
        let fake = UdpSocket::bind("127.0.0.1:0").unwrap();
        fake.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (addr, _server, _hosts) = serving(vec![fake.local_addr().unwrap()]);
        let c = client();
        let q = query("big.example.", RecordType::A);
        c.send_to(&q.to_vec().unwrap(), addr).unwrap();
        let mut buf = [0u8; 4096];
        let (n, from) = fake.recv_from(&mut buf).unwrap();
        let forwarded = Message::from_vec(&buf[..n]).unwrap();
        // TC set, and its last record cut off mid-way, as a server that fills the datagram
        // may send it.
        let mut cut = answer_with(&forwarded, 3);
        cut.metadata.truncation = true;
        let mut bytes = cut.to_vec().unwrap();
        bytes.truncate(bytes.len() - 3);
        assert!(Message::from_vec(&bytes).is_err(), "not decodable whole");
        fake.send_to(&bytes, from).unwrap();
        let (n, _) = c.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..2], &q.metadata.id.to_be_bytes(), "the client's id");
        assert_eq!(&buf[2..n], &bytes[2..], "the rest as the upstream sent it");
    }

    #[test]
    fn stopping_the_server_closes_its_tcp_connections_and_ends_their_threads() {
        let (addr, server, _hosts) = serving(Vec::new());
        let mut idle = TcpStream::connect(addr).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        // Served: a first query is answered, then the connection waits for the next.
        let got = over_tcp(&mut idle, &query("web.", RecordType::A));
        assert_eq!(addresses(&got), ["10.89.0.2"]);
        // The drop returns (it joins every thread) and the server's end is closed.
        drop(server);
        let mut rest = Vec::new();
        assert_eq!(idle.read_to_end(&mut rest).unwrap(), 0);
    }
}
