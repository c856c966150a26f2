//! `--network container:NAME`: a container made inside another running container's user and
//! network namespaces, as a pod's sidecar is (it reaches the other's services on 127.0.0.1).
//!
//! ```text
//! rsafe run (host namespaces)       joiner (a fork)                   container init
//! open NAME's user + net namespaces
//! (as `rsafe exec` does)
//! fork ───────────────────────────▶ setns(user), setns(net)
//!                                   clone(CLONE_PARENT|NEWNS|NEWPID|
//!                                         NEWIPC|NEWUTS) ───────────▶ (rsafe's child)
//!   ◀── its pid ────────────────────  _exit
//! reap the joiner; no uid_map to write: the namespace's map is NAME's
//! ```
//!
//! Why the user namespace too, and not the network namespace alone: joining a network
//! namespace takes `CAP_SYS_ADMIN` in the user namespace that owns it. A container's own user
//! namespace is a sibling of NAME's and holds nothing over it, and a rootless rsafe has that
//! capability in NAME's user namespace only from inside it. Sharing it is what rootless podman
//! does for every container; it also lets the new container mount its `/sys` (the kernel asks
//! for the network namespace's owner) and bind ports below 1024. The new container has NAME's
//! id map; its mount, pid, ipc and uts namespaces are its own.
//!
//! When NAME stops, the network namespace stays while the new container is in it (the kernel
//! frees a namespace with its last process): 127.0.0.1 between them is gone with NAME's
//! services, and so is the user-mode network (slirp4netns ends with NAME's rsafe).

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::{CloneFlags, setns};
use nix::unistd::Pid;

use super::enter::Joined;
use super::spec::{NetworkMode, Spec};

/// Creates the container's first process in `joined`'s user and network namespaces and in
/// new ones of the kinds in `flags` (which must not include `CLONE_NEWUSER`). It is this
/// process's child, as [`super::sys::clone_process`] makes it. Call with rsafe
/// single-threaded.
pub fn clone_into(
    joined: &Joined,
    flags: libc::c_int,
    main: Box<dyn FnOnce() -> i32>,
) -> io::Result<Pid> {
    // User first: it gives the capabilities the network namespace asks for.
    let join = || {
        setns(joined.user.as_fd(), CloneFlags::CLONE_NEWUSER)
            .map_err(|e| format!("join its user namespace: {e}"))?;
        match &joined.net {
            Some(net) => join_net(net).map_err(|e| format!("join its network namespace: {e}")),
            None => Ok(()),
        }
    };
    super::helper::clone_after(join, flags & !libc::CLONE_NEWUSER, main)
}

fn join_net(net: &OwnedFd) -> nix::Result<()> {
    setns(net.as_fd(), CloneFlags::CLONE_NEWNET)
}

/// The spec a container joining `joined` runs with: see [`pod_spec_of`].
pub fn pod_spec(spec: &Spec, joined: &Joined) -> Result<Spec, String> {
    pod_spec_of(
        spec,
        &joined.spec,
        &joined.hostname,
        joined.state.name.as_deref(),
    )
}

/// `spec` joining the network of the container `owner` (its hostname and name): the other's
/// network mode (so `/etc/resolv.conf` is the one the other has, and `/etc/hosts` gives this
/// one's hostname the other's address), and `/etc/hosts` naming the other (hostname and name)
/// at that address, then the other's `--add-host` lines and this one's. Its hostname stays its
/// own, as podman keeps it (the uts namespace is not shared). `Err` says why it cannot join.
fn pod_spec_of(
    spec: &Spec,
    owner: &Spec,
    hostname: &str,
    name: Option<&str>,
) -> Result<Spec, String> {
    let addr = match owner.network {
        NetworkMode::Slirp4netns => IpAddr::V4(super::network::CONTAINER_ADDR),
        NetworkMode::None => IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1)),
        NetworkMode::Host => {
            return Err("it uses the host's network (use --network host)".to_string());
        }
    };
    let mut out = spec.clone();
    out.network = owner.network;
    if spec.net.dns.is_empty() && spec.net.dns_search.is_empty() {
        out.net.dns = owner.net.dns.clone();
        out.net.dns_search = owner.net.dns_search.clone();
        // A named network's server lives in the namespace joined (super::dns).
        if owner.net.named.is_some() {
            out.net.dns = vec![IpAddr::V4(super::dns::ADDR)];
        }
    }
    let mut hosts = vec![(hostname.to_string(), addr)];
    if let Some(name) = name.filter(|n| *n != hostname) {
        hosts.push((name.to_string(), addr));
    }
    hosts.extend(owner.net.hosts.iter().cloned());
    hosts.extend(spec.net.hosts.iter().cloned());
    out.net.hosts = hosts;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::policy::Policy;
    use crate::runtime::spec::{Confinement, Limits, ProcessSpec, RootfsSpec};

    fn spec(network: NetworkMode, dns: &[&str], hosts: &[(&str, &str)]) -> Spec {
        let policy = Policy::default_policy();
        let mut spec = Spec {
            rootfs: RootfsSpec {
                lowers: vec!["/layers/a".into()],
                read_only: false,
            },
            process: ProcessSpec {
                args: vec!["true".into()],
                env: Vec::new(),
                cwd: "/".into(),
                user: None,
                terminal: false,
                stdin: false,
            },
            hostname: None,
            mounts: Vec::new(),
            network,
            net: Default::default(),
            limits: Limits {
                memory: None,
                pids: None,
                cpus: None,
            },
            pids_limit_from_policy: false,
            init: true,
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            confinement: Confinement::from_policy(&policy, false),
            options: Default::default(),
        };
        spec.net.dns = dns.iter().map(|d| d.parse().unwrap()).collect();
        spec.net.hosts = hosts
            .iter()
            .map(|(n, ip)| (n.to_string(), ip.parse().unwrap()))
            .collect();
        spec
    }

    #[test]
    fn a_joiner_sees_the_owners_network_files_and_names() {
        let owner = spec(NetworkMode::Slirp4netns, &[], &[("db", "192.0.2.20")]);
        let side = spec(NetworkMode::None, &[], &[("cache", "192.0.2.30")]);
        let pod = pod_spec_of(&side, &owner, "apphost", Some("app")).unwrap();
        assert_eq!(pod.network, NetworkMode::Slirp4netns);
        let hosts: Vec<String> = pod
            .net
            .hosts
            .iter()
            .map(|(n, ip)| format!("{ip} {n}"))
            .collect();
        assert_eq!(
            hosts,
            [
                "10.0.2.100 apphost",
                "10.0.2.100 app",
                "192.0.2.20 db",
                "192.0.2.30 cache"
            ]
        );
        assert_eq!(pod.hostname, None, "the joiner keeps its own hostname");
        // The owner's --dns unless the joiner gives its own; its name once when it is the
        // hostname; an owner on loopback only is named at 127.0.1.1, as its own hosts file says.
        let owner = spec(NetworkMode::None, &["192.0.2.53"], &[]);
        let pod = pod_spec_of(&side, &owner, "app", Some("app")).unwrap();
        assert_eq!(pod.net.dns, owner.net.dns);
        let first: (String, IpAddr) = ("app".into(), "127.0.1.1".parse().unwrap());
        assert_eq!(pod.net.hosts[..2], [first, side.net.hosts[0].clone()]);
        let own_dns = spec(NetworkMode::None, &["192.0.2.54"], &[]);
        let pod = pod_spec_of(&own_dns, &owner, "app", None).unwrap();
        assert_eq!(pod.net.dns, own_dns.net.dns);
        // An owner on a named network: the server in its namespace, whatever its --dns (which
        // are that server's upstreams), unless the joiner names its own.
        let mut named = spec(NetworkMode::None, &["192.0.2.53"], &[]);
        named.net.named = Some("front".into());
        let pod = pod_spec_of(&side, &named, "app", None).unwrap();
        assert_eq!(pod.net.dns, ["127.0.0.11".parse::<IpAddr>().unwrap()]);
        let pod = pod_spec_of(&own_dns, &named, "app", None).unwrap();
        assert_eq!(pod.net.dns, own_dns.net.dns);
        let host = spec(NetworkMode::Host, &[], &[]);
        let err = pod_spec_of(&side, &host, "h", None).unwrap_err();
        assert!(err.contains("host's network"), "{err}");
    }
}
