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
            .map(|s| s.expose().to_owned())
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
}
