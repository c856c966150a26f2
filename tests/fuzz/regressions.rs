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
