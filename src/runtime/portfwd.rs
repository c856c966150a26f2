//! Published TCP ports, forwarded by rsafe itself rather than through slirp4netns's user-mode
//! TCP stack (which carries a byte stream at about 40% of what the kernel does).
//!
//! One forked process, a child of rsafe that dies with it:
//!
//! ```text
//! host network namespace                 container network namespace
//! bind + listen 127.0.0.1:8080  ─┐
//! setns(user, net) ──────────────┼──▶ (from here on new sockets are the container's)
//! accept ◀── client              │
//!                                └──▶ socket + connect 10.0.2.100:80
//! copy both ways (a thread each)
//! ```
//!
//! A socket belongs to the network namespace it was created in, whatever its process joins
//! later: the listeners made before `setns` stay on the host, the connections made after it
//! are inside the container. This is what rootlesskit's port driver does for rootless podman.
//! UDP ports too: slirp4netns's own UDP forwarding drops the workload's answers when the host's
//! loopback is kept out of reach (`--disable-host-loopback`: the client's 127.0.0.1 becomes the
//! gateway inside, to which the container may not send; seen as ICMP port unreachable in the
//! container's counters). Here each client gets a socket of its own in the container.
//!
//! `-P`'s ports are chosen by binding port 0 in rsafe itself, before the container exists
//! (their numbers go in the spec that is printed, saved for `ps`, and handed to a detached
//! monitor); those very sockets are what the forwarder listens on, inherited across its fork
//! ([`super::network::take_held`]), so no port is ever free between choice and service. The
//! other way, the forwarder binding port 0 and reporting back, would leave the ports unknown
//! until after the container's state is saved and the publishing lines printed.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::sched::{CloneFlags, setns};
use nix::unistd::{ForkResult, Pid};

use super::network::{NetworkError, PortMapping, Proto, take_held};

/// The forwarding process; killed (and reaped) when dropped.
#[derive(Debug)]
pub struct Forwarder {
    pid: Pid,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// Forks the forwarder for `ports` (TCP and UDP) into the namespaces of process `pid`, where it
/// connects to `target` (slirp4netns's fixed address, or a named network's lease); returns
/// once every listener is bound, or with the reason one could not be (a port in use, a
/// privileged port for an unprivileged user). A port `-P` picked is served on the socket bound
/// when it was picked, which rsafe then closes: the forwarder holds the only copy. Call with
/// rsafe single-threaded.
pub fn spawn(
    pid: i32,
    ports: &[PortMapping],
    target: std::net::Ipv4Addr,
) -> Result<Forwarder, NetworkError> {
    let fail = |what: &str, e: io::Error| NetworkError::Io {
        what: what.to_string(),
        source: e,
    };
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail("pipe", e.into()))?;
    let user = std::fs::File::open(format!("/proc/{pid}/ns/user"))
        .map_err(|e| fail("the container's user namespace", e))?;
    let net = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| fail("the container's network namespace", e))?;
    let parent = nix::unistd::getpid();
    let held: Vec<Option<OwnedFd>> = ports.iter().map(take_held).collect();
    // SAFETY: rsafe is single-threaded here (the caller's contract, as for the container's
    // clone), so the child is a complete copy; it leaves only through `_exit`.
    match unsafe { nix::unistd::fork() }.map_err(|e| fail("fork", e.into()))? {
        ForkResult::Parent { child } => {
            drop((write, held));
            let forwarder = Forwarder { pid: child };
            let mut answer = String::new();
            let _ = std::fs::File::from(read).read_to_string(&mut answer);
            match answer.strip_prefix("ok") {
                Some(_) => Ok(forwarder),
                None => Err(NetworkError::Publish {
                    spec: ports
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    problem: if answer.is_empty() {
                        "the port forwarder ended before it was ready".into()
                    } else {
                        answer
                    },
                }),
            }
        }
        ForkResult::Child => {
            drop(read);
            let code = match child(parent, &user, &net, ports, target, held, write) {
                Ok(never) => match never {},
                Err(()) => 1,
            };
            // SAFETY: ends the forked child without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
    }
}

/// The forwarder's life: bind on the host, say so, move into the container, serve forever.
fn child(
    parent: Pid,
    user: &std::fs::File,
    net: &std::fs::File,
    ports: &[PortMapping],
    target: std::net::Ipv4Addr,
    held: Vec<Option<OwnedFd>>,
    ready: OwnedFd,
) -> Result<std::convert::Infallible, ()> {
    let mut ready = std::fs::File::from(ready);
    let mut refuse = |why: String| {
        let _ = ready.write_all(why.as_bytes());
        Err(())
    };
    let armed =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if armed.is_err() || nix::unistd::getppid() != parent {
        return refuse("rsafe ended while its port forwarder started".into());
    }
    let mut listeners = Vec::new();
    for (port, held) in ports.iter().zip(held) {
        match listen(port, held) {
            Ok(l) => listeners.push((l, port.container_port)),
            Err(why) => return refuse(why),
        }
    }
    // Root need not join the user namespace (it owns every one) and may not always: joining
    // is for a rootless caller, whose capabilities over the network namespace live there.
    if !nix::unistd::geteuid().is_root()
        && let Err(e) = setns(user.as_fd(), CloneFlags::CLONE_NEWUSER)
    {
        return refuse(format!("join the container's user namespace: {e}"));
    }
    if let Err(e) = setns(net.as_fd(), CloneFlags::CLONE_NEWNET) {
        return refuse(format!("join the container's network namespace: {e}"));
    }
    let _ = ready.write_all(b"ok");
    drop(ready);
    let mut servers = Vec::new();
    for (listener, container_port) in listeners {
        servers.push(std::thread::spawn(move || match listener {
            Listener::Tcp(l) => serve(l, SocketAddr::from((target, container_port))),
            Listener::Udp(u) => serve_udp(u, SocketAddr::from((target, container_port))),
        }));
    }
    for s in servers {
        let _ = s.join();
    }
    Err(())
}

/// The host socket for `port`: the one `-P` bound when it picked the port (`held`), or one
/// bound now for `-p`; the error is the line rsafe prints.
fn listen(port: &PortMapping, held: Option<OwnedFd>) -> Result<Listener, String> {
    let at = SocketAddr::new(port.host_ip, port.host_port);
    let bound = match (held, port.proto) {
        (Some(fd), Proto::Tcp) => Ok(Listener::Tcp(TcpListener::from(fd))),
        (Some(fd), Proto::Udp) => Ok(Listener::Udp(UdpSocket::from(fd))),
        (None, Proto::Tcp) => TcpListener::bind(at).map(Listener::Tcp),
        (None, Proto::Udp) => UdpSocket::bind(at).map(Listener::Udp),
    };
    bound.map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => format!("{at} is in use (is the host port taken?)"),
        io::ErrorKind::PermissionDenied => format!(
            "{at}: {e} (ports below 1024 need root, or net.ipv4.ip_unprivileged_port_start)"
        ),
        _ => format!("{at}: {e}"),
    })
}

/// A host socket bound for one published port.
enum Listener {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// At most this many UDP clients at once per port: each has a socket (and a thread) of its own
/// in the container; a datagram from one more is dropped, as a full queue would drop it.
const UDP_FLOWS: usize = 1024;

/// Relays datagrams between a host socket and the container's port forever. Each client
/// (address and port) gets a socket of its own made here, inside the container's network
/// namespace and connected to the port, so the workload sees one peer per client and its
/// answers come back on that socket, to be sent to the client from the host socket.
fn serve_udp(host: UdpSocket, target: SocketAddr) {
    let mut flows: HashMap<SocketAddr, UdpSocket> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = host.recv_from(&mut buf) else {
            back_off();
            continue;
        };
        if !flows.contains_key(&client) {
            if flows.len() >= UDP_FLOWS {
                continue;
            }
            let Some(upstream) = udp_flow(&host, client, target) else {
                continue;
            };
            flows.insert(client, upstream);
        }
        if let Some(upstream) = flows.get(&client) {
            let _ = upstream.send(&buf[..n]);
        }
    }
}

/// A socket for `client` connected to the container's `target`, with a thread sending what
/// comes back to the client through `host`.
fn udp_flow(host: &UdpSocket, client: SocketAddr, target: SocketAddr) -> Option<UdpSocket> {
    let upstream = UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    upstream.connect(target).ok()?;
    let (back, host) = (upstream.try_clone().ok()?, host.try_clone().ok()?);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        loop {
            match back.recv(&mut buf) {
                Ok(n) => {
                    let _ = host.send_to(&buf[..n], client);
                }
                // Nothing listens there yet (ICMP port unreachable): keep the flow.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(_) => return,
            }
        }
    });
    Some(upstream)
}

/// Accepts on a host listener forever; each connection gets a connection to the container's
/// port, made here (inside its network namespace), and a copy in each direction.
fn serve(listener: TcpListener, target: SocketAddr) {
    for client in listener.incoming() {
        let Ok(client) = client else {
            back_off();
            continue;
        };
        std::thread::spawn(move || {
            let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(10)) else {
                return; // nothing listens there: the client sees its connection close
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else {
                return;
            };
            let back = std::thread::spawn(move || pump(upstream2, client2));
            pump(client, upstream);
            let _ = back.join();
        });
    }
}

/// After a failed accept or receive: a pause before the next. Some failures last (EMFILE when
/// every descriptor is taken, ENOBUFS), and retrying at once would spin a core until they
/// pass; a failure that does not last costs one connection 20 ms.
fn back_off() {
    std::thread::sleep(Duration::from_millis(20));
}

/// Copies `from` to `to` until `from` ends, then passes the end on. A large buffer: with
/// `io::copy`'s 8 KiB, system calls, not bytes, were the cost (1.1 GB/s against 1.5 for
/// rootlesskit).
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::network::{CONTAINER_ADDR, publish_exposed};

    /// The socket inode bound to 127.0.0.1:`port` in the host's `/proc/net/{tcp,udp}` table.
    fn bound_inodes(port: &PortMapping) -> Vec<String> {
        let table = match port.proto {
            Proto::Tcp => "/proc/net/tcp",
            Proto::Udp => "/proc/net/udp",
        };
        let local = format!("0100007F:{:04X}", port.host_port);
        std::fs::read_to_string(table)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() > 9 && f[1] == local)
            .map(|f| format!("socket:[{}]", f[9]))
            .collect()
    }

    /// The socket inodes process `pid` holds.
    fn sockets_of(pid: &str) -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|f| std::fs::read_link(f.ok()?.path()).ok())
            .map(|l| l.display().to_string())
            .filter(|l| l.starts_with("socket:"))
            .collect()
    }

    /// No gap for `-P`: each port has one socket from its choice on, and the forwarder listens
    /// on that very socket (same inode), which rsafe no longer holds. The forwarder serves this
    /// test's own namespaces, which only root may join again.
    #[test]
    fn dash_capital_p_ports_are_served_on_the_sockets_bound_when_picked() {
        if !nix::unistd::geteuid().is_root() {
            let required = std::env::var("RSAFE_TEST_REQUIRE").is_ok_and(|v| v == "1");
            assert!(!required, "joining this test's own namespaces needs root");
            eprintln!("skipped: joining this test's own namespaces needs root");
            return;
        }
        let ports = publish_exposed(&["8000/tcp".into(), "9000/udp".into()]).unwrap();
        let picked: Vec<Vec<String>> = ports.iter().map(bound_inodes).collect();
        for (port, inodes) in ports.iter().zip(&picked) {
            assert_eq!(inodes.len(), 1, "{port}: {inodes:?}");
            assert!(sockets_of("self").contains(&inodes[0]), "{port}");
        }
        let forwarder = spawn(std::process::id() as i32, &ports, CONTAINER_ADDR).unwrap();
        let its = sockets_of(&forwarder.pid.to_string());
        let mine = sockets_of("self");
        for (port, inodes) in ports.iter().zip(&picked) {
            assert_eq!(&bound_inodes(port), inodes, "{port}: bound again");
            assert!(its.contains(&inodes[0]), "{port}: not the forwarder's");
            assert!(!mine.contains(&inodes[0]), "{port}: rsafe kept a copy");
            assert!(take_held(port).is_none(), "{port}: still registered");
        }
        drop(forwarder);
        for port in &ports {
            assert!(bound_inodes(port).is_empty(), "{port}: not released");
        }
    }
}
