//! Real registries for the pull tests, and the pieces around them:
//! - [`Registry`]: Debian's `docker-registry` (CNCF distribution 2.8) on a free loopback port
//!   with throwaway storage: open, with htpasswd (Basic) auth, or with token (Bearer) auth;
//! - [`TokenServer`]: a Docker token service issuing RS256 JWTs that the real registry verifies
//!   (key and certificate made with the `openssl` CLI, tokens signed with `openssl dgst`);
//! - [`Proxy`]: an HTTP proxy in front of a registry that records every request (to count blob
//!   downloads) and can tamper: corrupt a blob, serve the wrong manifest, send blobs through a
//!   redirect to another host (to check `Authorization` is not forwarded), or lie: a manifest
//!   past the size limit, a redirect loop, a blob that never ends;
//! - fixture images pushed by the tests: busybox plus one layer, and a two-platform index.
//!
//! Every process and thread started here is stopped on drop (processes by their PID).

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use sha2::Digest as _;

use super::{CREATED, busybox_layout, fixture, have, is_root, sh, tool};

/// The `service` and `issuer` the token-auth registry and [`TokenServer`] agree on.
pub const TOKEN_SERVICE: &str = "rsafe-test-registry";
pub const TOKEN_ISSUER: &str = "rsafe-test-token-issuer";

/// `sha256:<hex>` of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// The status code of `GET path` (HTTP/1.0, one connection), or None when nothing answers.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How the registry authenticates.
pub enum Auth<'a> {
    None,
    /// HTTP Basic against an htpasswd file holding this one user.
    Htpasswd {
        user: &'a str,
        pass: &'a str,
    },
    /// Bearer tokens from this token service (`pusher` is a user it accepts, for pushing).
    Token {
        server: &'a TokenServer,
        pusher: (&'a str, &'a str),
    },
}

/// A running `docker-registry`, stopped (by PID) on drop.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    push_creds: Option<String>,
}

impl Registry {
    /// Starts a registry, or returns None (after `support::have`) when docker-registry or
    /// skopeo is missing.
    pub fn start(auth: Auth<'_>) -> Option<Registry> {
        Registry::start_with(auth, None)
    }

    /// Starts a registry serving HTTPS with `tls`'s server certificate (for 127.0.0.1).
    pub fn start_tls(auth: Auth<'_>, tls: &TestCa) -> Option<Registry> {
        Registry::start_with(auth, Some(tls))
    }

    fn start_with(auth: Auth<'_>, tls: Option<&TestCa>) -> Option<Registry> {
        if !have(
            "docker-registry and skopeo",
            tool("docker-registry") && tool("skopeo"),
        ) {
            return None;
        }
        let mut last_log = String::new();
        // A port found free may be taken before the registry binds it: try a few.
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let (auth_yaml, push_creds) = match &auth {
                Auth::None => (String::new(), None),
                Auth::Htpasswd { user, pass } => {
                    let line = sh(Command::new("htpasswd").args(["-Bbn", user, pass]));
                    let file = dir.path().join("htpasswd");
                    fs::write(&file, line.trim()).unwrap();
                    (
                        format!(
                            "auth:\n  htpasswd:\n    realm: rsafe-test\n    path: {}\n",
                            file.display()
                        ),
                        Some(format!("{user}:{pass}")),
                    )
                }
                Auth::Token { server, pusher } => (
                    format!(
                        "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                        server.realm(),
                        server.cert().display()
                    ),
                    Some(format!("{}:{}", pusher.0, pusher.1)),
                ),
            };
            let tls_yaml = tls.map_or(String::new(), |t| {
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    t.dir.path().join("server.crt").display(),
                    t.dir.path().join("server.key").display()
                )
            });
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: rsafe-test\n{tls_yaml}{auth_yaml}",
                    dir.path().join("storage").display()
                ),
            )
            .unwrap();
            let log = fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("cannot start docker-registry");
            let mut reg = Registry {
                child,
                dir,
                port,
                push_creds,
            };
            if reg.wait_ready() {
                return Some(reg);
            }
            last_log = reg.log();
        }
        panic!("docker-registry did not start:\n{last_log}");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            // An HTTPS registry answers a plain request with 400: it is up all the same.
            if matches!(http_status(self.addr(), "/v2/"), Some(200 | 400 | 401)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The registry's own log (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `127.0.0.1:PORT`, the registry part of references.
    pub fn host(&self) -> String {
        self.addr().to_string()
    }

    /// `skopeo copy SOURCE docker://HOST/DEST` (e.g. `oci:/layout:latest`, `rsafe/busybox:1.0`).
    pub fn push(&self, source: &str, dest: &str, extra: &[&str]) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--dest-tls-verify=false"]).args(extra);
        if let Some(c) = &self.push_creds {
            cmd.args(["--dest-creds", c]);
        }
        sh(cmd
            .arg(source)
            .arg(format!("docker://{}/{dest}", self.host())));
    }

    fn inspect(&self, dest: &str, extra: &[&str]) -> String {
        let mut cmd = Command::new("skopeo");
        cmd.args(["inspect", "--tls-verify=false"]).args(extra);
        if let Some(c) = &self.push_creds {
            cmd.args(["--creds", c]);
        }
        sh(cmd.arg(format!("docker://{}/{dest}", self.host())))
    }

    /// The manifest digest `skopeo inspect` reports for `dest`.
    pub fn inspect_digest(&self, dest: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.inspect(dest, &[])).unwrap();
        v["Digest"].as_str().unwrap().to_string()
    }

    /// The digest of the manifest or index `dest` names, from its raw bytes.
    pub fn raw_digest(&self, dest: &str) -> String {
        sha256(self.inspect(dest, &["--raw"]).as_bytes())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway certificate authority and a server certificate it signed for 127.0.0.1, made
/// with the `openssl` CLI.
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes the CA and server certificate, or returns None (after `support::have`) without
    /// `openssl`.
    pub fn new() -> Option<TestCa> {
        if !have("openssl", tool("openssl")) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = |f: &str| dir.path().join(f);
        fs::create_dir(p("ca")).unwrap();
        sh(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=rsafe test CA", "-keyout"])
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca/ca.crt")));
        sh(Command::new("openssl")
            .args(["req", "-new", "-newkey", "rsa:2048", "-nodes"])
            .args(["-subj", "/CN=127.0.0.1", "-keyout"])
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr")));
        fs::write(
            p("server.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        sh(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-set_serial", "2", "-in"])
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca/ca.crt"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-extfile")
            .arg(p("server.ext"))
            .arg("-out")
            .arg(p("server.crt")));
        sh(Command::new("chmod").args(["-R", "a+rX"]).arg(dir.path()));
        Some(TestCa { dir })
    }

    /// A directory holding only the CA certificate (`ca.crt`), for `--cert-dir`.
    pub fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }
}

/// A request head as read off the wire.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The head re-serialised for one request on one connection (`Connection: close`).
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        for (k, v) in &self.headers {
            if !k.eq_ignore_ascii_case("connection") && !k.eq_ignore_ascii_case("keep-alive") {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }
}

/// Reads a request head; None for anything that is not plain HTTP (a TLS hello, garbage).
fn read_head(stream: &mut TcpStream) -> Option<Head> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        if buf.is_empty() && !chunk[0].is_ascii_uppercase() {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            break;
        }
        if buf.len() > 64 << 10 {
            return None;
        }
    }
    let text = String::from_utf8(buf).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Head {
        method,
        path,
        headers,
    })
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(body);
}

/// Sends `head` to `upstream` and returns its whole response (the connection is closed after
/// one request, so the response ends at EOF).
fn forward(head: &Head, upstream: SocketAddr) -> Vec<u8> {
    let mut up = TcpStream::connect(upstream).unwrap();
    up.write_all(&head.to_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    response
}

/// A thread-per-connection TCP server on a loopback address; stopped and joined on drop.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(ip: [u8; 4], handler: impl Fn(TcpStream) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind(SocketAddr::from((ip, 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let h = handler.clone();
                std::thread::spawn(move || h(conn));
            }
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One token request the token service answered.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The user that authenticated (None: anonymous).
    pub user: Option<String>,
    pub scopes: Vec<String>,
    /// Whether a token was issued (false: 401).
    pub granted: bool,
}

/// A Docker token service: RS256 JWTs carrying the certificate (`x5c`) the registry trusts.
/// Users in `users` get what they ask for; anonymous callers get `pull` only, and only when
/// `anonymous_pull`.
pub struct TokenServer {
    server: Server,
    dir: tempfile::TempDir,
    issued: Arc<Mutex<Vec<Issued>>>,
}

impl TokenServer {
    /// Starts the token service, or returns None (after `support::have`) without `openssl`.
    pub fn start(users: &[(&str, &str)], anonymous_pull: bool) -> Option<TokenServer> {
        if !have("openssl", tool("openssl")) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        sh(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=rsafe-test-token-issuer", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let users: HashMap<String, String> = users
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect();
        let issued = Arc::new(Mutex::new(Vec::new()));
        let log = issued.clone();
        let jti = AtomicUsize::new(0);
        let server = Server::start([127, 0, 0, 1], move |mut conn| {
            let Some(head) = read_head(&mut conn) else {
                return;
            };
            let (path, query) = head.path.split_once('?').unwrap_or((&head.path, ""));
            if path != "/token" {
                respond(&mut conn, "404 Not Found", &[], b"");
                return;
            }
            let scopes: Vec<String> = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .filter(|(k, _)| *k == "scope")
                .map(|(_, v)| percent_decode(v))
                .collect();
            let basic = head
                .header("authorization")
                .and_then(|a| a.strip_prefix("Basic "))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .and_then(|b| String::from_utf8(b).ok());
            let user = match &basic {
                Some(pair) => match pair.split_once(':') {
                    Some((u, p)) if users.get(u).is_some_and(|want| want == p) => {
                        Some(u.to_string())
                    }
                    _ => {
                        log.lock().unwrap().push(Issued {
                            user: None,
                            scopes,
                            granted: false,
                        });
                        respond(
                            &mut conn,
                            "401 Unauthorized",
                            &[("Content-Type", "application/json".into())],
                            br#"{"details":"incorrect username or password"}"#,
                        );
                        return;
                    }
                },
                None if anonymous_pull => None,
                None => {
                    log.lock().unwrap().push(Issued {
                        user: None,
                        scopes,
                        granted: false,
                    });
                    respond(
                        &mut conn,
                        "401 Unauthorized",
                        &[("Content-Type", "application/json".into())],
                        br#"{"details":"authentication required"}"#,
                    );
                    return;
                }
            };
            let access: Vec<serde_json::Value> = scopes
                .iter()
                .filter_map(|s| {
                    let mut parts = s.splitn(3, ':');
                    let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                    let actions: Vec<&str> = actions
                        .split(',')
                        .filter(|a| user.is_some() || *a == "pull")
                        .collect();
                    Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
                })
                .collect();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
            let claims = serde_json::json!({
                "iss": TOKEN_ISSUER, "sub": user.clone().unwrap_or_default(), "aud": TOKEN_SERVICE,
                "exp": now + 300, "nbf": now - 10, "iat": now,
                "jti": format!("rsafe-{}", jti.fetch_add(1, Ordering::SeqCst)), "access": access,
            });
            let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
            let signing_input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let signature = sign_rs256(&key, signing_input.as_bytes());
            let token = format!("{signing_input}.{}", b64(&signature));
            log.lock().unwrap().push(Issued {
                user: user.clone(),
                scopes,
                granted: true,
            });
            let body =
                serde_json::json!({"token": token, "access_token": token, "expires_in": 300});
            respond(
                &mut conn,
                "200 OK",
                &[("Content-Type", "application/json".into())],
                body.to_string().as_bytes(),
            );
        });
        Some(TokenServer {
            server,
            dir,
            issued,
        })
    }

    /// The realm URL registries send clients to.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.server.addr)
    }

    /// The certificate whose key signs the tokens (the registry's `rootcertbundle`).
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Every token request so far.
    pub fn issued(&self) -> Vec<Issued> {
        self.issued.lock().unwrap().clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear(&self) {
        self.issued.lock().unwrap().clear();
    }
}

fn sign_rs256(key: &Path, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-binary", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl dgst -sign failed");
    out.stdout
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (escaped, b[i]) {
            (Some(v), _) => {
                out.push(v);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, c) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a [`Proxy`] does besides recording.
#[derive(Debug, Clone, Default)]
pub enum Tamper {
    /// Forward faithfully.
    #[default]
    Nothing,
    /// Flip the last byte of this blob (`sha256:…`) in successful answers.
    CorruptBlob(String),
    /// Cut this blob's answer off halfway through its body (the connection just closes).
    TruncateBlob(String),
    /// When manifest `asked` (a digest) is requested, fetch manifest `served` (a tag) instead.
    ServeManifest { asked: String, served: String },
    /// Answer blob requests with a 307 to a "storage" server on another loopback address
    /// (127.0.0.2), which fetches the blob from the registry with the original request's
    /// headers (like a pre-signed storage URL) and records whether the client sent
    /// `Authorization` to it.
    RedirectBlobs,
    /// Answer every manifest request with a body one byte past rsafe's 8 MiB limit, with its
    /// `Content-Length` (`announced`) or without (the body ends when the connection closes).
    HugeManifest { announced: bool },
    /// Answer every manifest request with a redirect to itself.
    RedirectLoop,
    /// Answer this blob's request with 200, no length, and bytes until the client hangs up
    /// (256 MiB or 60 s at most).
    EndlessBlob(String),
}

/// The manifest body of [`Tamper::HugeManifest`]: valid JSON's start, then spaces up to one
/// byte past 8 MiB.
fn huge_manifest(conn: &mut TcpStream, announced: bool) {
    let mut body =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","x":""#
            .to_vec();
    body.resize((8 << 20) + 1, b' ');
    let length = if announced {
        format!("Content-Length: {}\r\n", body.len())
    } else {
        String::new()
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n{length}Connection: close\r\n\r\n"
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&body);
}

/// The answer of [`Tamper::EndlessBlob`]: a 200 without a length, then zeros until the client
/// hangs up, bounded in bytes and time.
fn endless_blob(conn: &mut TcpStream) {
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n";
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    let chunk = [0u8; 64 << 10];
    let deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..4096 {
        if Instant::now() > deadline || conn.write_all(&chunk).is_err() {
            return;
        }
    }
}

/// A request a [`Proxy`] saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Whether the request carried an `Authorization` header.
    pub authorization: bool,
    /// Whether it arrived at the redirect target rather than the proxy itself.
    pub at_storage: bool,
}

/// An HTTP proxy in front of a registry (one request per connection): records every request
/// and applies its [`Tamper`].
pub struct Proxy {
    front: Server,
    _storage: Option<Server>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr, tamper: Tamper) -> Proxy {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stash: Arc<Mutex<HashMap<usize, Head>>> = Arc::default();
        let storage = matches!(tamper, Tamper::RedirectBlobs).then(|| {
            let (seen, stash) = (seen.clone(), stash.clone());
            Server::start([127, 0, 0, 2], move |mut conn| {
                let Some(head) = read_head(&mut conn) else {
                    return;
                };
                let id = head
                    .path
                    .strip_prefix("/storage/")
                    .and_then(|i| i.parse::<usize>().ok());
                let Some(original) = id.and_then(|i| stash.lock().unwrap().remove(&i)) else {
                    respond(&mut conn, "404 Not Found", &[], b"");
                    return;
                };
                seen.lock().unwrap().push(Seen {
                    method: head.method.clone(),
                    path: original.path.clone(),
                    authorization: head.header("authorization").is_some(),
                    at_storage: true,
                });
                let _ = conn.write_all(&forward(&original, upstream));
            })
        });
        let storage_addr = storage.as_ref().map(|s| s.addr);
        let next_id = AtomicUsize::new(0);
        let front_seen = seen.clone();
        let front = Server::start([127, 0, 0, 1], move |mut conn| {
            let Some(mut head) = read_head(&mut conn) else {
                return;
            };
            front_seen.lock().unwrap().push(Seen {
                method: head.method.clone(),
                path: head.path.clone(),
                authorization: head.header("authorization").is_some(),
                at_storage: false,
            });
            let is_blob = head.method == "GET" && head.path.contains("/blobs/sha256:");
            let is_manifest = head.method == "GET" && head.path.contains("/manifests/");
            match &tamper {
                Tamper::HugeManifest { announced } if is_manifest => {
                    huge_manifest(&mut conn, *announced);
                    return;
                }
                Tamper::RedirectLoop if is_manifest => {
                    let location = head.path.clone();
                    respond(&mut conn, "302 Found", &[("Location", location)], b"");
                    return;
                }
                Tamper::EndlessBlob(digest) if head.path.ends_with(&format!("/blobs/{digest}")) => {
                    endless_blob(&mut conn);
                    return;
                }
                Tamper::RedirectBlobs if is_blob => {
                    let id = next_id.fetch_add(1, Ordering::SeqCst);
                    stash.lock().unwrap().insert(id, head);
                    let location = format!("http://{}/storage/{id}", storage_addr.unwrap());
                    respond(
                        &mut conn,
                        "307 Temporary Redirect",
                        &[("Location", location)],
                        b"",
                    );
                    return;
                }
                Tamper::ServeManifest { asked, served } => {
                    let suffix = format!("/manifests/{asked}");
                    if let Some(prefix) = head.path.strip_suffix(&suffix) {
                        head.path = format!("{prefix}/manifests/{served}");
                    }
                }
                _ => {}
            }
            let mut response = forward(&head, upstream);
            if let Tamper::CorruptBlob(digest) = &tamper
                && head.path.ends_with(&format!("/blobs/{digest}"))
                && response.starts_with(b"HTTP/1.1 200")
                && let Some(last) = response.last_mut()
            {
                *last ^= 0xff;
            }
            if let Tamper::TruncateBlob(digest) = &tamper
                && head.path.ends_with(&format!("/blobs/{digest}"))
                && let Some(body) = response.windows(4).position(|w| w == b"\r\n\r\n")
            {
                let keep = body + 4 + (response.len() - body - 4) / 2;
                response.truncate(keep);
            }
            let _ = conn.write_all(&response);
        });
        Proxy {
            front,
            _storage: storage,
            seen,
        }
    }

    /// `127.0.0.1:PORT`, to use in references instead of the registry's.
    pub fn host(&self) -> String {
        self.front.addr.to_string()
    }

    /// Every request seen so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The digests of the blobs requested from the proxy itself, in order.
    pub fn blob_gets(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "GET" && !s.at_storage)
            .filter_map(|s| s.path.split("/blobs/").nth(1).map(str::to_string))
            .collect()
    }

    /// Forgets the requests seen so far.
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

/// The descriptor `tag` names in an OCI layout's index.json, and the manifest or index it
/// points at (parsed).
pub fn layout_entry(layout: &Path, tag: &str) -> (String, serde_json::Value) {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag} in {}", layout.display()))
        .clone();
    let digest = desc["digest"].as_str().unwrap().to_string();
    let blob = layout.join("blobs/sha256").join(&digest["sha256:".len()..]);
    (
        digest,
        serde_json::from_slice(&fs::read(blob).unwrap()).unwrap(),
    )
}

/// The layer digests of the manifest `tag` names in an OCI layout.
pub fn layout_layers(layout: &Path, tag: &str) -> Vec<String> {
    let (_, manifest) = layout_entry(layout, tag);
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn copy_layout(from: &Path, to: &Path) {
    sh(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// The busybox layout plus tag `app`: `latest` with one more layer adding
/// `/etc/rsafe-app.conf` (so it shares its base layer with `latest` and `root`).
pub fn busybox_app_layout() -> PathBuf {
    let base = busybox_layout();
    fixture("oci-busybox-app", |l| {
        copy_layout(&base, l);
        let work = tempfile::tempdir().unwrap();
        let file = work.path().join("rsafe-app.conf");
        fs::write(&file, "listen = 8080\n").unwrap();
        sh(Command::new("touch").args(["-d", "@1700000000"]).arg(&file));
        let mut insert = Command::new("umoci");
        insert
            .arg("insert")
            .args([
                "--image",
                &format!("{}:latest", l.display()),
                "--tag",
                "app",
            ])
            .args(["--history.created", CREATED])
            .args([
                "--history.created_by",
                "rsafe-test: add /etc/rsafe-app.conf",
            ]);
        if !is_root() {
            insert.arg("--rootless");
        }
        sh(insert.arg(&file).arg("/etc/rsafe-app.conf"));
    })
}

/// The busybox layout plus tag `big`: `latest` with one more layer holding 120 MiB of random
/// bytes (so that its blob stays as large compressed): for kills in the middle of a blob and
/// stores too small for it.
pub fn busybox_big_layout() -> PathBuf {
    let base = busybox_layout();
    fixture("oci-busybox-big", |l| {
        copy_layout(&base, l);
        let work = tempfile::tempdir().unwrap();
        let file = work.path().join("noise");
        let mut random = fs::File::open("/dev/urandom").unwrap().take(120 << 20);
        std::io::copy(&mut random, &mut fs::File::create(&file).unwrap()).unwrap();
        let mut insert = Command::new("umoci");
        insert
            .arg("insert")
            .args([
                "--image",
                &format!("{}:latest", l.display()),
                "--tag",
                "big",
            ])
            .args(["--history.created", CREATED])
            .args(["--history.created_by", "rsafe-test: add /noise (120 MiB)"]);
        if !is_root() {
            insert.arg("--rootless");
        }
        sh(insert.arg(&file).arg("/noise"));
    })
}

/// The busybox layout plus tag `arm64` (the same image, its config saying linux/arm64) and tag
/// `multi`: an OCI index of `latest` as linux/amd64 and `arm64` as linux/arm64.
pub fn busybox_multiarch_layout() -> PathBuf {
    let base = busybox_layout();
    fixture("oci-busybox-multi", |l| {
        copy_layout(&base, l);
        sh(Command::new("umoci")
            .args(["config", "--image", &format!("{}:latest", l.display())])
            .args(["--tag", "arm64", "--architecture", "arm64", "--no-history"]));
        let entry = |tag: &str, arch: &str| {
            let index: serde_json::Value =
                serde_json::from_slice(&fs::read(l.join("index.json")).unwrap()).unwrap();
            let mut d = index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
                .unwrap()
                .clone();
            d.as_object_mut().unwrap().remove("annotations");
            d["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
            d
        };
        let multi = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [entry("latest", "amd64"), entry("arm64", "arm64")],
        });
        let bytes = serde_json::to_vec(&multi).unwrap();
        let digest = sha256(&bytes);
        fs::write(
            l.join("blobs/sha256").join(&digest["sha256:".len()..]),
            &bytes,
        )
        .unwrap();
        let mut index: serde_json::Value =
            serde_json::from_slice(&fs::read(l.join("index.json")).unwrap()).unwrap();
        index["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": digest,
                "size": bytes.len(),
                "annotations": {"org.opencontainers.image.ref.name": "multi"},
            }));
        fs::write(l.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    })
}
