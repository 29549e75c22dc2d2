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

#[cfg(test)]
mod tests {
    use super::*;

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
