//! Names that say "secret": environment variable and build argument names (`DB_PASSWORD`,
//! `GITHUB_TOKEN`, `AWS_SECRET_ACCESS_KEY`) and file names (`id_rsa`, `*.pem`, `.env`,
//! `.npmrc`, `secrets/`). The secret scanner recognises secret *values* by their shape; these
//! recognise the places people put secrets whose values have no shape (a database password).
//! Shared by the Dockerfile, compose and build-context audits.

/// Name parts that mark a variable as holding a secret.
const SECRET_PARTS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "PASS",
    "PWD",
    "SECRET",
    "SECRETS",
    "TOKEN",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "CREDS",
];

/// Pairs of adjacent parts that mark a secret (`API_KEY`, `PRIVATE_KEY`, `ACCESS_KEY`…).
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("API", "KEY"),
    ("PRIVATE", "KEY"),
    ("ACCESS", "KEY"),
    ("SECRET", "KEY"),
    ("AUTH", "KEY"),
    ("ENCRYPTION", "KEY"),
    ("SIGNING", "KEY"),
    ("MASTER", "KEY"),
    ("CLIENT", "SECRET"),
    ("AUTH", "TOKEN"),
];

/// Last parts that make the variable *about* a secret rather than the secret itself:
/// `DB_PASSWORD_FILE=/run/secrets/db` is the right way to pass one.
const NOT_A_SECRET_SUFFIXES: &[&str] = &[
    "FILE",
    "PATH",
    "DIR",
    "URL",
    "URI",
    "ENDPOINT",
    "HOST",
    "PORT",
    "TTL",
    "EXPIRY",
    "EXPIRES",
    "EXPIRATION",
    "TIMEOUT",
    "LENGTH",
    "LEN",
    "SIZE",
    "MIN",
    "MAX",
    "TYPE",
    "NAME",
    "ID",
    "HEADER",
    "ENABLED",
    "ENABLE",
    "DISABLED",
    "REQUIRED",
    "POLICY",
    "METHOD",
    "MODE",
    "VERSION",
    "ROTATION",
    "LIFETIME",
    "ALGORITHM",
    "ALGO",
    "PREFIX",
    "FORMAT",
    "COUNT",
    "ATTEMPTS",
    "RETRIES",
    "SOURCE",
    "PROVIDER",
    "STORE",
    "MOUNT",
    "TARGET",
    "ENV",
    "VAR",
    "SCHEME",
    "STRENGTH",
    "COMPLEXITY",
];

/// Whole names that look secret but are not (`PWD` is the working directory).
const NOT_SECRET_NAMES: &[&str] = &["PWD", "OLDPWD"];

/// Whether a variable name says it holds a secret (`MYSQL_ROOT_PASSWORD`, `npm_token`,
/// `AWS_SECRET_ACCESS_KEY`, `apiKey`), and not a pointer to one (`DB_PASSWORD_FILE`).
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if NOT_SECRET_NAMES.contains(&upper.as_str()) {
        return false;
    }
    let parts = name_parts(name);
    let Some(last) = parts.last() else {
        return false;
    };
    // An access key id is half of a credential pair (`AWS_ACCESS_KEY_ID`): with the secret it
    // signs requests, and alone it names the account and the key to attack.
    if parts.ends_with(&["ACCESS".into(), "KEY".into(), "ID".into()]) {
        return true;
    }
    if NOT_A_SECRET_SUFFIXES.contains(&last.as_str()) {
        return false;
    }
    // Run-together words (`PGPASSWORD`, `CLIENTSECRET`, `APITOKEN`).
    const SECRET_SUFFIXES: &[&str] = &["PASSWORD", "PASSWD", "TOKEN", "SECRET", "APIKEY"];
    // `DBPASS`, `SMTPPASS` — but not the English words that end in "pass".
    const PASS_WORDS: &[&str] = &[
        "BYPASS",
        "COMPASS",
        "SURPASS",
        "TRESPASS",
        "ENCOMPASS",
        "OVERPASS",
        "UNDERPASS",
    ];
    parts.iter().any(|p| SECRET_PARTS.contains(&p.as_str()))
        || parts.iter().any(|p| {
            SECRET_SUFFIXES
                .iter()
                .any(|s| p.len() > s.len() && p.ends_with(s))
                || (p.len() > 4 && p.ends_with("PASS") && !PASS_WORDS.contains(&p.as_str()))
        })
        || parts
            .windows(2)
            .any(|w| SECRET_PAIRS.contains(&(w[0].as_str(), w[1].as_str())))
}

/// Splits `AWS_SECRET_ACCESS_KEY`, `db-password`, `apiKey`, `client.secret` into uppercase parts.
fn name_parts(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                parts.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            parts.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_uppercase());
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

/// Whether a value written next to a secret-looking name is a real literal secret, not empty,
/// a flag (`MYSQL_RANDOM_ROOT_PASSWORD=yes`) or a placeholder pointing elsewhere.
pub fn is_literal_secret_value(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "0" | "1" | "null" | "none" | "nil"
    ) {
        return false;
    }
    // Sentinels that disable the feature rather than hold a secret (`${API_KEY:-invalid}`).
    if matches!(
        lower.as_str(),
        "invalid" | "disabled" | "disable" | "unset" | "undefined" | "empty" | "-" | "''" | "\"\""
    ) {
        return false;
    }
    // A path to a secret file (Docker secrets, mounted credentials) is the right pattern.
    if v.starts_with("/run/secrets/") || v.starts_with("/var/run/secrets/") {
        return false;
    }
    true
}

/// File and directory names whose *name* says they hold credentials: private keys, cloud and
/// package-registry credentials, `.env` files, keystores, `secrets/` directories.
pub fn is_secret_file_name(path: &str) -> bool {
    let trimmed = path.trim_end_matches('/');
    let name = trimmed.rsplit('/').next().unwrap_or(trimmed);
    let lower = name.to_ascii_lowercase();
    if SECRET_FILE_NAMES.contains(&lower.as_str()) {
        return true;
    }
    // Docker's convention for secret files (`secrets/db_password.txt`), lowercase as compose
    // examples write it: a `Secret/` or `Secrets/` source folder (PHP, C# namespaces) is code.
    if name == "secrets" || name == ".secrets" {
        return true;
    }
    if let Some(verdict) = ssh_key_name(&lower) {
        return verdict;
    }
    secret_by_shape(&lower, trimmed)
}

/// Credential file and directory names, compared exactly (lowercase).
const SECRET_FILE_NAMES: &[&str] = &[
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "identity",
    ".env",
    ".npmrc",
    ".pypirc",
    ".netrc",
    "_netrc",
    ".git-credentials",
    ".htpasswd",
    ".pgpass",
    ".my.cnf",
    ".dockercfg",
    "credentials",
    "credentials.json",
    "credentials.yml",
    "credentials.yaml",
    "client_secret.json",
    "secrets.json",
    "secrets.yml",
    "secrets.yaml",
    "secrets.toml",
    ".ssh",
    ".aws",
    ".gnupg",
    ".kube",
    "kubeconfig",
    "terraform.tfstate",
    "terraform.tfvars",
    "master.key",
    "vault-token",
    ".vault-token",
];

/// Extensions of key stores, private keys, password databases and VPN profiles (lowercase).
const SECRET_FILE_SUFFIXES: &[&str] = &[
    ".pem",
    ".key",
    ".p12",
    ".pfx",
    ".jks",
    ".keystore",
    ".ppk",
    ".kdbx",
    ".ovpn",
    ".tfstate",
];

/// An `id_…` name (lowercase) is judged by its prefix alone: an SSH private key when it starts
/// with a key type (`id_rsa_deploy`, `id_ed25519_github`), else not one, whatever its extension
/// (`id_token.pem`); `None` when the name is not of that shape, public keys (`.pub`) included.
fn ssh_key_name(lower: &str) -> Option<bool> {
    if !lower.starts_with("id_") || lower.ends_with(".pub") || lower.len() <= 3 {
        return None;
    }
    Some(
        ["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"]
            .iter()
            .any(|k| lower.starts_with(k)),
    )
}

/// Names that say "credentials" by their shape: env files (`.env.prod`, `prod.env`; not the
/// `.env.example` kind), service-account JSON, Docker's `config.json`, key-store extensions.
fn secret_by_shape(lower: &str, trimmed: &str) -> bool {
    if lower.starts_with(".env.")
        && !matches!(
            lower,
            ".env.example" | ".env.sample" | ".env.template" | ".env.dist"
        )
    {
        return true;
    }
    // `prod.env`, `agent.env`: env files named after what they configure.
    if lower.ends_with(".env") && lower.len() > 4 {
        return true;
    }
    if lower.starts_with("service-account") && lower.ends_with(".json") {
        return true;
    }
    // `.docker/config.json` holds registry auth; `config.json` alone is too common to flag.
    if lower == "config.json"
        && trimmed
            .to_ascii_lowercase()
            .ends_with(".docker/config.json")
    {
        return true;
    }
    SECRET_FILE_SUFFIXES.iter().any(|s| lower.ends_with(s)) && !lower.ends_with(".pub.pem")
}

/// Directory names whose contents are credentials by convention.
/// Only well-known names count, compared exactly: a path segment that merely says "secret"
/// (`src/Secret/Encrypter.php`) is not a credential; the secret rules judge such files by content.
const SECRET_DIRS: &[&str] = &[
    "secrets", ".secrets", ".ssh", ".aws", ".gnupg", ".kube", ".azure", ".gcloud",
];

/// Source code, bytecode and documentation: in a directory named like [`SECRET_DIRS`] they are
/// a package of that name (the Google Cloud SDK's `surface/secrets/`, a Django app `secrets/`),
/// not secret files; the secret rules still read what they hold.
const CODE_SUFFIXES: &[&str] = &[
    ".py", ".pyc", ".pyo", ".pyi", ".go", ".rs", ".js", ".mjs", ".cjs", ".ts", ".jsx", ".tsx",
    ".rb", ".java", ".class", ".kt", ".scala", ".php", ".cs", ".c", ".h", ".cc", ".cpp", ".hpp",
    ".swift", ".md", ".rst", ".html",
];

/// Whether a path is a credential file by its name or by a directory it sits in
/// (`secrets/api_keys.json`, `home/.ssh/config`, `id_rsa`).
pub fn is_secret_path(path: &str) -> bool {
    if is_secret_file_name(path) {
        return true;
    }
    let trimmed = path.trim_end_matches('/');
    let mut components: Vec<&str> = trimmed.split('/').collect();
    let Some(name) = components.pop() else {
        return false;
    };
    let lower = name.to_ascii_lowercase();
    if CODE_SUFFIXES.iter().any(|s| lower.ends_with(s)) || components.contains(&"__pycache__") {
        return false;
    }
    components.iter().any(|c| SECRET_DIRS.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_variable_names() {
        for n in [
            "MYSQL_ROOT_PASSWORD",
            "WORDPRESS_DB_PASSWORD",
            "POSTGRES_PASSWORD",
            "NPM_TOKEN",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID".replace("_ID", "").as_str(),
            "AWS_ACCESS_KEY_ID",
            "MINIO_ACCESS_KEY_ID",
            "STRIPE_API_KEY",
            "apiKey",
            "client-secret",
            "DJANGO_SECRET_KEY",
            "DB_PASS",
            "REDIS_PWD",
            "JWT_SECRET",
            "SLACK_AUTH_TOKEN",
            "PGPASSWORD",
            "GITLAB_APITOKEN",
            "DBPASS",
            "SMTP_ROOTPASS",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "PWD",
            "PATH",
            "DB_PASSWORD_FILE",
            "TOKEN_EXPIRY",
            "SECRET_NAME",
            "JAVA_HOME",
            "GPG_KEY",
            "PASSWORD_MIN_LENGTH",
            "NODE_ENV",
            "KEYCLOAK_URL",
            "SECRETARY",
            "BYPASS",
            "COMPASS_VERSION",
            "TOKENIZERS_PARALLELISM",
            "MAILCOW_PASS_SCHEME",
            "AWS_KEY_ID",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn secret_paths() {
        assert!(is_secret_path("secrets/api_keys.json"));
        assert!(is_secret_path("home/app/.aws/config"));
        assert!(is_secret_path("id_rsa"));
        assert!(!is_secret_path("src/secretary/app.py"));
        assert!(!is_secret_path("src/Secret/Encrypter.php"));
        assert!(!is_secret_path("lib/Secrets/Vault.cs"));
        assert!(!is_secret_file_name("src/Secret"));
        assert!(!is_secret_path("static/logo.txt"));
        // A package named `secrets` is code; Docker's secret files beside it are not.
        assert!(is_secret_path("run/secrets/db_password.txt"));
        assert!(is_secret_path("deploy/secrets/resources.yaml"));
        assert!(!is_secret_path("lib/surface/secrets/create.py"));
        assert!(!is_secret_path(
            "lib/secrets/__pycache__/util.cpython-312.pyc"
        ));
        assert!(!is_secret_path("secrets/README.md"));
        // A key is a key whatever its extension.
        assert!(is_secret_path("secrets/id_rsa.py.key"));
    }

    #[test]
    fn literal_values() {
        assert!(is_literal_secret_value("s3cr3t-Pa55"));
        assert!(!is_literal_secret_value(""));
        assert!(!is_literal_secret_value("yes"));
        assert!(!is_literal_secret_value("invalid"));
        assert!(!is_literal_secret_value("/run/secrets/db_password"));
    }

    #[test]
    fn secret_file_names() {
        for n in [
            "id_rsa",
            "/root/.ssh/id_ed25519",
            "deploy/id_rsa_ci",
            "server.key",
            "tls/cert-key.pem",
            ".env",
            ".env.production",
            "app/.npmrc",
            "secrets/",
            "config/secrets.yml",
            "gcp/service-account-prod.json",
            "home/.docker/config.json",
            "keystore.jks",
            ".aws",
            "deploy/agent.env",
        ] {
            assert!(is_secret_file_name(n), "{n}");
        }
        for n in [
            "id_rsa.pub",
            ".env.example",
            "src/main.rs",
            "package.json",
            "config.json",
            "keys.txt",
            "monkey",
            "README.md",
            "identity.py",
        ] {
            assert!(!is_secret_file_name(n), "{n}");
        }
    }
}
