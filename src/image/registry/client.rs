//! HTTP to one repository of one registry: which scheme is allowed, the `/v2/` ping,
//! authenticated GETs with one retry after a challenge, redirects that never carry
//! `Authorization` to another host, and registry error bodies turned into one-line errors.

use std::time::Duration;

use ureq::http::{Response, Uri};
use ureq::tls::TlsConfig;
use ureq::{Agent, Body};

use super::RegistryError;
use super::auth::{self, Authenticator, Token, TokenRequest, TokenResponse};
use super::credentials::Credentials;
use crate::image::reference::Reference;

/// Redirects followed per request (registries send blobs to object storage: one or two hops).
pub const MAX_REDIRECTS: usize = 5;
/// Error bodies and token answers are small; more than this is not read.
const MAX_ERROR_BODY: u64 = 64 << 10;
const MAX_TOKEN_BODY: u64 = 1 << 20;

/// Which schemes a registry may be spoken to over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemePolicy {
    /// HTTPS only (the default for any registry not on this machine).
    HttpsOnly,
    /// HTTPS first, plain HTTP when TLS does not answer: loopback registries, or `--insecure`.
    HttpsThenHttp,
}

/// The policy for `reference`: plain HTTP is allowed only to loopback or with `insecure`.
pub fn scheme_policy(reference: &Reference, insecure: bool) -> SchemePolicy {
    if insecure || reference.is_loopback() {
        SchemePolicy::HttpsThenHttp
    } else {
        SchemePolicy::HttpsOnly
    }
}

/// Whether a URL met on the way (a redirect, a token realm) may be followed: HTTPS always,
/// plain HTTP only to a loopback host or with `insecure`.
pub fn url_allowed(url: &Uri, insecure: bool) -> bool {
    match url.scheme_str() {
        Some("https") => true,
        Some("http") => insecure || url.host().is_some_and(is_loopback_host),
        _ => false,
    }
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Resolves a `Location` header against the URL that answered with it.
pub fn resolve_location(base: &Uri, location: &str) -> Option<Uri> {
    let location = location.trim();
    if location.contains("://") {
        return location.parse().ok();
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let absolute = if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{scheme}://{authority}{dir}/{location}")
    };
    absolute.parse().ok()
}

fn same_origin(a: &Uri, b: &Uri) -> bool {
    a.scheme_str() == b.scheme_str()
        && a.authority().map(|x| x.as_str().to_ascii_lowercase())
            == b.authority().map(|x| x.as_str().to_ascii_lowercase())
}

/// A URL without its query (signed storage URLs carry credentials there), for messages.
fn printable(url: &Uri) -> String {
    format!(
        "{}://{}{}",
        url.scheme_str().unwrap_or("?"),
        url.authority().map_or("?", |a| a.as_str()),
        url.path()
    )
}

/// The registry error body `{"errors":[{"code":…,"message":…}]}` (or a token service's
/// `{"details":…}`) as (code, message), cleaned to one short printable line each.
pub fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Item>,
        details: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        code: Option<String>,
        message: Option<String>,
    }
    let Ok(parsed) = serde_json::from_slice::<Body>(body) else {
        return (None, None);
    };
    match parsed.errors.into_iter().next() {
        Some(item) => (
            item.code.map(|c| one_line(&c)),
            item.message.map(|m| one_line(&m)),
        ),
        None => (None, parsed.details.map(|d| one_line(&d))),
    }
}

fn one_line(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    clean.trim().to_string()
}

/// A connection to one repository of one registry, ready for authenticated GETs.
#[derive(Debug)]
pub struct Client {
    agent: Agent,
    base: String,
    target: String,
    scope: String,
    insecure: bool,
    auth: Authenticator,
    /// Said after a 401/403: where credentials came from or were looked for.
    unauthorized_note: String,
}

impl Client {
    /// Pings `/v2/` over the schemes the policy allows (HTTPS first, verified with `tls`) and
    /// learns the registry's authentication challenge. `unauthorized_note` is added to 401/403
    /// errors.
    pub fn connect(
        reference: &Reference,
        insecure: bool,
        credentials: Option<Credentials>,
        unauthorized_note: String,
        tls: TlsConfig,
    ) -> Result<Client, RegistryError> {
        let host = reference.registry_host().to_string();
        let repository = reference.remote_repository();
        let agent: Agent = Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("rsafe/", env!("CARGO_PKG_VERSION")))
            // Blobs are compressed already; asking for identity keeps the bytes as published.
            .accept_encoding("identity")
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .build()
            .into();
        let mut client = Client {
            agent,
            base: String::new(),
            target: format!("{host}/{repository}"),
            scope: format!("repository:{repository}:pull"),
            insecure,
            auth: Authenticator::new(credentials),
            unauthorized_note,
        };
        let schemes: &[&str] = match scheme_policy(reference, insecure) {
            SchemePolicy::HttpsOnly => &["https"],
            SchemePolicy::HttpsThenHttp => &["https", "http"],
        };
        // A plain-HTTP attempt only follows a TLS attempt that failed to connect; when both
        // fail, both reasons are told (a TLS registry with an unknown CA answers HTTP with 400).
        let mut failures = Vec::new();
        for scheme in schemes {
            let base = format!("{scheme}://{host}");
            let what = format!("ping {base}/v2/");
            let answer = client
                .send(&format!("{base}/v2/"), None, None, &what)
                .and_then(|resp| client.learn_from_ping(resp, &what));
            match answer {
                Ok(()) => {
                    client.base = base;
                    return Ok(client);
                }
                Err(RegistryError::Transport { source, .. }) => {
                    failures.push(format!("{scheme}: {source}"));
                }
                Err(other) if failures.is_empty() => return Err(other),
                Err(RegistryError::Status { status, code, .. }) => failures.push(format!(
                    "{scheme}: HTTP {status} {}{}",
                    super::reason(status),
                    code.map(|c| format!(": {c}")).unwrap_or_default()
                )),
                Err(other) => failures.push(format!("{scheme}: {other}")),
            }
        }
        Err(RegistryError::Protocol {
            target: client.target,
            what: "connect".into(),
            detail: format!("registry {host} did not answer ({})", failures.join("; ")),
        })
    }

    fn learn_from_ping(&self, resp: Response<Body>, what: &str) -> Result<(), RegistryError> {
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 => {
                let challenges = www_authenticate(&resp);
                let chosen = auth::preferred(&challenges).cloned();
                if chosen.is_none() {
                    return Err(self.protocol(
                        what,
                        "401 without a Basic or Bearer WWW-Authenticate challenge".into(),
                    ));
                }
                self.auth.set_challenge(chosen);
                Ok(())
            }
            _ => Err(self.status_error(what, resp, None)),
        }
    }

    /// `https://host` or `http://host`: where the registry answered.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `host/repository`, the prefix of every error message.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// What was learnt about authentication (challenge, credentials).
    pub fn auth(&self) -> &Authenticator {
        &self.auth
    }

    /// GETs `path` (e.g. `/v2/<repo>/manifests/<ref>`) with the credentials or token the
    /// registry asks for, retrying once after a 401 that taught something new. Any status
    /// other than 2xx is an error carrying the registry's error code.
    pub fn get(
        &self,
        path: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<Response<Body>, RegistryError> {
        let url = format!("{}{path}", self.base);
        let mut retried = false;
        loop {
            let authorization = self
                .auth
                .authorization(&self.scope, |req, creds| self.fetch_token(req, creds))?;
            let resp = self.send(&url, accept, authorization.as_deref(), what)?;
            let status = resp.status().as_u16();
            if status == 401 && !retried {
                retried = true;
                let challenges = www_authenticate(&resp);
                if self
                    .auth
                    .unauthorized(&self.scope, &challenges, authorization.as_deref())
                {
                    continue;
                }
            }
            if !(200..300).contains(&status) {
                let note = matches!(status, 401 | 403).then(|| self.unauthorized_note.clone());
                return Err(self.status_error(what, resp, note));
            }
            return Ok(resp);
        }
    }

    /// One GET, following redirects: each hop must pass [`url_allowed`], and `Authorization`
    /// is sent only while the request stays on the origin it was meant for.
    fn send(
        &self,
        url: &str,
        accept: Option<&str>,
        authorization: Option<&str>,
        what: &str,
    ) -> Result<Response<Body>, RegistryError> {
        let mut current: Uri = url
            .parse()
            .map_err(|e| self.protocol(what, format!("bad URL {url:?}: {e}")))?;
        let origin = current.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.agent.get(current.clone());
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(a) = authorization.filter(|_| same_origin(&origin, &current)) {
                req = req.header("Authorization", a);
            }
            let resp = req.call().map_err(|e| RegistryError::Transport {
                target: self.target.clone(),
                what: what.to_string(),
                source: Box::new(e),
            })?;
            if !matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            let location = header(&resp, "location")
                .ok_or_else(|| self.protocol(what, "redirect without a Location".into()))?;
            let next = resolve_location(&current, location)
                .ok_or_else(|| self.protocol(what, "redirect to an unparseable Location".into()))?;
            if !url_allowed(&next, self.insecure) {
                return Err(self.protocol(
                    what,
                    format!(
                        "refusing redirect to {} (plain HTTP to a host that is not this machine; --insecure allows it)",
                        printable(&next)
                    ),
                ));
            }
            current = next;
        }
        Err(self.protocol(what, format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// Gets a token from the realm of a Bearer challenge (anonymously, or with the user's
    /// credentials as Basic authentication).
    fn fetch_token(
        &self,
        req: &TokenRequest,
        credentials: Option<&Credentials>,
    ) -> Result<(Token, Duration), RegistryError> {
        let url = req.url();
        let realm: Uri = req
            .realm
            .parse()
            .map_err(|_| self.protocol("token", format!("bad token realm {:?}", req.realm)))?;
        let what = format!("token for {} from {}", req.scope, printable(&realm));
        if !url_allowed(&realm, self.insecure) {
            return Err(self.protocol(
                &what,
                "the token service is plain HTTP on a host that is not this machine; refusing to use it (--insecure allows it)".into(),
            ));
        }
        let basic = credentials.map(|c| c.basic_header());
        let resp = self.send(&url, Some("application/json"), basic.as_deref(), &what)?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let note = matches!(status, 401 | 403).then(|| self.unauthorized_note.clone());
            return Err(self.status_error(&what, resp, note));
        }
        let parsed: TokenResponse = resp
            .into_body()
            .into_with_config()
            .limit(MAX_TOKEN_BODY)
            .read_json()
            .map_err(|e| self.protocol(&what, format!("unreadable token answer: {e}")))?;
        parsed
            .into_token()
            .ok_or_else(|| self.protocol(&what, "the answer carries no token".into()))
    }

    /// An error for a non-2xx answer, with the registry's error code read from its body.
    pub fn status_error(
        &self,
        what: &str,
        resp: Response<Body>,
        note: Option<String>,
    ) -> RegistryError {
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .into_with_config()
            .limit(MAX_ERROR_BODY)
            .read_to_vec()
            .unwrap_or_default();
        let (code, message) = parse_error_body(&body);
        RegistryError::Status {
            target: self.target.clone(),
            what: what.to_string(),
            status,
            code,
            message,
            note,
        }
    }

    /// A [`RegistryError::Protocol`] for this registry.
    pub fn protocol(&self, what: &str, detail: String) -> RegistryError {
        RegistryError::Protocol {
            target: self.target.clone(),
            what: what.to_string(),
            detail,
        }
    }
}

/// A response header as text (absent or not ASCII: `None`).
pub fn header<'a>(resp: &'a Response<Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn www_authenticate(resp: &Response<Body>) -> Vec<auth::Challenge> {
    resp.headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(auth::parse_challenges)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn plain_http_only_for_loopback_or_insecure() {
        let r = |s: &str| s.parse::<Reference>().unwrap();
        assert_eq!(
            scheme_policy(&r("registry.example.com/app"), false),
            SchemePolicy::HttpsOnly
        );
        assert_eq!(
            scheme_policy(&r("10.0.0.5:5000/app"), false),
            SchemePolicy::HttpsOnly
        );
        assert_eq!(scheme_policy(&r("alpine"), false), SchemePolicy::HttpsOnly);
        assert_eq!(
            scheme_policy(&r("10.0.0.5:5000/app"), true),
            SchemePolicy::HttpsThenHttp
        );
        assert_eq!(
            scheme_policy(&r("127.0.0.1:5000/app"), false),
            SchemePolicy::HttpsThenHttp
        );
        assert_eq!(
            scheme_policy(&r("localhost:5000/app"), false),
            SchemePolicy::HttpsThenHttp
        );

        assert!(url_allowed(&uri("https://s3.example.com/x"), false));
        assert!(!url_allowed(&uri("http://s3.example.com/x"), false));
        assert!(url_allowed(&uri("http://s3.example.com/x"), true));
        assert!(url_allowed(&uri("http://127.0.0.1:9/x"), false));
        assert!(url_allowed(&uri("http://[::1]:9/x"), false));
        assert!(url_allowed(&uri("http://localhost/x"), false));
        assert!(!url_allowed(&uri("http://127.example.com/x"), false));
        assert!(!url_allowed(&uri("ftp://127.0.0.1/x"), true));
    }

    #[test]
    fn locations_resolve_like_a_browser() {
        let base = uri("https://reg.io:5000/v2/app/blobs/sha256:ab");
        assert_eq!(
            resolve_location(&base, "https://cdn.io/x?sig=1").unwrap(),
            uri("https://cdn.io/x?sig=1")
        );
        assert_eq!(
            resolve_location(&base, "//cdn.io/y").unwrap(),
            uri("https://cdn.io/y")
        );
        assert_eq!(
            resolve_location(&base, "/storage/z").unwrap(),
            uri("https://reg.io:5000/storage/z")
        );
        assert_eq!(
            resolve_location(&base, "other").unwrap(),
            uri("https://reg.io:5000/v2/app/blobs/other")
        );
        assert!(same_origin(&base, &uri("https://REG.io:5000/a")));
        assert!(!same_origin(&base, &uri("https://reg.io:5001/a")));
        assert!(!same_origin(&base, &uri("http://reg.io:5000/a")));
        assert_eq!(
            printable(&uri("https://cdn.io/x?X-Amz-Signature=secret")),
            "https://cdn.io/x"
        );
    }

    #[test]
    fn registry_error_bodies() {
        let (c, m) = parse_error_body(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest\nunknown","detail":{}}]}"#,
        );
        assert_eq!(c.as_deref(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(m.as_deref(), Some("manifest unknown"));
        let (c, m) = parse_error_body(br#"{"details":"incorrect username or password"}"#);
        assert_eq!(
            (c, m.as_deref()),
            (None, Some("incorrect username or password"))
        );
        assert_eq!(parse_error_body(b"<html>"), (None, None));
    }
}
