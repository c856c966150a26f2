//! Named networks on disk: what `rsafe network create|ls|rm|inspect` manage, and the address
//! leases and `/etc/hosts` files of the containers on them (`run --network NAME`).
//!
//! ```text
//! <store>/networks/.lock               flock: every change below is made holding it
//! <store>/networks/NAME.json           the network: subnet, gateway, bridge (podman's shape)
//! <store>/networks/NAME/leases/IP      one running container's address: id, names, its pid
//! <store>/networks/NAME/hosts/ID       that container's /etc/hosts (bound read-only into it)
//! <store>/networks/NAME/holder         rootless: the network's holder process and namespaces
//! ```
//!
//! A rootless network's holder ([`super::rootless_net`]) is recorded with the identities of
//! its namespaces, not only its pid: a pid is reused after a kill -9, a namespace's inode is
//! not while anything still refers to it.
//!
//! A lease names the container's first process (pid and start time): a lease whose process is
//! gone (rsafe killed with -9, the host rebooted) is stale, and is removed, with its hosts file,
//! by the next `run` on the network and by every `network` command. Addresses are therefore
//! never lost, and nothing is kept for a stopped container (podman frees them on stop too).
//!
//! Names: every container's hosts file lists all the network's running containers (name,
//! hostname, short id) and is rewritten in place whenever one starts or ends, so a container
//! started later is seen by earlier ones, holding the file's `flock` exclusively (a reader
//! taking it shared, as [`read_hosts`] does, never sees the new bytes over the old tail). The
//! same file is what the name server in each container's namespace ([`super::dns`]) answers
//! from, read at each query under that lock: libc's
//! `getaddrinfo` finds a name in the file, a resolver that asks DNS directly (`nslookup`, musl
//! with search domains, c-ares) finds it at 127.0.0.11.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// What can go wrong with a named network.
#[derive(Debug, thiserror::Error)]
pub enum NetStoreError {
    #[error("{0:?} is not a valid network name: letters, digits, and _ . - after the first")]
    BadName(String),
    #[error("{name:?} is reserved (it is a --network mode)")]
    Reserved { name: String },
    #[error("--subnet {subnet:?}: {problem}")]
    BadSubnet { subnet: String, problem: String },
    #[error("network {0} already exists")]
    Exists(String),
    #[error("network {0} not found (rsafe network create {0})")]
    NotFound(String),
    #[error("network {name} is in use by container {container} (stop it first)")]
    InUse { name: String, container: String },
    #[error("network {0}: no free address left in its subnet")]
    Full(String),
    #[error("no free 10.89.N.0/24 subnet: give one with --subnet")]
    NoSubnet,
    #[error("{path}: {problem}")]
    Corrupt { path: PathBuf, problem: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

type Result<T> = std::result::Result<T, NetStoreError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> NetStoreError + '_ {
    move |source| NetStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An IPv4 subnet, `10.89.0.0/24`: networks are IPv4 only (as podman's are by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    fn mask(self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// Whether the two share an address.
    pub fn overlaps(self, other: Subnet) -> bool {
        let mask = self.mask() & other.mask();
        u32::from(self.addr) & mask == u32::from(other.addr) & mask
    }

    /// The `n`th address of the subnet (0 is the network's own).
    pub fn nth(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + n)
    }

    /// How many addresses it has, the network's and the broadcast one included.
    pub fn size(self) -> u32 {
        (!self.mask()).wrapping_add(1)
    }

    /// The gateway podman gives a subnet: its first address. Reserved, never leased.
    pub fn gateway(self) -> Ipv4Addr {
        self.nth(1)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Subnet {
    type Err = NetStoreError;

    /// `A.B.C.D/N`, N from 8 to 30 (room for a gateway and a container), host bits zero.
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = |problem: &str| NetStoreError::BadSubnet {
            subnet: s.to_string(),
            problem: problem.to_string(),
        };
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| bad("expected an IPv4 CIDR such as 10.89.7.0/24"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| bad("not an IPv4 address (named networks are IPv4)"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| bad("the prefix length is 8 to 30"))?;
        let subnet = Subnet { addr, prefix };
        let network = Ipv4Addr::from(u32::from(addr) & subnet.mask());
        if network != addr {
            return Err(bad(&format!(
                "host bits are set (did you mean {network}/{prefix}?)"
            )));
        }
        if addr.is_loopback() || addr.is_multicast() || addr.is_unspecified() {
            return Err(bad("not a unicast network"));
        }
        Ok(subnet)
    }
}

impl serde::Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Subnet, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One subnet of a network, as `podman network inspect` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SubnetEntry {
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
}

/// A named network, saved as `NAME.json` in the shape of `podman network inspect`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetworkDef {
    pub name: String,
    pub id: String,
    pub driver: String,
    /// The host's bridge for it (made on first use by root).
    pub network_interface: String,
    pub created: String,
    pub subnets: Vec<SubnetEntry>,
    pub ipv6_enabled: bool,
    /// podman's `--internal`: no traffic leaves the bridge (no gateway address, no default
    /// route, no masquerade). Otherwise containers reach the outside through the host (see
    /// [`super::nat`]). Networks made before rsafe had outbound traffic say true, and stay so;
    /// so do a rootless user's, whose holder namespace has no way out ([`super::rootless_net`]).
    #[serde(default)]
    pub internal: bool,
    /// True: names are served by a DNS server ([`super::dns`], in each container's own
    /// namespace) besides the hosts files. Networks made before it say false, and get the
    /// server too.
    pub dns_enabled: bool,
}

impl NetworkDef {
    /// Its (one) subnet.
    pub fn subnet(&self) -> Subnet {
        self.subnets[0].subnet
    }
}

/// A running container's address on a network.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Lease {
    pub container: String,
    pub name: Option<String>,
    pub hostname: String,
    pub ip: Ipv4Addr,
    pub mac: String,
    /// The container's first process (host pid, start time): the lease lives as long as it.
    pub pid: i32,
    pub start: u64,
    /// The container's own `--add-host` lines, kept in its hosts file.
    #[serde(default)]
    pub extra_hosts: Vec<(String, IpAddr)>,
}

impl Lease {
    /// Whether the container it was made for still runs.
    pub fn is_live(&self) -> bool {
        super::state::process_alive(self.pid, self.start)
    }
}

/// A rootless network's holder: the process whose user namespace (U0) and network namespace
/// (N0, with the bridge) the user's containers on the network are made under, and the id map
/// U0 was given (host ids), through which a container's map is written.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HolderRecord {
    pub pid: i32,
    pub start: u64,
    /// The `nsfs` inodes of its user and network namespaces.
    pub user_ns: u64,
    pub net_ns: u64,
    pub uids: Vec<super::idmap::IdRange>,
    pub gids: Vec<super::idmap::IdRange>,
    /// Its slirp4netns (pid, start time) when the network reaches the outside: it ends with the
    /// holder (see [`super::rootless_net`]); a holder without it is replaced.
    #[serde(default)]
    pub uplink: Option<(i32, u64)>,
}

/// Docker's (pre-25) MAC for an address: 02:42 and the four bytes of the IPv4 address; locally
/// administered, unique on the network as the address is.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// Names `run --network` takes for itself: never a network's name.
const RESERVED: &[&str] = &[
    "none",
    "host",
    "slirp4netns",
    "pasta",
    "bridge",
    "private",
    "default",
];

/// podman's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 64 characters, and no `--network`
/// mode's name.
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 64;
    if !valid {
        return Err(NetStoreError::BadName(name.to_string()));
    }
    if RESERVED.contains(&name) {
        return Err(NetStoreError::Reserved {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// The networks of one store.
#[derive(Debug, Clone)]
pub struct NetStore {
    dir: PathBuf,
}

/// The store's network lock, held while it lives.
#[derive(Debug)]
pub struct NetLock {
    _file: std::fs::File,
}

impl NetStore {
    /// The networks of the store at `store_root` (nothing is created until needed).
    pub fn new(store_root: &Path) -> NetStore {
        NetStore {
            dir: store_root.join("networks"),
        }
    }

    /// Takes the networks' exclusive lock, creating the directory (searchable by a container's
    /// root, which binds its hosts file from under it).
    pub fn lock(&self) -> Result<NetLock> {
        make_dir(&self.dir)?;
        let path = self.dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.lock().map_err(io_err(&path))?;
        Ok(NetLock { _file: file })
    }

    fn def_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn leases_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("leases")
    }

    /// Where container `id`'s hosts file on network `name` is.
    pub fn hosts_path(&self, name: &str, id: &str) -> PathBuf {
        self.dir.join(name).join("hosts").join(id)
    }

    fn holder_path(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("holder")
    }

    /// Network `name`'s recorded holder (rootless), alive or not. Call holding the lock.
    pub fn holder(&self, name: &str) -> Result<Option<HolderRecord>> {
        let path = self.holder_path(name);
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            other => other.map_err(io_err(&path))?,
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| NetStoreError::Corrupt {
                path,
                problem: e.to_string(),
            })
    }

    /// Records network `name`'s holder. Call holding the lock.
    pub fn set_holder(&self, name: &str, record: &HolderRecord) -> Result<()> {
        make_dir(&self.dir.join(name))?;
        let path = self.holder_path(name);
        let json = serde_json::to_vec(record).map_err(|e| NetStoreError::Corrupt {
            path: path.clone(),
            problem: e.to_string(),
        })?;
        write_atomic(&path, &json)
    }

    /// Network `name`.
    pub fn get(&self, name: &str) -> Result<NetworkDef> {
        check_name(name)?;
        let path = self.def_path(name);
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(NetStoreError::NotFound(name.to_string()));
            }
            other => other.map_err(io_err(&path))?,
        };
        serde_json::from_str(&text).map_err(|e| NetStoreError::Corrupt {
            path,
            problem: e.to_string(),
        })
    }

    /// Every network, by name.
    pub fn list(&self) -> Result<Vec<NetworkDef>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.map_err(io_err(&self.dir))?,
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir))?;
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".json")) else {
                continue;
            };
            if check_name(name).is_ok() {
                out.push(self.get(name)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates network `name` on `subnet` (default: the first 10.89.N.0/24 free of the other
    /// networks and of the host's routes), with a bridge named after its id; its containers
    /// reach the outside (see [`create_with`](Self::create_with)).
    pub fn create(&self, name: &str, subnet: Option<Subnet>) -> Result<NetworkDef> {
        self.create_with(name, subnet, false)
    }

    /// [`create`](Self::create), `internal` (podman's `--internal`) or not.
    pub fn create_with(
        &self,
        name: &str,
        subnet: Option<Subnet>,
        internal: bool,
    ) -> Result<NetworkDef> {
        check_name(name)?;
        let _lock = self.lock()?;
        if self.def_path(name).exists() {
            return Err(NetStoreError::Exists(name.to_string()));
        }
        let others = self.list()?;
        let routes = host_routes();
        let taken = |s: Subnet| {
            others
                .iter()
                .find(|n| n.subnet().overlaps(s))
                .map(|n| format!("network {}", n.name))
                .or_else(|| {
                    routes
                        .iter()
                        .find(|r| r.overlaps(s))
                        .map(|r| format!("the host's route to {r}"))
                })
        };
        let subnet = match subnet {
            Some(s) => match taken(s) {
                Some(by) => {
                    return Err(NetStoreError::BadSubnet {
                        subnet: s.to_string(),
                        problem: format!("overlaps {by}"),
                    });
                }
                None => s,
            },
            None => (0..=255u8)
                .map(|n| Subnet {
                    addr: Ipv4Addr::new(10, 89, n, 0),
                    prefix: 24,
                })
                .find(|s| taken(*s).is_none())
                .ok_or(NetStoreError::NoSubnet)?,
        };
        let id = network_id(name);
        // Named after the id, not numbered: two stores on one host (`--root`) never pick the
        // same bridge, which would join their containers.
        let bridge = format!("rsafe{}", &id[..10]);
        let def = NetworkDef {
            name: name.to_string(),
            id,
            driver: "bridge".to_string(),
            network_interface: bridge,
            created: super::clock::rfc3339(std::time::SystemTime::now()),
            subnets: vec![SubnetEntry {
                subnet,
                gateway: subnet.gateway(),
            }],
            ipv6_enabled: false,
            internal,
            dns_enabled: true,
        };
        let json = serde_json::to_vec_pretty(&def).map_err(|e| NetStoreError::Corrupt {
            path: self.def_path(name),
            problem: e.to_string(),
        })?;
        write_atomic(&self.def_path(name), &json)?;
        Ok(def)
    }

    /// Removes network `name`, refused while a running container is on it; returns it and its
    /// recorded holder (its bridge, or its holder, is for the caller to remove). Stale leases
    /// go first.
    pub fn remove(&self, name: &str) -> Result<(NetworkDef, Option<HolderRecord>)> {
        let _lock = self.lock()?;
        let def = self.get(name)?;
        let holder = self.holder(name)?;
        let live = self.reclaim(name)?;
        if let Some(lease) = live.first() {
            return Err(NetStoreError::InUse {
                name: name.to_string(),
                container: lease
                    .name
                    .clone()
                    .unwrap_or_else(|| short(&lease.container)),
            });
        }
        let dir = self.dir.join(name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&dir)(e)),
            _ => {}
        }
        let path = self.def_path(name);
        std::fs::remove_file(&path).map_err(io_err(&path))?;
        Ok((def, holder))
    }

    /// The running containers on network `name`, after removing the leases (and hosts files)
    /// of those that are gone. Call holding the lock.
    pub fn reclaim(&self, name: &str) -> Result<Vec<Lease>> {
        let (live, stale): (Vec<Lease>, Vec<Lease>) =
            self.leases(name)?.into_iter().partition(Lease::is_live);
        for lease in &stale {
            self.drop_lease(name, lease)?;
        }
        if !stale.is_empty() {
            self.write_hosts_files(name, &live)?;
        }
        Ok(live)
    }

    /// [`reclaim`](Self::reclaim) on every network: the leases and hosts-file lines a killed
    /// rsafe left go as soon as `rsafe ps -a` or `rm` looks, not at the next use of the network.
    pub fn reclaim_all(&self) -> Result<()> {
        if !self.dir.is_dir() {
            return Ok(());
        }
        let _lock = self.lock()?;
        for def in self.list()? {
            self.reclaim(&def.name)?;
        }
        Ok(())
    }

    /// The leases of network `name`, live or not, by address.
    fn leases(&self, name: &str) -> Result<Vec<Lease>> {
        let dir = self.leases_dir(name);
        let entries = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.map_err(io_err(&dir))?,
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(io_err(&dir))?.path();
            let named_by_ip = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.parse::<Ipv4Addr>().is_ok());
            if !named_by_ip {
                continue; // a temporary file of write_atomic
            }
            let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
            let lease: Lease = serde_json::from_str(&text).map_err(|e| NetStoreError::Corrupt {
                path: path.clone(),
                problem: e.to_string(),
            })?;
            out.push(lease);
        }
        out.sort_by_key(|l| l.ip);
        Ok(out)
    }

    fn drop_lease(&self, name: &str, lease: &Lease) -> Result<()> {
        let path = self.leases_dir(name).join(lease.ip.to_string());
        remove_if_there(&path)?;
        remove_if_there(&self.hosts_path(name, &lease.container))
    }

    /// Gives container `lease.container` the lowest free address of network `name` (filling in
    /// `lease.ip` and `lease.mac`), creates its hosts file and rewrites the others'. Call
    /// holding the lock.
    pub fn acquire(&self, name: &str, mut lease: Lease) -> Result<(NetworkDef, Lease)> {
        let def = self.get(name)?;
        let mut live = self.reclaim(name)?;
        let subnet = def.subnet();
        let ip = (2..subnet.size() - 1)
            .map(|n| subnet.nth(n))
            .find(|ip| live.iter().all(|l| l.ip != *ip))
            .ok_or_else(|| NetStoreError::Full(name.to_string()))?;
        lease.ip = ip;
        lease.mac = mac_for(ip);
        let dir = self.leases_dir(name);
        make_dir(&dir)?;
        make_dir(&self.dir.join(name).join("hosts"))?;
        let json = serde_json::to_vec(&lease).map_err(|e| NetStoreError::Corrupt {
            path: dir.join(ip.to_string()),
            problem: e.to_string(),
        })?;
        write_atomic(&dir.join(ip.to_string()), &json)?;
        live.push(lease.clone());
        live.sort_by_key(|l| l.ip);
        self.write_hosts_files(name, &live)?;
        Ok((def, lease))
    }

    /// Gives back container `id`'s address on network `name` and takes it out of the others'
    /// hosts files.
    pub fn release(&self, name: &str, id: &str) -> Result<()> {
        let _lock = self.lock()?;
        let all = self.leases(name)?;
        let (mine, others): (Vec<Lease>, Vec<Lease>) =
            all.into_iter().partition(|l| l.container == id);
        for lease in &mine {
            self.drop_lease(name, lease)?;
        }
        let live: Vec<Lease> = others.into_iter().filter(Lease::is_live).collect();
        self.write_hosts_files(name, &live)
    }

    /// Gives container `id` the name `new` in its leases on every network and in the hosts
    /// files of the containers there (which its name server answers from), as docker
    /// updates a renamed container's DNS name. Returns the networks it was on.
    pub fn rename(&self, id: &str, new: &str) -> Result<Vec<String>> {
        if !self.dir.is_dir() {
            return Ok(Vec::new());
        }
        let _lock = self.lock()?;
        let mut renamed = Vec::new();
        for def in self.list()? {
            let mut live = self.reclaim(&def.name)?;
            let Some(lease) = live.iter_mut().find(|l| l.container == id) else {
                continue;
            };
            lease.name = Some(new.to_string());
            let path = self.leases_dir(&def.name).join(lease.ip.to_string());
            let json = serde_json::to_vec(&*lease).map_err(|e| NetStoreError::Corrupt {
                path: path.clone(),
                problem: e.to_string(),
            })?;
            write_atomic(&path, &json)?;
            self.write_hosts_files(&def.name, &live)?;
            renamed.push(def.name);
        }
        Ok(renamed)
    }

    /// Container `id`'s live lease on network `name`, if it runs there.
    pub fn lease_of(&self, name: &str, id: &str) -> Result<Option<Lease>> {
        Ok(self
            .leases(name)?
            .into_iter()
            .find(|l| l.container == id && l.is_live()))
    }

    /// Rewrites, in place, the hosts file of every container in `live`.
    fn write_hosts_files(&self, name: &str, live: &[Lease]) -> Result<()> {
        for lease in live {
            let path = self.hosts_path(name, &lease.container);
            write_in_place(&path, hosts_file(lease, live).as_bytes())?;
        }
        Ok(())
    }
}

/// The subnet of the network whose hosts file is at `hosts` (a path [`NetStore::hosts_path`]
/// gave): what a container's name server keeps to itself ([`super::dns`] never asks the
/// outside for a reverse name inside it).
pub fn subnet_of_hosts(hosts: &Path) -> Result<Subnet> {
    let corrupt = || NetStoreError::Corrupt {
        path: hosts.to_path_buf(),
        problem: "not a network's hosts file".into(),
    };
    let network = hosts.parent().and_then(Path::parent).ok_or_else(corrupt)?;
    let (Some(dir), Some(name)) = (network.parent(), network.file_name()) else {
        return Err(corrupt());
    };
    let store = NetStore {
        dir: dir.to_path_buf(),
    };
    Ok(store.get(&name.to_string_lossy())?.subnet())
}

/// `/etc/hosts` for `me` on a network whose running containers are `live`: localhost, each
/// container's address with its name, hostname and short id (its own first), then its own
/// `--add-host` lines.
pub fn hosts_file(me: &Lease, live: &[Lease]) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let others = live.iter().filter(|l| l.container != me.container);
    for lease in std::iter::once(me).chain(others) {
        let mut names: Vec<String> = Vec::new();
        let candidates = [
            lease.name.clone(),
            Some(lease.hostname.clone()),
            Some(short(&lease.container)),
        ];
        for n in candidates.into_iter().flatten() {
            if !n.is_empty() && !names.contains(&n) {
                names.push(n);
            }
        }
        out.push_str(&format!("{}\t{}\n", lease.ip, names.join(" ")));
    }
    for (host, ip) in &me.extra_hosts {
        out.push_str(&format!("{ip}\t{host}\n"));
    }
    out
}

/// A container id's first 12 characters, as `ps` shows it.
fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// A network's id: sha256 of its name and creation time, hex (podman's ids are 64 hex too).
fn network_id(name: &str) -> String {
    use sha2::Digest;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hex::encode(sha2::Sha256::digest(format!(
        "{name}\0{}\0{}",
        now.as_nanos(),
        std::process::id()
    )))
}

/// The destinations of the host's IPv4 routes (`/proc/net/route`), the default route left out.
pub fn host_routes() -> Vec<Subnet> {
    std::fs::read_to_string("/proc/net/route")
        .map(|t| parse_routes(&t))
        .unwrap_or_default()
}

fn parse_routes(table: &str) -> Vec<Subnet> {
    iface_routes(table).into_iter().map(|(_, s)| s).collect()
}

/// `/proc/net/route`'s text as (interface, destination) pairs, the default route left out.
pub(super) fn iface_routes(table: &str) -> Vec<(String, Subnet)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Destination and Mask are little-endian hex, as the kernel stores them.
            let dest = u32::from_str_radix(fields.get(1)?, 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?.swap_bytes();
            let prefix = u8::try_from(mask.count_ones()).ok()?;
            let subnet = Subnet {
                addr: Ipv4Addr::from(dest),
                prefix,
            };
            (prefix > 0).then(|| (fields[0].to_string(), subnet))
        })
        .collect()
}

fn make_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// Writes `bytes` to a temporary file beside `path` and renames it over: a reader sees the old
/// file or the new one.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// How long a writer of a hosts file waits for its readers to let go of it. Only rsafe's name
/// server reads under the lock, for microseconds; a process in the container may hold a lock
/// on its own `/etc/hosts` for longer, and then gets its file rewritten anyway (it can only
/// spoil its own server's reads).
const HOSTS_WRITE_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// How long the name server waits for a writer to be done (a rewrite takes microseconds).
const HOSTS_READ_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// Rewrites the file at `path` keeping its inode (a bind mount holds it, so a rename would not
/// be seen): new bytes from offset 0, then cut to their length, holding the file's exclusive
/// lock (flock) so that [`read_hosts`] never sees the new bytes over the old tail. Mode 0644:
/// the containers' roots read it.
fn write_in_place(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .open(path)
        .map_err(io_err(path))?;
    lock_within(&file, false, HOSTS_WRITE_WAIT);
    file.write_all_at(bytes, 0).map_err(io_err(path))?;
    file.set_len(bytes.len() as u64).map_err(io_err(path))
}

/// A container's hosts file as rsafe last wrote it, whole: read holding the file's shared
/// lock, which [`write_in_place`] holds exclusively from its first byte to its cut. What the
/// name server answers from, at each query.
pub fn read_hosts(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    lock_within(&file, true, HOSTS_READ_WAIT);
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}

/// Takes `file`'s lock, shared or exclusive, trying until `wait` has passed; whether it did.
/// The lock goes when the file is closed.
fn lock_within(file: &std::fs::File, shared: bool, wait: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let tried = match shared {
            true => file.try_lock_shared(),
            false => file.try_lock(),
        };
        match tried {
            Ok(()) => return true,
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(id: &str, name: Option<&str>, ip: [u8; 4]) -> Lease {
        Lease {
            container: id.to_string(),
            name: name.map(String::from),
            hostname: id[..12].to_string(),
            ip: Ipv4Addr::from(ip),
            mac: mac_for(Ipv4Addr::from(ip)),
            pid: std::process::id() as i32,
            start: super::super::state::process_start_time(std::process::id() as i32).unwrap(),
            extra_hosts: Vec::new(),
        }
    }

    #[test]
    fn subnets_parse_as_podman_takes_them() {
        let s: Subnet = "10.89.3.0/24".parse().unwrap();
        assert_eq!((s.gateway(), s.size()), (Ipv4Addr::new(10, 89, 3, 1), 256));
        assert_eq!(s.to_string(), "10.89.3.0/24");
        for (bad, says) in [
            ("10.89.3.5/24", "did you mean 10.89.3.0/24"),
            ("10.89.3.0", "CIDR"),
            ("10.89.3.0/31", "8 to 30"),
            ("10.89.3.0/x", "8 to 30"),
            ("fd00::/64", "IPv4"),
            ("127.0.0.0/8", "unicast"),
        ] {
            let err = bad.parse::<Subnet>().unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
            assert!(err.starts_with(&format!("--subnet {bad:?}")), "{err}");
        }
        let a: Subnet = "10.0.0.0/8".parse().unwrap();
        assert!(a.overlaps(s) && s.overlaps(a));
        assert!(!s.overlaps("10.89.4.0/24".parse().unwrap()));
    }

    #[test]
    fn names_follow_podmans_rule_and_modes_are_reserved() {
        for good in ["n", "app_net", "a.b-c", "0x"] {
            check_name(good).unwrap();
        }
        for bad in ["", "-x", ".hidden", "a/b", "a b", "lock\n", &"x".repeat(65)] {
            assert!(
                matches!(check_name(bad), Err(NetStoreError::BadName(_))),
                "{bad:?}"
            );
        }
        for mode in ["none", "host", "slirp4netns"] {
            assert!(matches!(
                check_name(mode),
                Err(NetStoreError::Reserved { .. })
            ));
        }
    }

    #[test]
    fn host_routes_come_from_the_kernels_table() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            cni0\t0000580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let routes: Vec<String> = parse_routes(table)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(routes, ["192.0.2.0/24", "10.88.0.0/16"]);
    }

    #[test]
    fn create_picks_free_subnets_and_refuses_overlaps_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = NetStore::new(dir.path());
        let routes = host_routes();
        let a = store.create("a", None).unwrap();
        let b = store.create("b", None).unwrap();
        assert_ne!(a.subnet(), b.subnet());
        assert_ne!(a.network_interface, b.network_interface);
        for net in [&a, &b] {
            assert!(net.subnet().to_string().starts_with("10.89."), "{net:?}");
            assert!(routes.iter().all(|r| !r.overlaps(net.subnet())), "{net:?}");
        }
        assert!(matches!(
            store.create("a", None),
            Err(NetStoreError::Exists(_))
        ));
        let err = store.create("c", Some(a.subnet())).unwrap_err().to_string();
        assert!(err.contains("overlaps network a"), "{err}");
        let names: Vec<String> = store.list().unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(store.get("b").unwrap(), b);
        store.remove("a").unwrap();
        assert!(matches!(store.get("a"), Err(NetStoreError::NotFound(_))));
        assert!(matches!(store.remove("a"), Err(NetStoreError::NotFound(_))));
    }

    /// A definition written before outbound existed says `"internal": true` and stays closed;
    /// one without the field (not rsafe's) is an outbound network.
    #[test]
    fn definitions_keep_loading_with_or_without_internal() {
        let dir = tempfile::tempdir().unwrap();
        let store = NetStore::new(dir.path());
        let made = store.create_with("old", None, true).unwrap();
        let path = dir.path().join("networks/old.json");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"internal\": true"), "{text}");
        assert_eq!(store.get("old").unwrap(), made);
        let without: String = text
            .lines()
            .filter(|l| !l.contains("\"internal\""))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&path, without).unwrap();
        let loaded = store.get("old").unwrap();
        assert!(!loaded.internal);
        assert_eq!(loaded.subnets, made.subnets);
    }

    /// A writer rewriting a hosts file in place, as fast as it can, between a longer and a
    /// shorter text (a container coming and going before the stable ones), while readers
    /// read it: every read is one of the two whole. (Two unlocked reads that agree do not
    /// suffice: a read between the new bytes and the cut sees them over the old tail, and
    /// keeps seeing it; in a probe 10 % of such pairs agreed on a mix.)
    #[test]
    fn a_hosts_file_rewritten_in_place_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        let long = "127.0.0.1\tlocalhost\n10.89.0.3\ttransient 3f2a9c1b7d4e\n\
                    10.89.0.2\tweb 9b1c2d3e4f5a\n10.89.0.14\tdb 1234567890ab\n";
        let short = "127.0.0.1\tlocalhost\n10.89.0.2\tweb 9b1c2d3e4f5a\n\
                     10.89.0.14\tdb 1234567890ab\n";
        write_in_place(&path, long.as_bytes()).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let reads = std::thread::scope(|s| {
            let writer = s.spawn(|| {
                let mut writes = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for text in [short, long] {
                        write_in_place(&path, text.as_bytes()).unwrap();
                        writes += 1;
                    }
                }
                writes
            });
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut seen = [0usize; 2];
                        for _ in 0..20_000 {
                            let text = read_hosts(&path).unwrap();
                            assert!(text == long || text == short, "a mixed read: {text:?}");
                            seen[usize::from(text == short)] += 1;
                        }
                        seen
                    })
                })
                .collect();
            let seen: Vec<[usize; 2]> = readers
                .into_iter()
                .map(|r| {
                    // A reader's failure stops the writer too: the scope would wait for it.
                    r.join().unwrap_or_else(|e| {
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                        std::panic::resume_unwind(e)
                    })
                })
                .collect();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(writer.join().unwrap() > 100, "the writer kept writing");
            seen
        });
        // Both texts were seen: the reads did overlap the rewrites.
        let (longs, shorts): (usize, usize) = reads
            .iter()
            .map(|s| (s[0], s[1]))
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
        assert!(longs > 0 && shorts > 0, "{longs} long, {shorts} short");
    }

    #[test]
    fn leases_take_the_lowest_free_address_and_stale_ones_are_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let store = NetStore::new(dir.path());
        store
            .create("n", Some("10.99.0.0/29".parse().unwrap()))
            .unwrap();
        let _lock = store.lock().unwrap();
        let id = |c: char| c.to_string().repeat(64);
        let (_, one) = store
            .acquire("n", lease(&id('a'), Some("web"), [0; 4]))
            .unwrap();
        let (_, two) = store.acquire("n", lease(&id('b'), None, [0; 4])).unwrap();
        assert_eq!(
            (one.ip, two.ip),
            (Ipv4Addr::new(10, 99, 0, 2), Ipv4Addr::new(10, 99, 0, 3))
        );
        assert_eq!(two.mac, "02:42:0a:63:00:03");
        // The first container's hosts file, written before the second came, now names it.
        let hosts = std::fs::read_to_string(store.hosts_path("n", &id('a'))).unwrap();
        assert_eq!(
            hosts,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             10.99.0.2\tweb aaaaaaaaaaaa\n10.99.0.3\tbbbbbbbbbbbb\n"
        );
        // Its name server finds the network's subnet from the file's path.
        assert_eq!(
            subnet_of_hosts(&store.hosts_path("n", &id('a'))).unwrap(),
            "10.99.0.0/29".parse().unwrap()
        );
        assert!(subnet_of_hosts(Path::new("hosts")).is_err());
        // A lease whose process is gone (a killed rsafe) is reclaimed by the next one.
        let mut dead = lease(&id('c'), Some("gone"), [0; 4]);
        dead.start += 1;
        let (_, dead) = store.acquire("n", dead).unwrap();
        assert_eq!(dead.ip, Ipv4Addr::new(10, 99, 0, 4));
        let (_, three) = store.acquire("n", lease(&id('d'), None, [0; 4])).unwrap();
        assert_eq!(
            three.ip,
            Ipv4Addr::new(10, 99, 0, 4),
            "the stale address is reused"
        );
        assert!(!store.hosts_path("n", &id('c')).exists());
        // .5 and .6 left in a /29 (.7 is broadcast), then full.
        store.acquire("n", lease(&id('e'), None, [0; 4])).unwrap();
        store.acquire("n", lease(&id('f'), None, [0; 4])).unwrap();
        let full = store.acquire("n", lease(&id('g'), None, [0; 4]));
        assert!(matches!(full, Err(NetStoreError::Full(_))), "{full:?}");
        drop(_lock);
        let err = store.remove("n").unwrap_err().to_string();
        assert_eq!(err, "network n is in use by container web (stop it first)");
        for c in ['a', 'b', 'd', 'e', 'f'] {
            store.release("n", &id(c)).unwrap();
        }
        let hosts = std::fs::read_to_string(store.hosts_path("n", &id('a')));
        assert!(hosts.is_err(), "a released container's hosts file is gone");
        store.remove("n").unwrap();
        assert!(!dir.path().join("networks/n").exists());
    }

    #[test]
    fn a_renamed_container_is_known_by_its_new_name_in_every_hosts_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = NetStore::new(dir.path());
        store
            .create("n", Some("10.98.0.0/29".parse().unwrap()))
            .unwrap();
        let id = |c: char| c.to_string().repeat(64);
        {
            let _lock = store.lock().unwrap();
            store
                .acquire("n", lease(&id('a'), Some("web"), [0; 4]))
                .unwrap();
            store
                .acquire("n", lease(&id('b'), Some("db"), [0; 4]))
                .unwrap();
        }
        assert_eq!(store.rename(&id('a'), "front").unwrap(), ["n"]);
        assert!(store.rename(&id('z'), "none").unwrap().is_empty());
        let hosts = std::fs::read_to_string(store.hosts_path("n", &id('b'))).unwrap();
        assert!(hosts.contains("10.98.0.2\tfront aaaaaaaaaaaa\n"), "{hosts}");
        assert!(!hosts.contains("web"), "{hosts}");
        let lease = store.lease_of("n", &id('a')).unwrap().unwrap();
        assert_eq!(lease.name.as_deref(), Some("front"));
    }
}
