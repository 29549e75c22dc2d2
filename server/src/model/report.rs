//! What a playbook reports back (`pressluft_result`) is read from a node whose files and
//! database a tenant may control: a plugin header, a release directory name, a version
//! string. Before any of it is stored, shown or handed to a later job it is brought into a
//! bounded shape here, once for every job type: nesting, sizes and string lengths capped,
//! control characters (terminal escapes included) removed. Job-specific readers then check
//! the fields they use (release names, sizes, checksums) on top of this.

use serde_json::{Map, Value};

/// Deepest nesting kept; deeper values become null.
const MAX_DEPTH: usize = 8;
/// Longest string kept, in characters (a drift fingerprint's hashes are short).
const MAX_STRING: usize = 4096;
/// Most items kept of one array or object.
const MAX_ITEMS: usize = 20_000;

/// `report` in a bounded, printable shape.
pub fn clean_report(report: &Value) -> Value {
    clean(report, 0)
}

fn clean(value: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match value {
        Value::String(text) => Value::String(clean_text(text)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .take(MAX_ITEMS)
                .map(|item| clean(item, depth + 1))
                .collect(),
        ),
        Value::Object(map) => {
            let mut cleaned = Map::new();
            for (key, item) in map.iter().take(MAX_ITEMS) {
                cleaned.insert(clean_text(key), clean(item, depth + 1));
            }
            Value::Object(cleaned)
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
    }
}

/// `text` without control characters (newlines and tabs become spaces), at most
/// [`MAX_STRING`] characters.
pub fn clean_text(text: &str) -> String {
    text.chars()
        .take(MAX_STRING)
        .filter_map(|c| match c {
            '\n' | '\t' | '\r' => Some(' '),
            c if c.is_control() => None,
            // Bidirectional overrides make text read differently than it is.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => None,
            c => Some(c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strings_lose_control_characters_and_are_capped() {
        assert_eq!(clean_text("Akismet\u{1b}[2J\u{7}"), "Akismet[2J");
        assert_eq!(clean_text("a\nb\tc"), "a b c");
        assert_eq!(clean_text("\u{202e}gnp.exe"), "gnp.exe");
        assert_eq!(clean_text(&"x".repeat(10_000)).len(), MAX_STRING);
    }

    #[test]
    fn shapes_are_bounded_and_ordinary_reports_pass_unchanged() {
        let ordinary = json!({
            "release": {"name": "0192-abc", "source_kind": "wordpress", "healthy": true},
            "size": 12345,
            "items": [{"kind": "option", "name": "blogname", "hash": "ab12"}],
        });
        assert_eq!(clean_report(&ordinary), ordinary);
        let mut deep = json!("bottom");
        for _ in 0..20 {
            deep = json!({ "d": deep });
        }
        let cleaned = clean_report(&deep);
        let mut level = &cleaned;
        let mut depth = 0;
        while let Some(next) = level.get("d") {
            level = next;
            depth += 1;
        }
        assert!(depth <= MAX_DEPTH + 1, "{depth}");
        let wide = Value::Array(vec![json!(1); MAX_ITEMS + 5]);
        assert_eq!(
            clean_report(&wide).as_array().map(Vec::len),
            Some(MAX_ITEMS)
        );
        assert_eq!(
            clean_report(&json!({"k\u{0}ey": "v\u{1b}"})),
            json!({"key": "v"})
        );
    }
}
