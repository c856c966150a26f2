//! `rsafe ps --filter KEY=VALUE`: docker's filters over rsafe's own containers, parsed once
//! and matched against each container of the store, so that scripts written for `docker ps`
//! select the same containers.

use std::collections::BTreeMap;

use regex::Regex;

use crate::image::Digest;
use crate::runtime::network::{PortMapping, Proto};

/// The filter keys `ps` knows, as docker names them (said by the unknown-key error).
pub const KEYS: &[&str] = &[
    "ancestor",
    "before",
    "exited",
    "expose",
    "id",
    "label",
    "name",
    "network",
    "publish",
    "restart-policy",
    "since",
    "status",
    "volume",
];

/// podman's `restart-policy=` values (docker's `--restart` policies, `on-failure` without
/// its count).
const RESTART_POLICIES: &[&str] = &["no", "on-failure", "always", "unless-stopped"];

/// docker's container statuses; `restarting` and `removing` are accepted and never match
/// (rsafe has no restart loop in the store view and removes under a lock).
const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// Why a `--filter` was refused: one line naming the filter.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FilterError {
    #[error("bad filter {0:?}: expected KEY=VALUE")]
    NotKeyValue(String),
    #[error("unknown filter key {key:?} (known: {known})", known = KEYS.join(", "))]
    UnknownKey { key: String },
    #[error("bad value for filter {key}={value:?}: {why}")]
    BadValue {
        key: String,
        value: String,
        why: String,
    },
}

/// One parsed `--filter`.
#[derive(Debug)]
enum Filter {
    /// An unanchored regular expression over the name, as docker's (`^`/`$` anchor it), tried
    /// on `NAME` and on docker's `/NAME`.
    Name(Regex),
    /// A prefix of the full id.
    Id(String),
    /// `label=KEY` or `label=KEY=VALUE`.
    Label(String, Option<String>),
    Status(String),
    /// What the user typed, and the image of the store it names, once resolved
    /// ([`Filters::resolve_ancestors`]).
    Ancestor(String, Option<ImageLayers>),
    RestartPolicy(String),
    Exited(i32),
    /// Resolved by the caller to a creation position: `before`/`since`.
    Before(String),
    Since(String),
    Volume(String),
    Network(String),
    /// A container port range and protocol (`publish=` and `expose=`).
    Port(u16, u16, Option<Proto>),
}

/// An image's layers as its containers run on them: diff ids bottom first, a layer that
/// occurs twice kept at its top position only (as the layer cache stacks them).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageLayers(Vec<Digest>);

impl ImageLayers {
    /// The image's layer diff ids, bottom first, as its config lists them.
    pub fn new(diff_ids: impl IntoIterator<Item = Digest>) -> ImageLayers {
        let mut out: Vec<Digest> = Vec::new();
        for d in diff_ids {
            out.retain(|x| *x != d);
            out.push(d);
        }
        ImageLayers(out)
    }

    /// Whether a container on layers `have` (bottom first) runs on this image or on an image
    /// built from it (docker's descendants): its layers up to this image's top layer are this
    /// image's (the layers below an opaque root may have been left out of the stack).
    fn under(&self, have: &[Digest]) -> bool {
        let Some(top) = self.0.last() else {
            return false;
        };
        have.iter()
            .position(|d| d == top)
            .is_some_and(|at| self.0.ends_with(&have[..=at]))
    }
}

/// The container as the filters see it.
#[derive(Debug, Default)]
pub struct Candidate<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    /// What ran: an image reference or a rootfs directory.
    pub image: &'a str,
    /// The diff ids of the layers it runs on, bottom first (none for a rootfs directory).
    pub layers: Vec<Digest>,
    /// Its `--restart` policy as podman's `restart-policy=` names it (`no`, `on-failure`, …).
    pub restart_policy: &'a str,
    /// docker's status word: created, running, paused, exited or dead.
    pub status: &'static str,
    pub exit_code: Option<i32>,
    pub labels: Option<&'a BTreeMap<String, String>>,
    /// Named volumes and every mount's target in the container.
    pub volumes: Vec<&'a str>,
    /// The named network, or the mode (none, host, slirp4netns).
    pub network: Option<&'a str>,
    pub ports: &'a [PortMapping],
    /// Its position in creation order (0 is the oldest).
    pub order: usize,
}

/// Every `--filter` given: filters of one key OR, of different keys AND (labels AND, as
/// docker's).
#[derive(Debug, Default)]
pub struct Filters {
    by_key: BTreeMap<&'static str, Vec<Filter>>,
}

impl Filters {
    /// Parses each `KEY=VALUE`; the first bad one is the error.
    pub fn parse(specs: &[String]) -> Result<Filters, FilterError> {
        let mut out = Filters::default();
        for spec in specs {
            let (key, filter) = parse_one(spec)?;
            out.by_key.entry(key).or_default().push(filter);
        }
        Ok(out)
    }

    /// Whether no filter was given.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// A `status=` filter makes `ps` look at stopped containers too, as docker's does.
    pub fn has_status(&self) -> bool {
        self.by_key.contains_key("status")
    }

    /// Whether a filter needs the container's saved spec (labels, mounts, network, restart
    /// policy).
    pub fn needs_spec(&self) -> bool {
        ["label", "volume", "network", "restart-policy"]
            .iter()
            .any(|k| self.by_key.contains_key(k))
    }

    /// The names or ids `before=`/`since=` refer to, for the caller to resolve.
    pub fn references(&self) -> Vec<&str> {
        self.by_key
            .values()
            .flatten()
            .filter_map(|f| match f {
                Filter::Before(r) | Filter::Since(r) => Some(r.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Looks up each `ancestor=` value as an image of the store (`find`: its layers, `None`
    /// when the store has no such image); the first lookup error is the error.
    pub fn resolve_ancestors<E>(
        &mut self,
        find: &dyn Fn(&str) -> Result<Option<ImageLayers>, E>,
    ) -> Result<(), E> {
        for f in self.by_key.values_mut().flatten() {
            if let Filter::Ancestor(wanted, layers) = f {
                *layers = find(wanted)?;
            }
        }
        Ok(())
    }

    /// Whether `c` passes every key; `order_of` gives a `before`/`since` reference's
    /// creation position (the caller checked that each resolves).
    pub fn matches(&self, c: &Candidate, order_of: &dyn Fn(&str) -> Option<usize>) -> bool {
        self.by_key.iter().all(|(key, filters)| {
            let one = |f: &Filter| matches_one(f, c, order_of);
            if *key == "label" {
                filters.iter().all(one)
            } else {
                filters.iter().any(one)
            }
        })
    }
}

fn parse_one(spec: &str) -> Result<(&'static str, Filter), FilterError> {
    let (key, value) = spec
        .split_once('=')
        .ok_or_else(|| FilterError::NotKeyValue(spec.to_string()))?;
    let key_lc = key.to_ascii_lowercase();
    let key: &'static str =
        KEYS.iter()
            .find(|k| **k == key_lc)
            .ok_or_else(|| FilterError::UnknownKey {
                key: key.to_string(),
            })?;
    let bad = |why: &str| FilterError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    };
    if value.is_empty() {
        return Err(bad("empty"));
    }
    let filter = match key {
        "name" => Filter::Name(Regex::new(value).map_err(|_| bad("not a regular expression"))?),
        "id" => Filter::Id(value.to_ascii_lowercase()),
        "label" => match value.split_once('=') {
            Some((k, v)) => Filter::Label(k.to_string(), Some(v.to_string())),
            None => Filter::Label(value.to_string(), None),
        },
        "status" => {
            let v = value.to_ascii_lowercase();
            if !STATUSES.contains(&v.as_str()) {
                return Err(bad(&format!("expected one of {}", STATUSES.join(", "))));
            }
            Filter::Status(v)
        }
        "ancestor" => Filter::Ancestor(value.to_string(), None),
        "restart-policy" => {
            if !RESTART_POLICIES.contains(&value) {
                return Err(bad(&format!(
                    "expected one of {}",
                    RESTART_POLICIES.join(", ")
                )));
            }
            Filter::RestartPolicy(value.to_string())
        }
        "exited" => Filter::Exited(value.parse().map_err(|_| bad("not an exit code"))?),
        "before" => Filter::Before(value.to_string()),
        "since" => Filter::Since(value.to_string()),
        "volume" => Filter::Volume(value.to_string()),
        "network" => Filter::Network(value.to_string()),
        _ => {
            let (lo, hi, proto) = parse_ports(value).ok_or_else(|| {
                bad("expected PORT[/PROTO] or START-END[/PROTO], PROTO tcp or udp")
            })?;
            Filter::Port(lo, hi, proto)
        }
    };
    Ok((key, filter))
}

/// `80`, `80/tcp`, `8000-8080/udp`.
fn parse_ports(value: &str) -> Option<(u16, u16, Option<Proto>)> {
    let (ports, proto) = match value.split_once('/') {
        Some((p, "tcp")) => (p, Some(Proto::Tcp)),
        Some((p, "udp")) => (p, Some(Proto::Udp)),
        Some(_) => return None,
        None => (value, None),
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let p = ports.parse().ok()?;
            (p, p)
        }
    };
    (lo <= hi).then_some((lo, hi, proto))
}

fn matches_one(f: &Filter, c: &Candidate, order_of: &dyn Fn(&str) -> Option<usize>) -> bool {
    match f {
        Filter::Name(re) => c
            .name
            .is_some_and(|n| re.is_match(n) || re.is_match(&format!("/{n}"))),
        Filter::Id(prefix) => c.id.starts_with(prefix.as_str()),
        Filter::Label(k, v) => c
            .labels
            .and_then(|l| l.get(k))
            .is_some_and(|have| v.as_ref().is_none_or(|want| want == have)),
        Filter::Status(s) => c.status == s,
        // docker's: the image the value names, or one built from it; a value that names no
        // image of the store (a rootfs directory, a removed image) compares as a reference.
        Filter::Ancestor(_, Some(image)) => image.under(&c.layers),
        Filter::Ancestor(a, None) => same_image(c.image, a),
        Filter::RestartPolicy(p) => c.restart_policy == p,
        Filter::Exited(code) => c.status == "exited" && c.exit_code == Some(*code),
        Filter::Before(r) => order_of(r).is_some_and(|o| c.order < o),
        Filter::Since(r) => order_of(r).is_some_and(|o| c.order > o),
        Filter::Volume(v) => c.volumes.contains(&v.as_str()),
        Filter::Network(n) => c.network == Some(n.as_str()),
        Filter::Port(lo, hi, proto) => c.ports.iter().any(|p| {
            (*lo..=*hi).contains(&p.container_port) && proto.is_none_or(|want| want == p.proto)
        }),
    }
}

/// Whether image `ran` is `wanted` as docker compares references: `debian` is
/// `debian:latest` and `docker.io/library/debian:latest`; a rootfs directory is itself.
fn same_image(ran: &str, wanted: &str) -> bool {
    ran == wanted || normalize(ran) == normalize(wanted)
}

fn normalize(reference: &str) -> String {
    let r = reference
        .strip_prefix("docker.io/library/")
        .or_else(|| reference.strip_prefix("docker.io/"))
        .unwrap_or(reference);
    let last = r.rsplit('/').next().unwrap_or(r);
    if r.starts_with('/') || last.contains(':') || last.contains('@') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn parse(specs: &[&str]) -> Result<Filters, FilterError> {
        Filters::parse(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn none(_: &str) -> Option<usize> {
        None
    }

    fn web() -> Candidate<'static> {
        Candidate {
            id: "0123456789abcdef0123",
            name: Some("web-1"),
            image: "debian:latest",
            status: "running",
            ..Candidate::default()
        }
    }

    #[test]
    fn name_is_an_unanchored_regex() {
        assert!(parse(&["name=web"]).unwrap().matches(&web(), &none));
        assert!(parse(&["name=eb-"]).unwrap().matches(&web(), &none));
        assert!(parse(&["name=^web-1$"]).unwrap().matches(&web(), &none));
        assert!(parse(&["name=^/web-1$"]).unwrap().matches(&web(), &none));
        assert!(!parse(&["name=^eb"]).unwrap().matches(&web(), &none));
        assert!(!parse(&["name=web$"]).unwrap().matches(&web(), &none));
    }

    #[test]
    fn one_key_ors_different_keys_and() {
        let f = parse(&["name=db", "name=web"]).unwrap();
        assert!(f.matches(&web(), &none));
        let f = parse(&["name=web", "status=exited"]).unwrap();
        assert!(!f.matches(&web(), &none));
        let f = parse(&["name=web", "status=exited", "status=running"]).unwrap();
        assert!(f.matches(&web(), &none));
    }

    #[test]
    fn labels_and_as_docker() {
        let labels = BTreeMap::from([
            ("app".to_string(), "x".to_string()),
            ("tier".to_string(), "front".to_string()),
        ]);
        let c = Candidate {
            labels: Some(&labels),
            ..web()
        };
        assert!(parse(&["label=app"]).unwrap().matches(&c, &none));
        assert!(parse(&["label=app=x"]).unwrap().matches(&c, &none));
        assert!(!parse(&["label=app=y"]).unwrap().matches(&c, &none));
        assert!(
            parse(&["label=app=x", "label=tier"])
                .unwrap()
                .matches(&c, &none)
        );
        assert!(
            !parse(&["label=app=x", "label=zone"])
                .unwrap()
                .matches(&c, &none)
        );
        assert!(!parse(&["label=app"]).unwrap().matches(&web(), &none));
    }

    #[test]
    fn id_is_a_prefix_and_exited_a_code() {
        assert!(parse(&["id=0123"]).unwrap().matches(&web(), &none));
        assert!(!parse(&["id=1234"]).unwrap().matches(&web(), &none));
        let exited = Candidate {
            status: "exited",
            exit_code: Some(3),
            ..web()
        };
        assert!(parse(&["exited=3"]).unwrap().matches(&exited, &none));
        assert!(!parse(&["exited=0"]).unwrap().matches(&exited, &none));
    }

    #[test]
    fn ancestor_compares_references() {
        for a in ["debian", "debian:latest", "docker.io/library/debian"] {
            assert!(
                parse(&[&format!("ancestor={a}")])
                    .unwrap()
                    .matches(&web(), &none)
            );
        }
        assert!(
            !parse(&["ancestor=debian:12"])
                .unwrap()
                .matches(&web(), &none)
        );
        let rootfs = Candidate {
            image: "/srv/rootfs",
            ..web()
        };
        assert!(
            parse(&["ancestor=/srv/rootfs"])
                .unwrap()
                .matches(&rootfs, &none)
        );
    }

    #[test]
    fn ancestor_naming_a_stored_image_matches_its_layers_and_descendants() {
        let l = |b: &[u8]| Digest::of_bytes(b);
        let base = ImageLayers::new([l(b"a"), l(b"b")]);
        let child = ImageLayers::new([l(b"a"), l(b"b"), l(b"c")]);
        let found = |want: &ImageLayers| {
            let mut f = parse(&["ancestor=whatever"]).unwrap();
            let want = want.clone();
            f.resolve_ancestors(&|_| Ok::<_, ()>(Some(want.clone())))
                .unwrap();
            f
        };
        let on = |layers: &[&[u8]]| Candidate {
            // A reference the filter value does not spell: only the layers can match.
            image: "other:1",
            layers: layers.iter().map(|b| l(b)).collect(),
            ..web()
        };
        assert!(found(&base).matches(&on(&[b"a", b"b"]), &none));
        assert!(found(&base).matches(&on(&[b"a", b"b", b"c"]), &none));
        assert!(!found(&child).matches(&on(&[b"a", b"b"]), &none));
        assert!(found(&child).matches(&on(&[b"a", b"b", b"c"]), &none));
        // Below an opaque root the stack leaves lower layers out.
        assert!(found(&child).matches(&on(&[b"c"]), &none));
        assert!(!found(&base).matches(&on(&[b"c", b"b"]), &none));
        assert!(!found(&base).matches(&on(&[]), &none));
        // A layer listed twice counts at its top position.
        assert_eq!(
            ImageLayers::new([l(b"a"), l(b"b"), l(b"a")]),
            ImageLayers::new([l(b"b"), l(b"a")])
        );
        // Found in the store, the reference no longer decides.
        let debian = Candidate {
            image: "debian:latest",
            ..web()
        };
        assert!(!found(&base).matches(&debian, &none));
    }

    #[test]
    fn restart_policy_is_podmans_key() {
        let always = Candidate {
            restart_policy: "always",
            ..web()
        };
        assert!(
            parse(&["restart-policy=always"])
                .unwrap()
                .matches(&always, &none)
        );
        assert!(
            !parse(&["restart-policy=unless-stopped"])
                .unwrap()
                .matches(&always, &none)
        );
        let err = parse(&["restart-policy=sometimes"]).unwrap_err();
        assert!(err.to_string().contains("expected one of no, on-failure"));
    }

    #[test]
    fn before_and_since_are_creation_order() {
        let c = Candidate { order: 2, ..web() };
        let at = |r: &str| (r == "first").then_some(0).or((r == "last").then_some(5));
        assert!(parse(&["since=first"]).unwrap().matches(&c, &at));
        assert!(!parse(&["before=first"]).unwrap().matches(&c, &at));
        assert!(parse(&["before=last"]).unwrap().matches(&c, &at));
        assert_eq!(
            parse(&["before=a", "since=b"]).unwrap().references(),
            ["a", "b"]
        );
    }

    #[test]
    fn publish_matches_container_ports() {
        let ports = [PortMapping {
            host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            host_port: 8080,
            container_port: 80,
            proto: Proto::Tcp,
        }];
        let c = Candidate {
            ports: &ports,
            ..web()
        };
        for ok in ["publish=80", "publish=80/tcp", "publish=79-81", "expose=80"] {
            assert!(parse(&[ok]).unwrap().matches(&c, &none), "{ok}");
        }
        for no in ["publish=8080", "publish=80/udp", "publish=81-90"] {
            assert!(!parse(&[no]).unwrap().matches(&c, &none), "{no}");
        }
    }

    #[test]
    fn bad_filters_are_one_line_errors() {
        let err = |s: &str| parse(&[s]).unwrap_err().to_string();
        assert!(err("colour=red").starts_with("unknown filter key \"colour\""));
        assert_eq!(err("name"), "bad filter \"name\": expected KEY=VALUE");
        assert!(err("status=sleeping").contains("expected one of created"));
        assert!(err("exited=abc").contains("not an exit code"));
        assert!(err("name=(").contains("not a regular expression"));
        assert!(err("publish=80/sctp").contains("PORT[/PROTO]"));
        assert!(err("publish=90-80").contains("PORT[/PROTO]"));
        assert!(err("id=").contains("empty"));
        for e in ["colour=red", "name=(", "status=x"] {
            assert!(!err(e).contains('\n'), "{e}");
        }
    }
}
