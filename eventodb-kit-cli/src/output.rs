//! Output: one JSON document (`--json`) or readable text with aligned tables.

use serde::Serialize;
use serde_json::Value;

use crate::error::CliError;

/// A command's result, printable both ways.
pub(crate) trait Report: Serialize {
    /// The readable form (ends with a newline).
    fn render(&self) -> String;
}

/// A report turned into both of its forms.
#[derive(Debug)]
pub(crate) struct Rendered {
    json: Value,
    text: String,
}

impl Rendered {
    /// Renders `report`.
    pub(crate) fn new<R: Report>(report: &R) -> Self {
        Self {
            json: serde_json::to_value(report).unwrap_or_else(|error| {
                serde_json::json!({ "error": { "kind": "output", "message": error.to_string() } })
            }),
            text: report.render(),
        }
    }

    /// The form asked for.
    pub(crate) fn print(&self, json: bool) -> String {
        if json {
            format!("{}\n", self.json)
        } else {
            self.text.clone()
        }
    }
}

/// The JSON document of an error.
pub(crate) fn error_json(error: &CliError) -> String {
    let document = serde_json::json!({
        "error": { "kind": error.kind(), "message": error.to_string() }
    });
    format!("{document}\n")
}

/// A table with a header row; columns are padded to their widest cell.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|title| (*title).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells print empty).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether no row was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row.
    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self
            .header
            .iter()
            .map(|cell| cell.chars().count())
            .collect();
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate() {
                let width = cell.chars().count();
                match widths.get_mut(index) {
                    Some(current) => *current = (*current).max(width),
                    None => widths.push(width),
                }
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (index, width) in widths.iter().enumerate() {
                let cell = row.get(index).map_or("", String::as_str);
                if index > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                line.extend(std::iter::repeat_n(
                    ' ',
                    width.saturating_sub(cell.chars().count()),
                ));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// An optional number, `-` when absent.
pub(crate) fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// Seconds as a short human age (`42s`, `3m 5s`, `2h 10m`, `4d 3h`).
pub(crate) fn age(seconds: f64) -> String {
    // Whole seconds are enough for an operator; the JSON keeps the fraction.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = seconds.max(0.0).round() as u64;
    let (days, hours, minutes, secs) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut table = Table::new(&["NAME", "POSITION"]);
        table.row(vec!["projector".into(), "7".into()]);
        table.row(vec!["a".into(), "12345".into()]);
        assert_eq!(
            table.render(),
            "NAME       POSITION\nprojector  7\na          12345\n"
        );
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(age(0.2), "0s");
        assert_eq!(age(42.0), "42s");
        assert_eq!(age(185.0), "3m 5s");
        assert_eq!(age(7800.0), "2h 10m");
        assert_eq!(age(4.0 * 86_400.0 + 3.0 * 3600.0), "4d 3h");
    }

    #[test]
    fn errors_are_one_json_document() {
        let text = error_json(&CliError::NotFound("no such row".into()));
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["error"]["kind"], "not_found");
        assert_eq!(value["error"]["message"], "no such row");
    }
}
