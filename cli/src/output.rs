//! Plain-text rendering (aligned tables, key/value details) and JSON helpers.
//!
//! Server-supplied text is stripped of control characters before it reaches the terminal,
//! so a crafted name cannot inject escape sequences.

use prost_types::Timestamp;
use serde_json::Value;

const GAP: &str = "  ";

/// Columns aligned on the widest cell; the last column is not padded.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<const N: usize>(header: [&str; N]) -> Self {
        Table {
            header: header.iter().map(|title| (*title).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells are empty, extra cells are dropped).
    pub fn row<const N: usize>(&mut self, cells: [String; N]) {
        self.rows
            .push(cells.into_iter().map(|cell| clean(&cell)).collect());
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (index, width) in widths.iter().enumerate() {
                let cell = row.get(index).map_or("", String::as_str);
                if index + 1 < columns {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
                    line.push_str(GAP);
                } else {
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// "Key:  value" lines with the values aligned.
#[derive(Debug, Default)]
pub struct Details {
    rows: Vec<(&'static str, String)>,
}

impl Details {
    /// An empty list.
    pub fn new() -> Self {
        Details::default()
    }

    /// Appends a field.
    pub fn field(mut self, key: &'static str, value: impl AsRef<str>) -> Self {
        self.rows.push((key, clean(value.as_ref())));
        self
    }

    /// Appends a field only when the value is not empty.
    pub fn field_if(self, key: &'static str, value: impl AsRef<str>) -> Self {
        if value.as_ref().is_empty() {
            self
        } else {
            self.field(key, value)
        }
    }

    /// The fields as text, each line ending in a newline.
    pub fn render(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|(key, _)| key.len())
            .max()
            .unwrap_or(0)
            + 1;
        let mut out = String::new();
        for (key, value) in &self.rows {
            let label = format!("{key}:");
            out.push_str(format!("{label:<width$}{GAP}{value}").trim_end());
            out.push('\n');
        }
        out
    }
}

/// Replaces control characters (newlines, escape sequences) with spaces.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A message of the contract as JSON: its canonical protobuf JSON mapping (field names as in
/// the .proto files, enums by value name, RFC 3339 times, unset fields left out; see
/// docs/cli.md), the same for every message instead of one serialiser each.
pub fn message<M: prost::Message + prost::Name>(message: &M) -> Value {
    pressluft_proto::json::to_json(message)
        .unwrap_or_else(|error| serde_json::json!({ "error": error }))
}

/// "-" for empty values in tables.
pub fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

/// "yes" / "no".
pub fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// An optional string field: JSON `null` when empty.
pub fn opt_str(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::String(text.to_owned())
    }
}

/// A timestamp field: RFC 3339, or `null` when unset.
pub fn time(time: Option<&Timestamp>) -> Value {
    pressluft_client::labels::rfc3339(time).map_or(Value::Null, Value::String)
}

/// Every item of a paged List RPC: `all_pages!(|token| call(..., page_token: token), field)`.
#[macro_export]
macro_rules! all_pages {
    (|$token:ident| $call:expr, $field:ident) => {{
        let mut items = Vec::new();
        let mut $token = String::new();
        loop {
            let page = $call.await?.into_inner();
            items.extend(page.$field);
            if page.next_page_token.is_empty() {
                break;
            }
            $token = page.next_page_token;
        }
        items
    }};
}

/// A JSON value as a YAML document (block style; strings quoted when YAML would read them as
/// something else).
pub fn yaml(value: &Value) -> String {
    let mut out = String::new();
    yaml_value(value, 0, &mut out);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn yaml_value(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                out.push_str(&pad);
                out.push_str(&yaml_scalar_key(key));
                out.push(':');
                yaml_nested(item, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        // The first key on the dash's line, the rest aligned under it.
                        let mut nested = String::new();
                        yaml_value(item, indent + 2, &mut nested);
                        out.push(' ');
                        out.push_str(nested.trim_start());
                    }
                    _ => yaml_nested(item, indent, out),
                }
            }
        }
        scalar => {
            out.push_str(&pad);
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
}

/// After "key:" or "-": a scalar on the same line, a collection on the next lines.
fn yaml_nested(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            yaml_value(value, indent + 2, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            yaml_value(value, indent + 2, out);
        }
        scalar => {
            out.push(' ');
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
}

fn yaml_scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => yaml_string(s),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

fn yaml_scalar_key(key: &str) -> String {
    yaml_string(key)
}

/// A string plain when YAML reads it back as the same string, else double-quoted (JSON
/// escaping is valid YAML).
fn yaml_string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@' | '+'))
        && !s.starts_with(['-', '.', '@'])
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
        );
    if plain {
        s.to_owned()
    } else {
        Value::String(s.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_nests_maps_and_lists_and_quotes_what_needs_it() {
        let value = serde_json::json!({
            "id": "n1",
            "port": 22,
            "ok": true,
            "none": null,
            "when": "2026-11-26T02:00:00Z",
            "tricky": ["yes", "8.3", "a: b", ""],
            "items": [{"name": "a", "tags": []}, {"name": "b"}],
            "empty": {},
        });
        assert_eq!(
            yaml(&value),
            "empty: {}\n\
             id: n1\n\
             items:\n  - name: a\n    tags: []\n  - name: b\n\
             none: null\n\
             ok: true\n\
             port: 22\n\
             tricky:\n  - \"yes\"\n  - \"8.3\"\n  - \"a: b\"\n  - \"\"\n\
             when: \"2026-11-26T02:00:00Z\"\n"
        );
    }

    #[test]
    fn table_aligns_columns_and_trims_line_ends() {
        let mut table = Table::new(["ID", "NAME", "STATUS"]);
        table.row(["1".into(), "a-long-name".into(), "active".into()]);
        table.row(["22".into(), "b".into(), String::new()]);
        assert_eq!(
            table.render(),
            "ID  NAME         STATUS\n\
             1   a-long-name  active\n\
             22  b\n"
        );
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(Table::new(["ID", "NAME"]).render(), "ID  NAME\n");
    }

    #[test]
    fn details_align_values_and_skip_empty_optional_fields() {
        let details = Details::new()
            .field("ID", "n1")
            .field("Hostname", "web-1.example.com")
            .field_if("Message", "");
        assert_eq!(
            details.render(),
            "ID:        n1\n\
             Hostname:  web-1.example.com\n"
        );
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let mut table = Table::new(["NAME"]);
        table.row(["evil\u{1b}[2Jname\nnext".into()]);
        assert_eq!(table.render(), "NAME\nevil [2Jname next\n");
    }
}
