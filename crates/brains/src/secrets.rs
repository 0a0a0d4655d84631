//! The secrets this process knows — the API keys and `headers_env` values
//! it has sent, and the variables passed to programs under secret-looking
//! names — and their scrub from every text the brains hand to the runtime
//! to write (provider errors, programs' output and stderr).

use std::sync::Mutex;

static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Shorter values are not scrubbed: they would redact ordinary words.
const SHORTEST: usize = 8;

pub(crate) fn remember(value: &str) {
    if value.len() < SHORTEST {
        return;
    }
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|k| k == value) {
        known.push(value.to_string());
        // Longest first: a secret containing another is replaced whole.
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// A variable name that says it holds a secret (`*KEY*`, `*TOKEN*`,
/// `*SECRET*`, `*PASSWORD*`, `*CREDENTIAL*`, any case).
pub(crate) fn secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"]
        .iter()
        .any(|w| upper.contains(w))
}

/// Remembers every value of this process's environment whose name says
/// it holds a secret ([`secret_name`]): for a process that shows the
/// society's files to people (the dashboard), which scrubs them from every
/// answer.
pub fn remember_environment() {
    for (name, value) in std::env::vars_os() {
        if let (Some(name), Some(value)) = (name.to_str(), value.to_str()) {
            if secret_name(name) {
                remember(value);
            }
        }
    }
}

/// `text` with every known secret replaced by `[redacted]`.
pub fn scrub(text: &str) -> String {
    let known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for secret in known.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "[redacted]");
        }
    }
    out
}

/// [`scrub`] on bytes: unchanged unless a secret is in them.
pub(crate) fn scrub_bytes(bytes: Vec<u8>) -> Vec<u8> {
    let known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let hit = known
        .iter()
        .any(|s| bytes.windows(s.len()).any(|w| w == s.as_bytes()));
    drop(known);
    if !hit {
        return bytes;
    }
    scrub(&String::from_utf8_lossy(&bytes)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_are_redacted_and_names_recognised() {
        remember("tok-0123456789-abcdef");
        remember("short");
        assert_eq!(
            scrub("a tok-0123456789-abcdef b short"),
            "a [redacted] b short"
        );
        assert_eq!(
            scrub_bytes(b"x tok-0123456789-abcdef".to_vec()),
            b"x [redacted]".to_vec()
        );
        assert_eq!(
            scrub_bytes(b"nothing here".to_vec()),
            b"nothing here".to_vec()
        );
        assert!(secret_name("GITHUB_TOKEN") && secret_name("openai_api_key"));
        assert!(!secret_name("LANG"));
    }
}
