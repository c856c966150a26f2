//! `rsafe network create|ls|rm|inspect`: named networks, in podman's shapes, for
//! `rsafe run --network NAME`.

use anyhow::Context;

use crate::runtime::netstore::{NetStore, NetworkDef, Subnet};
use crate::runtime::{bridge, nat, rootless_net};

use super::Global;

/// Manage named networks: containers run with `--network NAME` reach each other by name.
#[derive(Debug, clap::Args)]
pub struct NetworkArgs {
    #[command(subcommand)]
    pub command: NetworkCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum NetworkCommand {
    /// Create a network (an IPv4 subnet: the first free 10.89.N.0/24 unless --subnet).
    Create {
        /// The subnet, e.g. 10.89.7.0/24 (must not overlap another network or a host route).
        #[arg(long, value_name = "CIDR")]
        subnet: Option<String>,
        /// No traffic leaves the network: no gateway, no route out, no masquerade (podman's and
        /// docker's --internal). Without it, containers reach the outside: root's through the
        /// host, a rootless user's through slirp4netns in the network's holder.
        #[arg(long)]
        internal: bool,
        name: String,
    },
    /// List the networks.
    #[command(alias = "list")]
    Ls {
        /// Names only.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove networks (refused while a running container is on one), their bridges and rules.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show networks as JSON, with the addresses of their running containers.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// A rootless network's holder process (started by `rsafe run`, ended by `network rm`).
    #[command(hide = true)]
    Hold {
        name: String,
    },
    Prune(super::prune::NetworkPruneArgs),
}

/// Runs `rsafe network …`.
pub fn run(args: NetworkArgs, global: &Global) -> anyhow::Result<i32> {
    let command = match args.command {
        // It keeps its namespaces alive until killed; it opens no store.
        NetworkCommand::Hold { .. } => match rootless_net::hold()? {},
        command => command,
    };
    let store = global.store()?;
    let nets = NetStore::new(store.root());
    let root = nix::unistd::geteuid().is_root();
    match command {
        NetworkCommand::Create {
            subnet,
            internal,
            name,
        } => {
            let subnet: Option<Subnet> = subnet.as_deref().map(str::parse).transpose()?;
            let def = nets.create_with(&name, subnet, internal)?;
            // Root's outbound networks need the host to forward; a run after a reboot turns it
            // on again and says so too. A rootless network forwards in its holder's namespace
            // only, set when the holder starts.
            if root && !def.internal && nat::ensure_ip_forward()? {
                eprintln!("rsafe: {}", nat::ip_forward_note(&def.name));
            }
            println!("{}", def.name);
        }
        NetworkCommand::Ls { quiet } => {
            let all = nets.list()?;
            if quiet {
                for def in &all {
                    println!("{}", def.name);
                }
            } else {
                print!("{}", table(&all));
            }
        }
        NetworkCommand::Rm { names } => {
            for name in names {
                match nets.remove(&name)? {
                    // A rootless network: its bridge, namespaces, nft rules and slirp4netns go
                    // with its holder.
                    (_, Some(holder)) => rootless_net::stop(&holder),
                    (def, None) if root => {
                        bridge::remove_bridge(&def.network_interface)
                            .with_context(|| format!("network {name}'s bridge"))?;
                        nat::remove(&def).with_context(|| format!("network {name}'s nft rules"))?;
                    }
                    // A rootless network never used: nothing was made for it.
                    (_, None) => {}
                }
                println!("{name}");
            }
        }
        NetworkCommand::Inspect { names } => {
            let mut docs = Vec::new();
            for name in names {
                docs.push(inspect(&nets, &name, root)?);
            }
            println!("{}", serde_json::to_string_pretty(&docs)?);
        }
        NetworkCommand::Hold { .. } => match rootless_net::hold()? {},
        NetworkCommand::Prune(args) => return super::prune::networks(args, global),
    }
    Ok(0)
}

/// What `network inspect` says of a rootless network's way out (see `runtime::rootless_net`).
const ROOTLESS_OUTBOUND: &str = "slirp4netns: masqueraded in the network's holder, out through slirp4netns --disable-host-loopback";

/// What it says of an internal rootless network's (or one made internal before rootless
/// networks had a way out).
const ROOTLESS_INTERNAL: &str = "none: internal";

/// `podman network ls`'s table: id (12 characters), name, driver; plus the subnet.
fn table(all: &[NetworkDef]) -> String {
    let mut out = format!(
        "{:<14}{:<20}{:<10}{}\n",
        "NETWORK ID", "NAME", "DRIVER", "SUBNET"
    );
    for def in all {
        out.push_str(&format!(
            "{:<14}{:<20}{:<10}{}\n",
            &def.id[..12.min(def.id.len())],
            def.name,
            def.driver,
            def.subnet()
        ));
    }
    out
}

/// One network as `podman network inspect` shows it, with `containers`: each running one's
/// name and address (stale leases are dropped first). A rootless user's (not `root`) says in
/// `options` how it goes out (`rsafe.outbound`).
fn inspect(nets: &NetStore, name: &str, root: bool) -> anyhow::Result<serde_json::Value> {
    let def = nets.get(name)?;
    let live = {
        let _lock = nets.lock()?;
        nets.reclaim(name)?
    };
    let mut doc = serde_json::to_value(&def)?;
    let containers: serde_json::Map<String, serde_json::Value> = live
        .iter()
        .map(|l| {
            let value = serde_json::json!({
                "name": l.name.clone().unwrap_or_default(),
                "interfaces": {"eth0": {
                    "subnets": [{"ipnet": format!("{}/{}", l.ip, def.subnet().prefix)}],
                    "mac_address": l.mac,
                }},
            });
            (l.container.clone(), value)
        })
        .collect();
    doc["containers"] = serde_json::Value::Object(containers);
    if !root {
        let way = if def.internal {
            ROOTLESS_INTERNAL
        } else {
            ROOTLESS_OUTBOUND
        };
        doc["options"] = serde_json::json!({ "rsafe.outbound": way });
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_lines_up_podmans_columns() {
        let dir = tempfile::tempdir().unwrap();
        let nets = NetStore::new(dir.path());
        let def = nets
            .create("backend", Some("10.97.0.0/24".parse().unwrap()))
            .unwrap();
        let out = table(std::slice::from_ref(&def));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "NETWORK ID    NAME                DRIVER    SUBNET"
        );
        assert_eq!(
            lines[1],
            format!(
                "{}  backend             bridge    10.97.0.0/24",
                &def.id[..12]
            )
        );
        let doc = inspect(&nets, "backend", true).unwrap();
        assert_eq!(doc["subnets"][0]["gateway"], "10.97.0.1");
        assert_eq!(doc["internal"], false);
        assert_eq!(doc["containers"], serde_json::json!({}));
        assert!(doc.get("options").is_none(), "{doc}");
        // The same definition in a rootless user's store: it says how it goes out.
        let doc = inspect(&nets, "backend", false).unwrap();
        assert_eq!(doc["internal"], false);
        assert_eq!(doc["options"]["rsafe.outbound"], ROOTLESS_OUTBOUND);
        let sealed = nets
            .create_with("sealed", Some("10.97.1.0/24".parse().unwrap()), true)
            .unwrap();
        let doc = inspect(&nets, &sealed.name, false).unwrap();
        assert_eq!(doc["internal"], true);
        assert_eq!(doc["options"]["rsafe.outbound"], ROOTLESS_INTERNAL);
    }
}
