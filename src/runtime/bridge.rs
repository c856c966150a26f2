//! `run --network NAME` as root: a Linux bridge per named network in the host, and a veth pair
//! per container, one end on the bridge, the other the container's `eth0`. A rootless user's
//! networks are the same in a holder's namespaces instead of the host's ([`Place`], and
//! [`super::rootless_net`]).
//!
//! ```text
//! rsafe run (host netns, root)                       container init (own netns)
//! clone ───────────────────────────────────────────▶ unshare(NEWNET)
//! lock networks; lease 10.89.0.2; hosts files (super::netstore)
//! bridge rsafe<id> (made on first use: up)
//!   outbound: 10.89.0.1/24 on it; nft rules (super::nat); ip_forward on
//! veth rsv<id> ── peer eth0 02:42:0a:59:00:02 ─────▶ eth0
//! setns(container netns): 10.89.0.2/24 on eth0, up, default via 10.89.0.1
//! Go ──────────────────────────────────────────────▶ /etc/hosts bound from the network's file
//! … container ends: its netns goes, and the veth pair with it; the lease is released
//! ```
//!
//! Outbound (the default, as in docker and podman): the bridge has the subnet's first address
//! (the gateway, the only one it answers ARP for), the container a default route through it,
//! and the host masquerades what leaves, with `net.ipv4.ip_forward` on. rsafe's nftables rules
//! ([`super::nat`], made under the store's lock at every start) drop whatever the containers
//! send to the host itself (any of its addresses; 127.0.0.1 is a martian on the bridge, as
//! `route_localnet` stays 0), to another rsafe network, and whatever else would be forwarded
//! to them. `--internal`: the bridge has no address (IPv4 nor IPv6 link-local, and it answers
//! no ARP for the host's addresses), the container no default route, nothing is masqueraded,
//! and the same rules drop anything it would forward.
//!
//! Rootless ([`Place::Holder`]): the same in the holder's namespaces, where the user is root
//! through U0: the gateway on the bridge, the container's default route through it, and the
//! same rules in N0's own nftables, masquerading out of slirp4netns's `tap0`, with forwarding
//! on in N0 only (the host's `ip_forward` and `nft` are root's and stay untouched); since
//! slirp4netns connects from the host, N0's rules also drop what goes to the host's own
//! addresses and to slirp4netns's host alias and DNS forwarder. An internal rootless network
//! has no address on its bridge, no route and no rules (it would only make N0 a peer the
//! containers reach).
//!
//! The bridge stays while its network does: `rsafe network rm` removes it; a host reboot takes
//! it and the next run makes it again.
//!
//! Why iproute2's `ip` and not netlink from Rust: the `rtnetlink` crate needs an async runtime
//! (tokio) and `netlink-packet-route` changes its message types with every release; `ip` is in
//! every Debian system (priority important), its commands are the documented interface, and its
//! errors ("RTNETLINK answers: File exists") are what an administrator searches for. It costs a
//! few milliseconds: three runs of `ip` per container (see bench/network.sh).

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::netstore::{Lease, NetStore, NetStoreError, NetworkDef, iface_routes};
use super::network::NetworkError;
use super::rootless_net::HolderNs;

/// Where a network's bridge and the host ends of its veth pairs are: the host's network
/// namespace (root), or a rootless network's holder's (see [`super::rootless_net`]), which
/// `ip` enters through its user namespace.
#[derive(Debug)]
pub enum Place {
    Host,
    Holder(HolderNs),
}

impl Place {
    /// Whether interface `name` exists there.
    fn has(&self, name: &str) -> bool {
        match self {
            Place::Host => Path::new("/sys/class/net").join(name).exists(),
            // The holder's network namespace's interfaces, as its /proc shows them.
            Place::Holder(ns) => std::fs::read_to_string(format!("/proc/{}/net/dev", ns.pid))
                .is_ok_and(|dev| {
                    dev.lines().any(|l| {
                        l.trim_start()
                            .strip_prefix(name)
                            .is_some_and(|r| r.starts_with(':'))
                    })
                }),
        }
    }

    /// The user namespace `ip` joins first (a rootless network's U0).
    fn user(&self) -> Option<&std::fs::File> {
        match self {
            Place::Host => None,
            Place::Holder(ns) => Some(&ns.user),
        }
    }

    /// Runs `ip ARGS` there.
    fn ip(&self, args: &[&str]) -> Result<(), NetworkError> {
        match self {
            Place::Host => ip(args, None),
            Place::Holder(ns) => ip_in(args, Some(&ns.user), Some(&ns.net), None),
        }
    }
}

/// A container's place on a named network: its lease is released, and its veth removed if
/// still there, when this is dropped (the container has ended by then).
#[derive(Debug)]
pub struct Attachment {
    store: NetStore,
    network: String,
    container: String,
    veth: String,
    place: Place,
    /// What the host was changed for it, to be said (`ip_forward` turned on).
    note: Option<String>,
    /// Whether the network reaches the outside (see [`outbound`]).
    outbound: bool,
}

impl Attachment {
    /// Whether the container reaches the outside through this network: it then gets the
    /// host's resolvers (see [`super::network::outbound_resolv_conf`]).
    pub fn outbound(&self) -> bool {
        self.outbound
    }

    /// A change made to the host for this network that the user must be told of.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // The veth pair went with the container's network namespace; this is for a container
        // whose namespace outlives it (a process it left behind in it).
        if self.place.has(&self.veth) {
            let _ = self.place.ip(&["link", "del", &self.veth]);
        }
        let _ = self.store.release(&self.network, &self.container);
    }
}

/// Who is attached: the container's id, `--name`, hostname and `--add-host` lines.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub hostname: &'a str,
    pub extra_hosts: &'a [(String, std::net::IpAddr)],
}

/// Puts the container whose first process is `pid` (in its own network namespace) on network
/// `network` of the store at `store_root`: an address leased, its hosts file written, the
/// bridge made if needed (at `place`), a veth pair, `eth0` configured.
pub fn attach(
    store_root: &Path,
    network: &str,
    member: &Member<'_>,
    pid: i32,
    place: Place,
) -> Result<(Attachment, Lease), NetworkError> {
    // The container's init makes its network namespace first thing: until it has, `pid`'s
    // is the host's, where `eth0` must never be made or configured.
    super::network::wait_for_own_netns(pid)?;
    let store = NetStore::new(store_root);
    let start = super::state::process_start_time(pid)
        .ok_or_else(|| NetworkError::Named("the container's first process is gone".into()))?;
    let want = Lease {
        container: member.id.to_string(),
        name: member.name.map(String::from),
        hostname: member.hostname.to_string(),
        ip: Ipv4Addr::UNSPECIFIED,
        mac: String::new(),
        pid,
        start,
        extra_hosts: member.extra_hosts.to_vec(),
    };
    let (def, lease, note) = {
        let _lock = store.lock().map_err(named)?;
        let (def, lease) = store.acquire(network, want).map_err(named)?;
        // Under the lock: two first containers must not both make the bridge.
        match prepare(&place, &def) {
            Ok(note) => (def, lease, note),
            Err(e) => {
                drop(_lock);
                let _ = store.release(network, member.id);
                return Err(e);
            }
        }
    };
    let attachment = Attachment {
        store,
        network: network.to_string(),
        container: member.id.to_string(),
        veth: veth_name(member.id),
        outbound: outbound(&place, &def),
        place,
        note,
    };
    plug(&attachment.place, &def, &lease, &attachment.veth, pid)?;
    Ok((attachment, lease))
}

fn named(e: NetStoreError) -> NetworkError {
    NetworkError::Named(e.to_string())
}

/// Whether network `def`'s containers at `place` get a way out (a gateway and a default
/// route): unless `--internal`, root's networks, and a rootless one whose holder has its
/// slirp4netns uplink.
pub fn outbound(place: &Place, def: &NetworkDef) -> bool {
    !def.internal
        && match place {
            Place::Host => true,
            Place::Holder(ns) => ns.uplink,
        }
}

/// The network's side at `place`, made or checked: its bridge; for an outbound network the
/// gateway address, and in the host `ip_forward` (the note says if rsafe turned it on); its
/// nftables rules. In a holder's namespace N0 (where the user is root through U0) the rules
/// go out through its slirp4netns ([`super::nat::ensure_in`]), and forwarding was set there
/// by the holder; an internal rootless network has nothing to forward to and gets no rules.
/// Call holding the store's lock.
fn prepare(place: &Place, def: &NetworkDef) -> Result<Option<String>, NetworkError> {
    ensure_bridge(place, &def.network_interface)?;
    if let Place::Holder(ns) = place {
        if outbound(place, def) {
            ensure_gateway(place, def)?;
            let uplink = super::nat::Uplink {
                dev: super::rootless_net::UPLINK.to_string(),
                user_net: super::rootless_net::UPLINK_NET.to_string(),
                host: super::nat::host_addresses().map_err(nat)?,
            };
            super::nat::ensure_in(def, ns, &uplink).map_err(nat)?;
        }
        return Ok(None);
    }
    let mut note = None;
    if outbound(place, def) {
        ensure_gateway(place, def)?;
        if super::nat::ensure_ip_forward().map_err(nat)? {
            note = Some(super::nat::ip_forward_note(&def.name));
        }
    }
    super::nat::ensure(def).map_err(nat)?;
    Ok(note)
}

fn nat(e: super::nat::NatError) -> NetworkError {
    NetworkError::Named(e.to_string())
}

/// The host end's name: `rsv` and the container id's first 11 characters (15 at most).
fn veth_name(id: &str) -> String {
    format!("rsv{}", id.chars().take(11).collect::<String>())
}

/// Makes the bridge `name` at `place` unless it exists: no IPv6 (so no link-local address the
/// containers could reach the host by), no ARP answers for the host's addresses, then up. (A
/// holder's network namespace has both for every interface: see [`super::rootless_net`].)
pub fn ensure_bridge(place: &Place, name: &str) -> Result<(), NetworkError> {
    if place.has(name) {
        return Ok(());
    }
    place.ip(&["link", "add", "name", name, "type", "bridge"])?;
    if let Place::Host = place {
        sysctl(&format!("net/ipv6/conf/{name}/disable_ipv6"), "1")?;
        sysctl(&format!("net/ipv4/conf/{name}/arp_ignore"), "8")?;
    }
    place.ip(&["link", "set", name, "up"])
}

/// Gives an outbound network's bridge its gateway address, unless it has it (its subnet's route
/// is on it), and has it answer ARP for that address only. Refused if another interface has a
/// route into the subnet (another store's network, made after this one was; in a holder's
/// namespace, slirp4netns's 10.0.2.0/24): the host would send the containers' replies there.
/// (A holder's interfaces answer ARP for their own addresses only already.)
fn ensure_gateway(place: &Place, def: &NetworkDef) -> Result<(), NetworkError> {
    let br = &def.network_interface;
    let subnet = def.subnet();
    let table = match place {
        Place::Host => "/proc/net/route".to_string(),
        Place::Holder(ns) => format!("/proc/{}/net/route", ns.pid),
    };
    let routes = std::fs::read_to_string(&table).map_err(|e| io_err(&table, e))?;
    let routes = iface_routes(&routes);
    if routes.iter().any(|(dev, r)| dev == br && *r == subnet) {
        return Ok(());
    }
    if let Some((dev, r)) = routes
        .iter()
        .find(|(dev, r)| dev != br && r.overlaps(subnet))
    {
        return Err(NetworkError::Named(format!(
            "network {}: its subnet {subnet} overlaps the host's route to {r} on {dev} (another network? rsafe network create --subnet)",
            def.name
        )));
    }
    if let Place::Host = place {
        sysctl(&format!("net/ipv4/conf/{br}/arp_ignore"), "1")?;
    }
    let gateway = format!("{}/{}", subnet.gateway(), subnet.prefix);
    place.ip(&["addr", "replace", &gateway, "dev", br])
}

/// Removes the bridge `name` if it is there (`rsafe network rm`).
pub fn remove_bridge(name: &str) -> Result<(), NetworkError> {
    if name.is_empty() || !Path::new("/sys/class/net").join(name).exists() {
        return Ok(());
    }
    ip(&["link", "del", name], None)
}

/// The veth pair, its host end on the bridge (without IPv6, like the bridge), the container's
/// end `eth0` with the lease's address and MAC.
fn plug(
    place: &Place,
    def: &NetworkDef,
    lease: &Lease,
    veth: &str,
    pid: i32,
) -> Result<(), NetworkError> {
    let pid_s = pid.to_string();
    place.ip(&[
        "link", "add", "name", veth, "type", "veth", "peer", "name", "eth0", "address", &lease.mac,
        "netns", &pid_s,
    ])?;
    if let Place::Host = place {
        sysctl(&format!("net/ipv6/conf/{veth}/disable_ipv6"), "1")?;
    }
    place.ip(&["link", "set", veth, "master", &def.network_interface, "up"])?;
    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| io_err("the container's network namespace", e))?;
    let addr = format!("{}/{}", lease.ip, def.subnet().prefix);
    let mut script = format!("addr add {addr} dev eth0\nlink set eth0 up\nlink set lo up\n");
    if outbound(place, def) {
        script.push_str(&format!(
            "route add default via {} dev eth0\n",
            def.subnet().gateway()
        ));
    }
    ip_in(&["-batch", "-"], place.user(), Some(&netns), Some(script))
}

fn io_err(what: &str, source: io::Error) -> NetworkError {
    NetworkError::Io {
        what: what.to_string(),
        source,
    }
}

/// Writes `value` to `/proc/sys/<key>` (the host's network namespace).
fn sysctl(key: &str, value: &str) -> Result<(), NetworkError> {
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).map_err(|e| io_err(&path, e))
}

/// Runs `ip ARGS`; with `inside`, in that network namespace and with the script on stdin.
/// Its error line becomes the error.
fn ip(args: &[&str], inside: Option<(&std::fs::File, String)>) -> Result<(), NetworkError> {
    match inside {
        Some((netns, script)) => ip_in(args, None, Some(netns), Some(script)),
        None => ip_in(args, None, None, None),
    }
}

/// Runs `ip ARGS` in user namespace `user` (if any: a rootless network's U0, where the caller
/// has the capabilities `ip` needs), then network namespace `net`, with `script` on stdin.
fn ip_in(
    args: &[&str],
    user: Option<&std::fs::File>,
    net: Option<&std::fs::File>,
    script: Option<String>,
) -> Result<(), NetworkError> {
    let mut cmd = Command::new("ip");
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let joins = [
        user.map(|f| (f.as_raw_fd(), libc::CLONE_NEWUSER)),
        net.map(|f| (f.as_raw_fd(), libc::CLONE_NEWNET)),
    ];
    if joins.iter().any(Option::is_some) {
        // SAFETY: between fork and exec only setns, an async-signal-safe system call, on fds
        // this process keeps open until the child has run (the forked child has one thread,
        // as joining a user namespace asks).
        unsafe {
            cmd.pre_exec(move || {
                for (fd, kind) in joins.iter().flatten() {
                    if libc::setns(*fd, *kind) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(NetworkError::Named(
                "ip (iproute2) is not installed: apt-get install iproute2".into(),
            ));
        }
        Err(e) => return Err(io_err("run ip", e)),
    };
    if let (Some(mut stdin), Some(script)) = (child.stdin.take(), &script) {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| io_err("ip -batch", e))?;
    }
    let out = child.wait_with_output().map_err(|e| io_err("ip", e))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let line = said
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed");
    Err(NetworkError::Named(format!(
        "ip {}: {line}",
        args.join(" ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_keep_their_interface() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            rsafe0123456789\t0000590A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let routes: Vec<(String, String)> = iface_routes(table)
            .into_iter()
            .map(|(dev, r)| (dev, r.to_string()))
            .collect();
        assert_eq!(
            routes,
            [("rsafe0123456789".to_string(), "10.89.0.0/24".to_string())]
        );
    }

    #[test]
    fn veth_names_fit_the_kernels_15_characters() {
        let id = "0123456789abcdef".repeat(4);
        assert_eq!(veth_name(&id), "rsv0123456789a");
        assert!(veth_name(&id).len() <= 15);
    }
}
