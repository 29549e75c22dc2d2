//! Removes secret values from output before it is stored or shown.

use crate::secrets::Secret;

/// Replaces every known secret value with `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    needles: Vec<String>,
}

/// Values shorter than this are not treated as secrets (they would mask ordinary text).
const MIN_SECRET_LEN: usize = 6;

impl Redactor {
    pub fn new(secrets: &[Secret]) -> Self {
        let mut needles: Vec<String> = secrets
            .iter()
            .map(Secret::expose)
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .flat_map(encoded_forms)
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        // Longest first, so a secret containing another is replaced whole.
        needles.sort_by_key(|s| std::cmp::Reverse(s.len()));
        needles.dedup();
        Self { needles }
    }

    /// `text` with every secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), "***");
            }
        }
        out
    }
}

/// The ways a secret shows up in output: as itself, JSON-escaped, percent-encoded (URLs,
/// rclone and curl), and base64 (standard and URL-safe, padded or not) at each of the three
/// alignments it can have inside a longer base64 text (HTTP basic auth, config blobs).
fn encoded_forms(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let mut forms = vec![secret.to_owned()];
    if let Ok(json) = serde_json::to_string(secret) {
        forms.push(json.trim_matches('"').to_owned());
    }
    forms.push(percent_encoded(secret));
    for engine in [STANDARD, URL_SAFE] {
        for offset in 0..3usize {
            let mut bytes = vec![0u8; offset];
            bytes.extend_from_slice(secret.as_bytes());
            let encoded = engine.encode(&bytes);
            // Characters that depend only on the secret's bytes: after the ones the leading
            // bytes touch, before the one that the next (unknown) byte would change.
            let start = (offset * 8).div_ceil(6);
            let end = (bytes.len() * 8) / 6;
            if let Some(inner) = encoded.get(start..end) {
                forms.push(inner.to_owned());
            }
        }
    }
    forms.sort();
    forms.dedup();
    forms
}

/// `text` with every byte outside the URL-unreserved set as `%XX`.
fn percent_encoded(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_everywhere() {
        let r = Redactor::new(&[
            Secret::new("hunter22"),
            Secret::new("abc"),
            Secret::new("hunter22-long"),
        ]);
        assert_eq!(r.redact("pw=hunter22 and hunter22-long"), "pw=*** and ***");
        assert_eq!(
            r.redact("abc stays"),
            "abc stays",
            "too short to be a secret"
        );
    }

    #[test]
    fn encoded_forms_of_a_secret_are_replaced_too() {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let secret = "s3cr\"et/+pass word";
        let r = Redactor::new(&[Secret::new(secret)]);
        let json = serde_json::to_string(&serde_json::json!({ "pw": secret })).expect("json");
        assert!(!r.redact(&json).contains("s3cr"), "{}", r.redact(&json));
        let url = format!("https://u:{}@host/", percent_encoded(secret));
        assert!(!r.redact(&url).contains("s3cr"), "{}", r.redact(&url));
        for prefix in ["", "u", "us", "use"] {
            let basic = STANDARD.encode(format!("{prefix}:{secret}"));
            let shown = r.redact(&format!("Authorization: Basic {basic}"));
            assert!(shown.contains("***"), "{prefix}: {shown}");
            let whole = URL_SAFE_NO_PAD.encode(format!("{prefix}{secret}tail"));
            assert!(r.redact(&whole).contains("***"), "{prefix}: {whole}");
        }
    }
}
