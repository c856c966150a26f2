//! Inputs the fuzzer found that once crashed or broke a property, each a named test. (The
//! inputs are also in the corpus, so every fuzz run starts with them.)

use rsafe::image::registry::auth::{Challenge, parse_challenges};

/// `parse_challenges` stepped over a non-token byte one byte at a time and then sliced the
/// header as a `str` there: a non-ASCII character after a scheme (`Basic realm2é`) panicked
/// with "byte index is not a char boundary".
#[test]
fn www_authenticate_with_non_ascii_between_tokens_does_not_panic() {
    assert_eq!(
        parse_challenges("Basic realm2\u{e9}"),
        vec![Challenge::Basic]
    );
    let c = parse_challenges("\u{e9}Bearer realm=\"https://r.example/t\"\u{2028}, Basic");
    assert_eq!(
        c,
        vec![
            Challenge::Bearer {
                realm: "https://r.example/t".into(),
                service: None,
                scope: None
            },
            Challenge::Basic
        ]
    );
}

/// An auth file whose entry is a string instead of an object (`"host": "password"`) was refused
/// with serde's message, which quotes the value: the password was printed.
#[test]
fn malformed_auth_file_error_does_not_show_the_password() {
    use rsafe::image::registry::credentials::lookup;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    // A fake credential, well-formed as one.
    let password = "fake-pw-7Qm2xV9kT4";
    std::fs::write(&path, format!(r#"{{"auths":{{"ghcr.io":"{password}"}}}}"#)).unwrap();
    let reference = "ghcr.io/o/a".parse().unwrap();
    let err = lookup(&reference, Some(&path)).unwrap_err().to_string();
    assert!(
        err.contains(&path.display().to_string()),
        "names the file: {err}"
    );
    assert!(err.contains("line 1"), "says where: {err}");
    assert!(!err.contains("fake-pw"), "shows the password: {err}");
}

/// A TOML `.rsafeignore` with a syntax error was refused with toml's multi-line message (the
/// line quoted under a caret), and a bad glob with globset's message, which repeats the pattern
/// unescaped: control characters from the file reached the terminal.
#[test]
fn rsafeignore_errors_are_one_line() {
    use rsafe::audit::ignore::IgnoreList;
    let path = std::path::Path::new("/x/.rsafeignore");
    let toml = "[[ignore]]\nrule = \"secret.*\"\nreason = \"unterminated\n";
    let err = IgnoreList::parse(toml, path).unwrap_err().to_string();
    assert!(!err.contains('\n'), "one line: {err:?}");
    assert!(
        err.starts_with("/x/.rsafeignore:3:"),
        "names file and line: {err:?}"
    );
    let glob = "[abc\u{1b}[2J # reason\n";
    let err = IgnoreList::parse(glob, path).unwrap_err().to_string();
    assert!(
        !err.chars().any(|c| c.is_control()),
        "no control characters: {err:?}"
    );
    assert!(err.starts_with("/x/.rsafeignore:1: bad pattern"), "{err:?}");
}

/// The familiar form of a Docker Hub reference dropped `library/` before any number of
/// components and `docker.io/` before a host-like one, so it parsed back as another image
/// (`docker.io/ghcr.io/app` → `ghcr.io/app`, `library/a/b` → `a/b`): the soak found it.
#[test]
fn familiar_reference_names_the_same_image() {
    use rsafe::image::reference::Reference;
    for (input, familiar) in [
        ("docker.io/library/busybox:latest", "busybox:latest"),
        ("library/a/b", "library/a/b"),
        (
            "docker.io/ghcr.io/owner/app:1",
            "docker.io/ghcr.io/owner/app:1",
        ),
        ("docker.io/localhost/app", "docker.io/localhost/app"),
        ("ghcr.io/owner/app", "ghcr.io/owner/app"),
    ] {
        let r: Reference = input.parse().unwrap();
        assert_eq!(r.to_string(), familiar, "{input}");
        let back: Reference = familiar.parse().unwrap();
        assert_eq!(
            (back.registry_host(), back.remote_repository()),
            (r.registry_host(), r.remote_repository()),
            "{input}"
        );
    }
}
