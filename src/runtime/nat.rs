//! The nftables rules of a root named network: what lets its containers out through the host
//! (masquerade, as docker and podman do) and what keeps everything else out of their reach.
//!
//! All of rsafe's rules live in one table, `table inet rsafe`, as three base chains per
//! network named after its bridge (`BRIDGE-input`, `BRIDGE-forward`, `BRIDGE-nat`), each rule
//! commented with the network's name, so `nft list table inet rsafe` shows what rsafe did and
//! `rsafe network rm` removes exactly one network's chains:
//!
//! ```text
//! input    iifname BR ct state != {established, related} drop   no host service, any address
//! forward  iifname BR oifname BR accept                         (bridged, seen via br_netfilter)
//!          iifname BR oifname "rsafe*" drop                     no other rsafe network
//!          iifname BR accept                                    out (internal: drop)
//!          oifname BR ct state established,related accept       replies (internal: none)
//!          oifname BR drop                                      nothing else forwarded in
//! nat      ip saddr SUBNET oifname != BR masquerade             as the host (internal: no chain)
//! ```
//!
//! A rootless network that reaches the outside has the same chains in its holder's network
//! namespace N0 (where the user is root through U0; [`ensure_in`]), going out through
//! slirp4netns's `tap0` ([`Uplink`]) instead of any interface but the bridge. Since slirp4netns
//! opens its connections from the host, what is the host there is dropped by address too:
//!
//! ```text
//! input    iifname "tap0" ct state != {established, related} drop nothing in from slirp4netns
//! forward  iifname BR ip daddr 10.0.2.0/24 drop                   slirp4netns's host alias and DNS
//!          iifname BR ip daddr HOSTADDR drop                      each host address (0.0.0.0 services)
//!          iifname BR oifname "tap0" accept                       out
//! nat      ip saddr SUBNET oifname "tap0" masquerade              as N0's 10.0.2.100, then the host
//! ```
//!
//! Published ports (`-p`) need no rule: rsafe's forwarder connects from inside the container's
//! network namespace. An accept in one base chain does not overrule a drop in another of the
//! same hook: a host whose `ip filter` FORWARD policy is DROP (docker's) drops the containers'
//! traffic until it is accepted there too (see the README).
//!
//! Idempotent: [`ensure`], under the network store's lock at every container's start, lists
//! the table (one `nft`, 2–5 ms here) and finds the network's chains holding their rules, or
//! rewrites them in one `nft -f -` transaction (add the table and chains, which exist or are
//! made, flush them, add the rules: 8–16 ms): after a reboot, a flush, or a rule deleted by
//! hand. The transaction is atomic: no packet sees a half-made chain. A host-wide lock file
//! serialises rsafe's nft commands across stores (`--root`), which share the table: the last
//! network's removal removes the empty table.
//!
//! Why the `nft` command and not the `nftables` crate: the crate builds the same JSON and runs
//! the same `nft` binary, and its types have broken between releases (0.2 to 0.6); a text
//! ruleset is what `nft list` prints back and what an administrator reads and searches for.

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::netstore::NetworkDef;
use super::rootless_net::HolderNs;

/// rsafe's nftables table (family `inet`: IPv4 and IPv6 alike).
pub const TABLE: &str = "rsafe";

/// Host-wide: every store's networks share [`TABLE`].
const HOST_LOCK: &str = "/run/rsafe-nft.lock";

/// What can go wrong with a network's rules.
#[derive(Debug, thiserror::Error)]
pub enum NatError {
    #[error("nft (nftables) is not installed: apt-get install nftables (named networks need it)")]
    NotInstalled,
    #[error("nft: {0}")]
    Nft(String),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> NatError + '_ {
    move |source| NatError::Io {
        what: what.to_string(),
        source,
    }
}

/// A network's base chains: name, and the hook it is on (as `add chain` takes it).
fn chains(bridge: &str) -> [(String, &'static str); 3] {
    [
        (
            format!("{bridge}-input"),
            "type filter hook input priority filter; policy accept;",
        ),
        (
            format!("{bridge}-forward"),
            "type filter hook forward priority filter; policy accept;",
        ),
        (
            format!("{bridge}-nat"),
            "type nat hook postrouting priority srcnat; policy accept;",
        ),
    ]
}

/// A rootless network's way out of its holder's network namespace N0 (see
/// [`super::rootless_net`]): slirp4netns's interface there, its own network (whose gateway is
/// the host's loopback and whose DNS forwarder asks the host's resolvers: host services, out
/// of reach) and the host's own addresses (slirp4netns connects from the host, so a container
/// would reach a service the host runs on 0.0.0.0 through any of them).
#[derive(Debug, Clone, PartialEq)]
pub struct Uplink {
    /// `tap0`.
    pub dev: String,
    /// slirp4netns's network, `10.0.2.0/24`.
    pub user_net: String,
    /// The host's IPv4 addresses, loopback's left out ([`host_addresses`]).
    pub host: Vec<Ipv4Addr>,
}

/// The rules of each chain of network `def` (the nat chain's: none if it is internal), in the
/// host, or in a holder's namespace going out through `uplink`.
fn rules(def: &NetworkDef, uplink: Option<&Uplink>) -> [Vec<String>; 3] {
    let br = &def.network_interface;
    let net = &def.name;
    let c = |what: &str| format!("comment \"rsafe network {net}: {what}\"");
    let mut input = vec![format!(
        "iifname \"{br}\" ct state != {{ established, related }} drop {}",
        c("no host service")
    )];
    if let Some(up) = uplink {
        input.push(format!(
            "iifname \"{}\" ct state != {{ established, related }} drop {}",
            up.dev,
            c("nothing in from slirp4netns")
        ));
    }
    let mut forward = vec![
        format!(
            "iifname \"{br}\" oifname \"{br}\" accept {}",
            c("between its containers")
        ),
        format!(
            "iifname \"{br}\" oifname \"rsafe*\" drop {}",
            c("no other rsafe network")
        ),
    ];
    let mut nat = Vec::new();
    if def.internal {
        forward.push(format!("iifname \"{br}\" drop {}", c("internal")));
    } else if let Some(up) = uplink {
        forward.push(format!(
            "iifname \"{br}\" ip daddr {} drop {}",
            up.user_net,
            c("no host service through slirp4netns")
        ));
        for addr in &up.host {
            forward.push(format!(
                "iifname \"{br}\" ip daddr {addr} drop {}",
                c("no host service on the host's addresses")
            ));
        }
        forward.push(format!(
            "iifname \"{br}\" oifname \"{}\" accept {}",
            up.dev,
            c("out")
        ));
        forward.push(format!(
            "oifname \"{br}\" ct state established,related accept {}",
            c("replies")
        ));
        nat.push(format!(
            "ip saddr {} oifname \"{}\" masquerade {}",
            def.subnet(),
            up.dev,
            c("out through slirp4netns")
        ));
    } else {
        forward.push(format!("iifname \"{br}\" accept {}", c("out")));
        forward.push(format!(
            "oifname \"{br}\" ct state established,related accept {}",
            c("replies")
        ));
        nat.push(format!(
            "ip saddr {} oifname != \"{br}\" masquerade {}",
            def.subnet(),
            c("out as the host")
        ));
    }
    forward.push(format!(
        "oifname \"{br}\" drop {}",
        c("nothing else forwarded in")
    ));
    [input, forward, nat]
}

/// The `nft -f` script that makes network `def`'s chains what they should be, whatever was
/// there: the table and chains added (kept if there), flushed, and filled.
pub fn ruleset(def: &NetworkDef) -> String {
    ruleset_with(def, None)
}

/// [`ruleset`], going out through `uplink` if given (a holder's namespace).
pub fn ruleset_with(def: &NetworkDef, uplink: Option<&Uplink>) -> String {
    let mut out = format!("add table inet {TABLE}\n");
    let comment = format!("comment \"rsafe network {}\";", def.name);
    let all = rules(def, uplink);
    for ((chain, hook), rules) in chains(&def.network_interface).into_iter().zip(all) {
        if rules.is_empty() {
            // An internal network has no nat chain: remove one left from before.
            out.push_str(&format!(
                "add chain inet {TABLE} {chain} {{ {hook} }}\ndelete chain inet {TABLE} {chain}\n"
            ));
            continue;
        }
        out.push_str(&format!(
            "add chain inet {TABLE} {chain} {{ {hook} {comment} }}\nflush chain inet {TABLE} {chain}\n"
        ));
        for rule in rules {
            out.push_str(&format!("add rule inet {TABLE} {chain} {rule}\n"));
        }
    }
    out
}

/// The `nft -f` script that removes network `def`'s chains, there or not.
pub fn removal(def: &NetworkDef) -> String {
    let mut out = format!("add table inet {TABLE}\n");
    for (chain, hook) in chains(&def.network_interface) {
        out.push_str(&format!(
            "add chain inet {TABLE} {chain} {{ {hook} }}\ndelete chain inet {TABLE} {chain}\n"
        ));
    }
    out
}

/// Makes network `def`'s rules unless they are there (see the module's doc). Call holding the
/// network store's lock.
pub fn ensure(def: &NetworkDef) -> Result<(), NatError> {
    let _host = host_lock()?;
    ensure_at(def, None, None)
}

/// [`ensure`] in a rootless network's holder's namespaces (N0, entered through U0, where the
/// caller is root), going out through `uplink`. N0 is the network's alone: the store's lock,
/// which the caller holds, is the only one needed.
pub fn ensure_in(def: &NetworkDef, ns: &HolderNs, uplink: &Uplink) -> Result<(), NatError> {
    ensure_at(def, Some(ns), Some(uplink))
}

fn ensure_at(
    def: &NetworkDef,
    ns: Option<&HolderNs>,
    uplink: Option<&Uplink>,
) -> Result<(), NatError> {
    // No table (a reboot, a flush) is an error here: then the rules are made.
    if let Ok(listing) = nft_in(&["list", "table", "inet", TABLE], None, ns)
        && is_current(&listing, def, uplink)
    {
        return Ok(());
    }
    nft_in(&["-f", "-"], Some(&ruleset_with(def, uplink)), ns)?;
    Ok(())
}

/// Whether `nft list table` output holds network `def`'s chains with its rules, each once and
/// nothing else commented as rsafe's, and no chain it should not have. nft 1.0.6 prints the
/// rules as [`ruleset`] writes them; one that printed them otherwise would only have them
/// rewritten each time.
fn is_current(listing: &str, def: &NetworkDef, uplink: Option<&Uplink>) -> bool {
    chains(&def.network_interface)
        .into_iter()
        .zip(rules(def, uplink))
        .all(|((chain, _), rules)| match chain_block(listing, &chain) {
            None => rules.is_empty(),
            Some(block) => {
                let said = block.iter().filter(|l| l.contains(" comment \"")).count();
                said == rules.len()
                    && rules
                        .iter()
                        .all(|r| block.iter().filter(|l| l.trim() == r).count() == 1)
            }
        })
}

/// The lines of chain `name`'s block in `nft list table` output, if it has one.
fn chain_block<'a>(listing: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let head = format!("chain {name} {{");
    let mut lines = listing.lines().skip_while(|l| l.trim() != head);
    lines.next()?;
    Some(lines.take_while(|l| l.trim() != "}").collect())
}

/// Removes network `def`'s rules, and the table if no other network has any. Nothing to do
/// where nft is not installed (no rule can have been made).
pub fn remove(def: &NetworkDef) -> Result<(), NatError> {
    if nft_path().is_none() {
        return Ok(());
    }
    let _host = host_lock()?;
    nft(&["-f", "-"], Some(&removal(def)))?;
    let listing = nft(&["list", "table", "inet", TABLE], None)?;
    if !has_chains(&listing) {
        nft(&["delete", "table", "inet", TABLE], None)?;
    }
    Ok(())
}

/// Whether `nft list table` output names a chain.
fn has_chains(listing: &str) -> bool {
    listing
        .lines()
        .any(|l| l.trim_start().starts_with("chain "))
}

/// Turns the host's IPv4 forwarding on (`net.ipv4.ip_forward`, host-wide, as docker does):
/// masquerading needs it. True if it was off. Forwarding on the bridge alone
/// (`net.ipv4.conf.BRIDGE.forwarding`) is not enough: the replies arrive on the host's uplink,
/// which must forward too (tried: see the README).
pub fn ensure_ip_forward() -> Result<bool, NatError> {
    let path = "/proc/sys/net/ipv4/ip_forward";
    let now = std::fs::read_to_string(path).map_err(io_err(path))?;
    if now.trim() == "1" {
        return Ok(false);
    }
    std::fs::write(path, "1").map_err(io_err(path))?;
    Ok(true)
}

/// The line saying that rsafe turned forwarding on (`network create`, or a run after a reboot).
pub fn ip_forward_note(network: &str) -> String {
    format!(
        "set net.ipv4.ip_forward=1 (host-wide, as docker does) so that network {network}'s containers reach the outside; rsafe's rules in `nft list table inet {TABLE}` keep them from the host and other networks"
    )
}

/// rsafe's host-wide nft lock, held while it lives.
struct HostLock(#[allow(dead_code)] std::fs::File);

fn host_lock() -> Result<HostLock, NatError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(HOST_LOCK)
        .map_err(io_err(HOST_LOCK))?;
    file.lock().map_err(io_err(HOST_LOCK))?;
    Ok(HostLock(file))
}

/// Where `nft` is: Debian's /usr/sbin, which a user's PATH may lack, else the PATH's.
fn nft_path() -> Option<std::path::PathBuf> {
    let sbin = Path::new("/usr/sbin/nft");
    if sbin.exists() {
        return Some(sbin.to_path_buf());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("nft"))
        .find(|p| p.exists())
}

/// The host's own IPv4 addresses (those of the network namespace rsafe runs in), loopback's
/// left out, from `/proc/net/fib_trie`'s local routes: no process to run.
pub fn host_addresses() -> Result<Vec<Ipv4Addr>, NatError> {
    let path = "/proc/net/fib_trie";
    let trie = std::fs::read_to_string(path).map_err(io_err(path))?;
    Ok(local_addresses(&trie))
}

/// The addresses `/proc/net/fib_trie` text lists as `/32 host LOCAL`, sorted, each once,
/// loopback's left out.
fn local_addresses(trie: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in trie.lines() {
        let line = line.trim();
        if let Some(addr) = line.rsplit("-- ").next().and_then(|a| a.parse().ok()) {
            last = Some(addr);
        } else if line == "/32 host LOCAL"
            && let Some(addr) = last.filter(|a| !a.is_loopback())
        {
            out.push(addr);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Runs `nft ARGS` (with `script` on its stdin) and returns its output; its error line
/// becomes the error.
fn nft(args: &[&str], script: Option<&str>) -> Result<String, NatError> {
    nft_in(args, script, None)
}

/// [`nft`], in a holder's user and network namespaces if `ns` is given.
fn nft_in(args: &[&str], script: Option<&str>, ns: Option<&HolderNs>) -> Result<String, NatError> {
    let path = nft_path().ok_or(NatError::NotInstalled)?;
    let mut cmd = Command::new(path);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ns) = ns {
        let (user, net) = (ns.user.as_raw_fd(), ns.net.as_raw_fd());
        // SAFETY: between fork and exec only setns, an async-signal-safe system call, on fds
        // this process keeps open until the child has run (the forked child has one thread,
        // as joining a user namespace asks).
        unsafe {
            cmd.pre_exec(move || {
                for (fd, kind) in [(user, libc::CLONE_NEWUSER), (net, libc::CLONE_NEWNET)] {
                    if libc::setns(fd, kind) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().map_err(io_err("run nft"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.unwrap_or_default().as_bytes())
            .map_err(io_err("nft -f -"))?;
    }
    let out = child.wait_with_output().map_err(io_err("nft"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(NatError::Nft(error_line(&String::from_utf8_lossy(
        &out.stderr,
    ))))
}

/// nft's error, in one line: its `Error:` line (it follows with the script's line and a caret).
fn error_line(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains("Error:"))
        .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("failed");
    match line.split_once("Error:") {
        Some((_, said)) => said.trim().to_string(),
        None => line.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::netstore::{NetStore, Subnet};

    fn network(name: &str, subnet: &str, internal: bool) -> (tempfile::TempDir, NetworkDef) {
        let dir = tempfile::tempdir().unwrap();
        let subnet: Subnet = subnet.parse().unwrap();
        let def = NetStore::new(dir.path())
            .create_with(name, Some(subnet), internal)
            .unwrap();
        (dir, def)
    }

    #[test]
    fn an_outbound_network_is_masqueraded_and_kept_from_the_host_and_other_networks() {
        let (_dir, def) = network("web", "10.97.3.0/24", false);
        let br = &def.network_interface;
        let text = ruleset(&def);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "add table inet rsafe");
        let rule = |chain: &str, body: &str| {
            format!("add rule inet rsafe {br}-{chain} {body} comment \"rsafe network web: ")
        };
        let expect_in_order = [
            format!(
                "add chain inet rsafe {br}-input {{ type filter hook input priority filter; policy accept; comment \"rsafe network web\"; }}"
            ),
            format!("flush chain inet rsafe {br}-input"),
            rule(
                "input",
                &format!("iifname \"{br}\" ct state != {{ established, related }} drop"),
            ),
            format!("flush chain inet rsafe {br}-forward"),
            rule(
                "forward",
                &format!("iifname \"{br}\" oifname \"{br}\" accept"),
            ),
            rule(
                "forward",
                &format!("iifname \"{br}\" oifname \"rsafe*\" drop"),
            ),
            rule("forward", &format!("iifname \"{br}\" accept")),
            rule(
                "forward",
                &format!("oifname \"{br}\" ct state established,related accept"),
            ),
            rule("forward", &format!("oifname \"{br}\" drop")),
            format!("flush chain inet rsafe {br}-nat"),
            rule(
                "nat",
                &format!("ip saddr 10.97.3.0/24 oifname != \"{br}\" masquerade"),
            ),
        ];
        let mut at = 0;
        for want in &expect_in_order {
            let found = lines[at..]
                .iter()
                .position(|l| l.starts_with(want.as_str()));
            let found = found.unwrap_or_else(|| panic!("{want}\nnot after line {at} of\n{text}"));
            at += found + 1;
        }
        assert_eq!(text.matches("add rule").count(), 7, "{text}");
        assert!(!text.contains("delete"), "{text}");
    }

    #[test]
    fn an_internal_network_lets_nothing_out_and_has_no_nat_chain() {
        let (_dir, def) = network("quiet", "10.97.4.0/24", true);
        let br = &def.network_interface;
        let text = ruleset(&def);
        assert!(!text.contains("masquerade"), "{text}");
        // The one accept: between its own containers (bridged, seen with br_netfilter).
        assert_eq!(text.matches(" accept comment").count(), 1, "{text}");
        assert!(
            text.contains(&format!("oifname \"{br}\" accept comment")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "add chain inet rsafe {br}-nat {{ type nat hook postrouting priority srcnat; policy accept; }}\ndelete chain inet rsafe {br}-nat\n"
        )));
        for drop in [
            format!("iifname \"{br}\" drop comment \"rsafe network quiet: internal\""),
            format!(
                "oifname \"{br}\" drop comment \"rsafe network quiet: nothing else forwarded in\""
            ),
            format!("iifname \"{br}\" ct state != {{ established, related }} drop"),
        ] {
            assert!(text.contains(&drop), "{drop}\n{text}");
        }
    }

    #[test]
    fn a_rootless_network_goes_out_through_slirp4netns_only_and_never_to_the_host() {
        let (_dir, def) = network("web", "10.97.6.0/24", false);
        let br = &def.network_interface;
        let uplink = Uplink {
            dev: "tap0".into(),
            user_net: "10.0.2.0/24".into(),
            host: vec![Ipv4Addr::new(192, 0, 2, 2), Ipv4Addr::new(10, 88, 0, 1)],
        };
        let text = ruleset_with(&def, Some(&uplink));
        let [input, forward, nat] = rules(&def, Some(&uplink));
        assert_eq!(input.len(), 2, "{text}");
        assert!(input[1].starts_with("iifname \"tap0\" ct state != { established, related } drop"));
        // Every drop of the host's comes before the accept out.
        let out = forward
            .iter()
            .position(|r| r.starts_with(&format!("iifname \"{br}\" oifname \"tap0\" accept")))
            .unwrap_or_else(|| panic!("{text}"));
        for daddr in ["10.0.2.0/24", "192.0.2.2", "10.88.0.1"] {
            let at = forward
                .iter()
                .position(|r| r.starts_with(&format!("iifname \"{br}\" ip daddr {daddr} drop")))
                .unwrap_or_else(|| panic!("{daddr}: {text}"));
            assert!(at < out, "{text}");
        }
        assert!(
            !forward
                .iter()
                .any(|r| r.starts_with(&format!("iifname \"{br}\" accept")))
        );
        assert_eq!(
            nat,
            [
                "ip saddr 10.97.6.0/24 oifname \"tap0\" masquerade comment \"rsafe network web: out through slirp4netns\""
            ]
        );
        assert!(text.ends_with(&format!("add rule inet rsafe {br}-nat {}\n", nat[0])));
        // Internal: the same as root's, whatever the uplink.
        let (_d, sealed) = network("quiet", "10.97.7.0/24", true);
        assert_eq!(rules(&sealed, Some(&uplink))[1], rules(&sealed, None)[1]);
    }

    #[test]
    fn the_hosts_addresses_are_its_local_routes_but_loopback() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
                    \x20    +-- 127.0.0.0/8 2 0 2\n        |-- 127.0.0.1\n           /32 host LOCAL\n\
                    \x20    |-- 192.0.2.0\n        /24 link UNICAST\n     |-- 192.0.2.2\n\
                    \x20       /32 host LOCAL\n     |-- 192.0.2.255\n        /32 link BROADCAST\n\
                    Local:\n     |-- 192.0.2.2\n        /32 host LOCAL\n     |-- 10.88.0.1\n\
                    \x20       /32 host LOCAL\n";
        assert_eq!(
            local_addresses(trie),
            [Ipv4Addr::new(10, 88, 0, 1), Ipv4Addr::new(192, 0, 2, 2)]
        );
        let here = host_addresses().unwrap();
        assert!(here.iter().all(|a| !a.is_loopback()), "{here:?}");
    }

    #[test]
    fn removal_deletes_each_chain_whether_there_or_not() {
        let (_dir, def) = network("web", "10.97.3.0/24", false);
        let br = &def.network_interface;
        let text = removal(&def);
        for chain in ["input", "forward", "nat"] {
            assert!(
                text.contains(&format!("delete chain inet rsafe {br}-{chain}\n")),
                "{text}"
            );
        }
        assert!(!text.contains("add rule"), "{text}");
        assert!(has_chains(
            "table inet rsafe {\n\tchain x-input {\n\t}\n}\n"
        ));
        assert!(!has_chains("table inet rsafe {\n}\n"));
    }

    /// `nft list table inet rsafe` as nft 1.0.6 printed it for network `web` (bridge
    /// `rsafe6d77a37bc1`) and the internal network `db`.
    const LISTING: &str = r#"table inet rsafe {
	chain rsafe6d77a37bc1-input {
		comment "rsafe network web"
		type filter hook input priority filter; policy accept;
		iifname "rsafe6d77a37bc1" ct state != { established, related } drop comment "rsafe network web: no host service"
	}

	chain rsafe6d77a37bc1-forward {
		comment "rsafe network web"
		type filter hook forward priority filter; policy accept;
		iifname "rsafe6d77a37bc1" oifname "rsafe6d77a37bc1" accept comment "rsafe network web: between its containers"
		iifname "rsafe6d77a37bc1" oifname "rsafe*" drop comment "rsafe network web: no other rsafe network"
		iifname "rsafe6d77a37bc1" accept comment "rsafe network web: out"
		oifname "rsafe6d77a37bc1" ct state established,related accept comment "rsafe network web: replies"
		oifname "rsafe6d77a37bc1" drop comment "rsafe network web: nothing else forwarded in"
	}

	chain rsafe6d77a37bc1-nat {
		comment "rsafe network web"
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.89.0.0/24 oifname != "rsafe6d77a37bc1" masquerade comment "rsafe network web: out as the host"
	}

	chain rsafe73f8fd0cd5-input {
		comment "rsafe network db"
		type filter hook input priority filter; policy accept;
		iifname "rsafe73f8fd0cd5" ct state != { established, related } drop comment "rsafe network db: no host service"
	}

	chain rsafe73f8fd0cd5-forward {
		comment "rsafe network db"
		type filter hook forward priority filter; policy accept;
		iifname "rsafe73f8fd0cd5" oifname "rsafe73f8fd0cd5" accept comment "rsafe network db: between its containers"
		iifname "rsafe73f8fd0cd5" oifname "rsafe*" drop comment "rsafe network db: no other rsafe network"
		iifname "rsafe73f8fd0cd5" drop comment "rsafe network db: internal"
		oifname "rsafe73f8fd0cd5" drop comment "rsafe network db: nothing else forwarded in"
	}
}
"#;

    #[test]
    fn rules_in_place_are_found_and_missing_or_doubled_ones_are_not() {
        let (_dir, mut web) = network("web", "10.89.0.0/24", false);
        web.network_interface = "rsafe6d77a37bc1".into();
        let (_dir2, mut db) = network("db", "10.89.9.0/24", true);
        db.network_interface = "rsafe73f8fd0cd5".into();
        assert!(is_current(LISTING, &web, None));
        assert!(is_current(LISTING, &db, None));
        // Another subnet: the masquerade rule differs.
        let mut moved = web.clone();
        moved.subnets[0].subnet = "10.89.1.0/24".parse().unwrap();
        assert!(!is_current(LISTING, &moved, None));
        // Internal now: the nat chain should not be there.
        let mut closed = web.clone();
        closed.internal = true;
        assert!(!is_current(LISTING, &closed, None));
        let without_nat: String = LISTING.replace(
            "\tchain rsafe6d77a37bc1-nat {",
            "\tchain rsafe6d77a37bc1-gone {",
        );
        assert!(!is_current(&without_nat, &web, None));
        let rule = "\t\toifname \"rsafe6d77a37bc1\" drop comment \"rsafe network web: nothing else forwarded in\"\n";
        assert!(LISTING.contains(rule));
        let doubled = LISTING.replace(rule, &format!("{rule}{rule}"));
        assert!(!is_current(&doubled, &web, None));
        assert!(!is_current(&LISTING.replace(rule, ""), &web, None));
        assert!(!is_current("", &web, None));
    }

    #[test]
    fn nfts_error_is_one_line() {
        let said =
            "/dev/stdin:3:54-54: Error: syntax error, unexpected '}'\n   ip saddr x }\n   ^\n";
        assert_eq!(error_line(said), "syntax error, unexpected '}'");
        assert_eq!(error_line("\nsomething odd\n"), "something odd");
        assert_eq!(error_line(""), "failed");
    }

    /// The rules applied for real, in a network namespace of this test's own (root only): made
    /// twice (the second finds them as nft prints them back, and leaves one copy), listed back with their comments, an
    /// internal network's replacing them, and removed with the table.
    #[test]
    fn rules_apply_idempotently_and_go_with_the_table() {
        if !nix::unistd::geteuid().is_root() || nft_path().is_none() {
            let required = std::env::var("RSAFE_TEST_REQUIRE").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "root and nft are required (RSAFE_TEST_REQUIRE=1)"
            );
            eprintln!("skipped: applying nft rules needs root and nft");
            return;
        }
        let (_a, web) = network("web", "10.97.3.0/24", false);
        let (_b, other) = network("other", "10.97.5.0/24", false);
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let list = || nft(&["list", "table", "inet", TABLE], None).unwrap();
            ensure(&web).unwrap();
            let once = list();
            ensure(&web).unwrap();
            assert!(is_current(&once, &web, None), "found as made: {once}");
            assert_eq!(list(), once, "found, not made twice");
            assert_eq!(
                once.matches("comment \"rsafe network web: ").count(),
                7,
                "{once}"
            );
            assert!(once.contains("masquerade"), "{once}");
            ensure(&other).unwrap();
            let mut internal = web.clone();
            internal.internal = true;
            ensure(&internal).unwrap();
            let now = list();
            assert!(
                is_current(&now, &internal, None) && !is_current(&now, &web, None),
                "{now}"
            );
            assert!(
                !now.contains(&format!("{}-nat", web.network_interface)),
                "{now}"
            );
            assert!(now.contains("rsafe network web: internal"), "{now}");
            remove(&web).unwrap();
            let left = list();
            assert!(!left.contains("rsafe network web"), "{left}");
            assert!(left.contains("rsafe network other"), "{left}");
            remove(&other).unwrap();
            remove(&other).unwrap();
            let gone = nft(&["list", "table", "inet", TABLE], None).unwrap_err();
            assert!(
                gone.to_string().contains("No such file or directory"),
                "{gone}"
            );
        })
        .join()
        .unwrap();
    }
}
