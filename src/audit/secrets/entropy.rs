//! Shannon entropy of a candidate secret: random keys score high, words and placeholders low, so
//! a threshold separates `token = "9fQ2…"` from `token = "change_me_later"` without a word list.

/// Bits of information per byte of `bytes` (0.0 for an empty or single-symbol string, at most
/// `log2(len)` and at most 8.0). A random base64 string of 40 characters scores about 5, a hex
/// string about 3.7, an English word under 3.
pub fn shannon(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let len = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::shannon;

    #[test]
    fn uniform_symbols_give_log2_of_the_alphabet() {
        assert_eq!(shannon(b""), 0.0);
        assert_eq!(shannon(b"aaaaaaaa"), 0.0);
        assert!((shannon(b"abababab") - 1.0).abs() < 1e-9);
        assert!((shannon(b"0123456789abcdef") - 4.0).abs() < 1e-9);
    }

    #[test]
    fn random_keys_score_above_words() {
        let key = b"q7Zt2LmX9vBn4RcK8wEy1PdS6fHj3GaU5oNi0TlV";
        let word = b"changemechangeme";
        assert!(shannon(key) > 4.5, "{}", shannon(key));
        assert!(shannon(word) < 3.0, "{}", shannon(word));
    }
}
