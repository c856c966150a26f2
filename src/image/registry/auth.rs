//! Registry authentication: `WWW-Authenticate` challenges and the token cache.
//!
//! A registry says how it wants to be spoken to in the `WWW-Authenticate` header of a 401:
//! - `Basic realm="…"`: send the user name and password with every request;
//! - `Bearer realm="https://auth/token",service="…",scope="repository:app:pull"`: get a token
//!   from the realm (anonymously, or with the user name and password as Basic credentials) and
//!   send `Authorization: Bearer <token>` (the Docker token protocol).
//!
//! [`Authenticator`] keeps what was learnt (the challenge, one token per scope) for the whole
//! pull, shared by the download threads; the HTTP side of fetching a token is the client's.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::credentials::Credentials;

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic authentication.
    Basic,
    /// The Docker token protocol: fetch a token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// The scheme name, for messages.
    pub fn scheme(&self) -> &'static str {
        match self {
            Challenge::Basic => "Basic",
            Challenge::Bearer { .. } => "Bearer",
        }
    }
}

/// Parses every challenge in a `WWW-Authenticate` header value (RFC 7235: a scheme followed by
/// comma-separated `name=value` or `name="quoted value"` parameters; several challenges may be
/// comma-separated in one header). Schemes other than Basic and Bearer, and Bearer challenges
/// without a realm, are left out.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    parse_raw(header)
        .into_iter()
        .filter_map(|(scheme, params)| {
            let get = |name: &str| {
                params
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            match scheme.to_ascii_lowercase().as_str() {
                "basic" => Some(Challenge::Basic),
                "bearer" => Some(Challenge::Bearer {
                    realm: get("realm").filter(|r| !r.is_empty())?,
                    service: get("service"),
                    scope: get("scope"),
                }),
                _ => None,
            }
        })
        .collect()
}

/// The challenge to answer among several: Bearer (scoped, short-lived) before Basic.
pub fn preferred(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or_else(|| challenges.first())
}

type Params = Vec<(String, String)>;

fn parse_raw(header: &str) -> Vec<(String, Params)> {
    let b = header.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let is_tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    // Bytes, not `str` slices: a skipped non-token byte may sit inside a UTF-8 character.
    let token = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && is_tchar(b[*i]) {
            *i += 1;
        }
        String::from_utf8_lossy(&b[start..*i]).into_owned()
    };
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let scheme = token(&mut i);
        if scheme.is_empty() {
            i += 1; // not a token character: skip it rather than loop
            continue;
        }
        let mut params = Vec::new();
        loop {
            skip_ws(&mut i);
            let start = i;
            let name = token(&mut i);
            skip_ws(&mut i);
            if name.is_empty() || i >= b.len() || b[i] != b'=' {
                i = start; // the next challenge's scheme, or the end
                break;
            }
            i += 1;
            skip_ws(&mut i);
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = Vec::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    v.push(b[i]);
                    i += 1;
                }
                i += 1; // closing quote
                String::from_utf8_lossy(&v).into_owned()
            } else {
                token(&mut i)
            };
            params.push((name.to_ascii_lowercase(), value));
            skip_ws(&mut i);
            if i < b.len() && b[i] == b',' {
                i += 1;
            } else {
                break;
            }
        }
        out.push((scheme, params));
    }
    out
}

/// A bearer token. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token received from a token service.
    pub fn new(token: String) -> Self {
        Token(token)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The JSON a token service answers with (`token`, or OAuth2's `access_token`).
#[derive(serde::Deserialize)]
pub struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and how long it lasts (60 s when the service does not say, as the spec says).
    pub fn into_token(self) -> Option<(Token, Duration)> {
        let t = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        Some((
            Token(t),
            Duration::from_secs(self.expires_in.unwrap_or(60).max(60)),
        ))
    }
}

/// What to ask a token service for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub realm: String,
    pub service: Option<String>,
    pub scope: String,
}

impl TokenRequest {
    /// The GET URL: the realm with `service` and `scope` added to its query.
    pub fn url(&self) -> String {
        let mut url = self.realm.clone();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(s) = &self.service {
            url.push_str(&format!("{sep}service={}", form_encode(s)));
            sep = '&';
        }
        url.push_str(&format!("{sep}scope={}", form_encode(&self.scope)));
        url
    }
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What the authenticator knows about one registry: its challenge, the user's credentials,
/// and one token per scope. Shared by the download threads.
#[derive(Debug)]
pub struct Authenticator {
    credentials: Option<Credentials>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    challenge: Option<Challenge>,
    tokens: HashMap<String, (Token, Instant)>,
}

/// Tokens are renewed this long before the service says they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

impl Authenticator {
    /// An authenticator that will use `credentials` when challenged.
    pub fn new(credentials: Option<Credentials>) -> Self {
        Authenticator {
            credentials,
            state: Mutex::new(State::default()),
        }
    }

    /// The user's credentials, if any were found.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The challenge in force (learnt from the ping or from a later 401).
    pub fn challenge(&self) -> Option<Challenge> {
        self.lock().challenge.clone()
    }

    /// Records the registry's challenge (from the `/v2/` ping).
    pub fn set_challenge(&self, challenge: Option<Challenge>) {
        self.lock().challenge = challenge;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the cache inconsistent (it is only a cache).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `Authorization` header for a request needing `scope`, fetching a token through
    /// `fetch` when the registry wants Bearer and none is cached. The lock is held while
    /// fetching, so parallel downloads share one token request.
    pub fn authorization<E>(
        &self,
        scope: &str,
        fetch: impl FnOnce(&TokenRequest, Option<&Credentials>) -> Result<(Token, Duration), E>,
    ) -> Result<Option<String>, E> {
        let mut state = self.lock();
        match state.challenge.clone() {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials.as_ref().map(|c| c.basic_header())),
            Some(Challenge::Bearer {
                realm,
                service,
                scope: asked,
            }) => {
                if let Some((token, until)) = state.tokens.get(scope)
                    && Instant::now() < *until
                {
                    return Ok(Some(format!("Bearer {}", token.0)));
                }
                let request = TokenRequest {
                    realm,
                    service,
                    scope: asked.unwrap_or_else(|| scope.to_string()),
                };
                let (token, lifetime) = fetch(&request, self.credentials.as_ref())?;
                let until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
                let header = format!("Bearer {}", token.0);
                state.tokens.insert(scope.to_string(), (token, until));
                Ok(Some(header))
            }
        }
    }

    /// Learns from a 401 answered to a request sent with `sent` (the Authorization used, if
    /// any). Returns whether retrying could succeed: a new or changed challenge, or an expired
    /// token to renew. Repeating the same credentials the registry just refused could not.
    pub fn unauthorized(&self, scope: &str, challenges: &[Challenge], sent: Option<&str>) -> bool {
        let Some(challenge) = preferred(challenges).cloned() else {
            return false;
        };
        let mut state = self.lock();
        match &challenge {
            Challenge::Basic => {
                let retry = self.credentials.is_some() && sent.is_none();
                state.challenge = Some(challenge);
                retry
            }
            Challenge::Bearer { .. } => {
                // Drop the token that was refused (unless another thread already renewed it).
                let used_cached = state
                    .tokens
                    .get(scope)
                    .is_some_and(|(t, _)| sent == Some(format!("Bearer {}", t.0).as_str()));
                if used_cached {
                    state.tokens.remove(scope);
                }
                state.challenge = Some(challenge);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_bearer_challenge() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        assert_eq!(
            parse_challenges(h),
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            }]
        );
    }

    #[test]
    fn parses_several_challenges_tokens_and_escapes() {
        let h = r#"Basic realm="Registry Realm", Bearer realm="http://h/t?x=1", service=svc, error="insufficient_scope", Newfangled a=b"#;
        let c = parse_challenges(h);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0], Challenge::Basic);
        assert_eq!(
            c[1],
            Challenge::Bearer {
                realm: "http://h/t?x=1".into(),
                service: Some("svc".into()),
                scope: None
            }
        );
        assert_eq!(preferred(&c), Some(&c[1]));
        let escaped = parse_challenges(r#"bearer realm="a\"b""#);
        assert!(matches!(&escaped[0], Challenge::Bearer { realm, .. } if realm == "a\"b"));
        assert!(parse_challenges("Bearer service=x").is_empty(), "no realm");
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges("\u{1}\u{2},,= \"").is_empty());
    }

    #[test]
    fn token_url_encodes_and_appends() {
        let r = TokenRequest {
            realm: "https://auth/token?account=me".into(),
            service: Some("reg istry".into()),
            scope: "repository:a/b:pull".into(),
        };
        assert_eq!(
            r.url(),
            "https://auth/token?account=me&service=reg%20istry&scope=repository%3Aa%2Fb%3Apull"
        );
    }

    #[test]
    fn token_response_fields() {
        let r: TokenResponse = serde_json::from_str(r#"{"access_token":"abc"}"#).unwrap();
        let (t, life) = r.into_token().unwrap();
        assert_eq!(t, Token::new("abc".into()));
        assert_eq!(life, Duration::from_secs(60));
        assert!(!format!("{t:?}").contains("abc"));
        let r: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(r.into_token().is_none());
    }

    #[test]
    fn tokens_are_cached_per_scope_and_renewed_after_refusal() {
        let auth = Authenticator::new(None);
        auth.set_challenge(Some(Challenge::Bearer {
            realm: "https://a/t".into(),
            service: None,
            scope: None,
        }));
        let fetches = std::cell::Cell::new(0);
        let fetch = |req: &TokenRequest, _: Option<&Credentials>| {
            fetches.set(fetches.get() + 1);
            Ok::<_, ()>((
                Token::new(format!("t{}-{}", fetches.get(), req.scope)),
                Duration::from_secs(300),
            ))
        };
        let h1 = auth.authorization("s1", fetch).unwrap().unwrap();
        assert_eq!(auth.authorization("s1", fetch).unwrap().unwrap(), h1);
        assert_eq!(fetches.get(), 1);
        auth.authorization("s2", fetch).unwrap();
        assert_eq!(fetches.get(), 2);
        // The registry refuses the s1 token: it is dropped and fetched again.
        assert!(auth.unauthorized(
            "s1",
            &parse_challenges(r#"Bearer realm="https://a/t""#),
            Some(&h1)
        ));
        let h1b = auth.authorization("s1", fetch).unwrap().unwrap();
        assert_ne!(h1, h1b);
        assert_eq!(fetches.get(), 3);
    }

    #[test]
    fn basic_is_retried_once_and_only_with_credentials() {
        let anon = Authenticator::new(None);
        assert!(!anon.unauthorized("s", &[Challenge::Basic], None));
        assert_eq!(anon.authorization("s", |_, _| Err(())), Ok(None));
        let creds = Credentials::new("u".into(), "p".into(), "f".into());
        let auth = Authenticator::new(Some(creds.clone()));
        assert!(auth.unauthorized("s", &[Challenge::Basic], None));
        let h = auth.authorization("s", |_, _| Err(())).unwrap();
        assert_eq!(h, Some(creds.basic_header()));
        assert!(!auth.unauthorized("s", &[Challenge::Basic], h.as_deref()));
    }
}
