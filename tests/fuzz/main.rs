//! Fuzzing every parser of untrusted bytes, on stable Rust (`cargo test --test fuzz`).
//!
//! Each `#[test]` below is one target: a corpus under `tests/fuzz-corpus/<target>/`, a
//! dictionary of its format, and a function that runs the library's public entry point on one
//! input and checks more than "no panic" (one-line errors that name the file, nothing written
//! outside a temporary directory, round trips, bounded output, redacted secrets). The engine
//! (`engine.rs`) explains the mutations, the budget (`RSAFE_FUZZ_ITERS`, `RSAFE_FUZZ_SECONDS`,
//! `RSAFE_FUZZ_SEED`) and what a failure is. `bench/fuzz.sh` is the longer soak.
//!
//! Inputs that once failed are kept in the corpus (they run first, every time) and have a named
//! regression test in `regressions.rs`.

mod engine;
#[path = "../support/hostile_layers.rs"]
mod hostile_layers;
mod image;
mod procs;
mod regressions;
mod text;

use engine::fuzz;

#[global_allocator]
static ALLOC: engine::GuardedAlloc = engine::GuardedAlloc;

/// Well-formed fake secrets the corpora carry, in token formats the secret rules report: no
/// report may show one in full.
const FAKE_SECRETS: &[&str] = &[
    "ghp_dBQQRQVHChrfDqNcM0hFHTs1X8cC03OFcXb5",
    "npm_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
];

/// Fails when `text` (a rendered report) holds one of [`FAKE_SECRETS`] as a token of its own.
/// (Glued into a longer word, the token is not one the rules can recognise, and a line quoted
/// as evidence for another rule may then show it: see the README's fuzzing findings.)
pub fn no_fake_secret(text: &str) -> Result<(), String> {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    for s in FAKE_SECRETS {
        for (at, _) in text.match_indices(s) {
            let before = text[..at].chars().next_back();
            let after = text[at + s.len()..].chars().next();
            if !word(before) && !word(after) {
                return Err(format!("a report shows the fake secret {}…", &s[..4]));
            }
        }
    }
    Ok(())
}

#[test]
fn tar_reader() {
    fuzz(&image::TAR, image::tar_reader);
}

#[test]
fn layer_unpack() {
    fuzz(&image::LAYER, image::layer_unpack);
}

#[test]
fn image_archive() {
    fuzz(&image::ARCHIVE, image::image_archive);
}

#[test]
fn docker_save_manifest() {
    fuzz(&image::DOCKER_SAVE, image::docker_save_manifest);
}

#[test]
fn oci_layout_documents() {
    for (target, doc) in image::layout_targets() {
        fuzz(&target, |input| image::oci_layout(doc, input));
    }
}

#[test]
fn dockerfile() {
    fuzz(&text::DOCKERFILE, text::dockerfile);
}

#[test]
fn compose() {
    fuzz(&text::COMPOSE, text::compose);
}

#[test]
fn dockerignore() {
    fuzz(&text::DOCKERIGNORE, text::dockerignore);
}

#[test]
fn rsafeignore() {
    fuzz(&text::RSAFEIGNORE, text::rsafeignore);
}

#[test]
fn env_file() {
    fuzz(&text::ENV_FILE, text::env_file);
}

#[test]
fn seccomp_profile() {
    fuzz(&text::SECCOMP, text::seccomp);
}

#[test]
fn policy_toml() {
    fuzz(&text::POLICY, text::policy);
}

#[test]
fn secrets_toml() {
    fuzz(&text::SECRETS_TOML, text::secrets_toml);
}

#[test]
fn image_ref() {
    fuzz(&text::IMAGE_REF, text::image_ref);
}

#[test]
fn www_authenticate() {
    fuzz(&text::WWW_AUTHENTICATE, text::www_authenticate);
}

#[test]
fn registry_response() {
    fuzz(&text::REGISTRY_RESPONSE, text::registry_response);
}

#[test]
fn auth_file() {
    fuzz(&text::AUTH_FILE, text::auth_file);
}

#[test]
fn proc_files() {
    for (target, file) in procs::targets() {
        fuzz(&target, |input| procs::proc_file(file, input));
    }
}
