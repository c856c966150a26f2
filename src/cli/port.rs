//! `rsafe port`: the published ports of a container, like `docker port`.
#![forbid(unsafe_code)]

use anyhow::{Result, bail};

use super::Global;
use crate::runtime::state;

/// List a container's published ports
///
/// One line per published port, `80/tcp -> 127.0.0.1:8080`, as docker prints them; with
/// PORT (`80` or `80/udp`), only the host addresses it is published on. A container that is
/// not running holds no port and prints nothing.
#[derive(Debug, clap::Args)]
pub struct PortArgs {
    /// The container's name or id (a unique prefix of the id is enough).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// A container port, `PORT` or `PORT/tcp|udp` (tcp when not said).
    #[arg(value_name = "PORT[/PROTO]")]
    pub port: Option<String>,
}

/// Prints the ports; a named port that is not published is an error, as in docker.
pub fn run(args: PortArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let (_, s) = state::find(store.root(), &args.container)?;
    let held: Vec<_> = s.ports.iter().filter(|_| s.is_alive()).collect();
    let Some(wanted) = &args.port else {
        for p in held {
            println!("{}/{} -> {}", p.container_port, proto(p), host(p));
        }
        return Ok(0);
    };
    let (number, protocol) = wanted.split_once('/').unwrap_or((wanted, "tcp"));
    let Ok(number) = number.parse::<u16>() else {
        bail!("{wanted}: not a port (PORT or PORT/tcp|udp)");
    };
    let matching: Vec<_> = held
        .into_iter()
        .filter(|p| p.container_port == number && proto(p) == protocol)
        .collect();
    if matching.is_empty() {
        bail!(
            "no public port '{number}/{protocol}' published for {}",
            args.container
        );
    }
    for p in matching {
        println!("{}", host(p));
    }
    Ok(0)
}

fn proto(p: &crate::runtime::network::PortMapping) -> &'static str {
    match p.proto {
        crate::runtime::network::Proto::Tcp => "tcp",
        crate::runtime::network::Proto::Udp => "udp",
    }
}

/// `127.0.0.1:8080`, `[::1]:8080`.
fn host(p: &crate::runtime::network::PortMapping) -> String {
    std::net::SocketAddr::new(p.host_ip, p.host_port).to_string()
}
