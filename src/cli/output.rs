//! The output contract of every read command (documented in FORMAT.md,
//! "Command output"):
//!
//! - `-o table` (the default): a table that fits the terminal — `COLUMNS`
//!   if set, else the terminal's width; not cut when stdout is not a
//!   terminal and `COLUMNS` is unset. Cut cells end with `…`.
//! - `-o wide`: the table with every column and nothing cut.
//! - `-o json`: a *report* (one thing: `status`, `costs`, `fsck`,
//!   `case show`, `describe`) is one object; a *list* (`case list`,
//!   `approvals`, `logs`, `inbox`) is one array.
//! - `-o jsonl`: a report is the same object on one line; a list is one
//!   element per line.
//! - A stream (`--watch`, `-f`) never ends, so it cannot close an array:
//!   with `-o json` or `-o jsonl` it prints one compact document per line.
//!
//! `--json` is an alias of `-o json`.

use serde::Serialize;
use std::io::IsTerminal;

/// How a read command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table fitted to the terminal.
    Table,
    /// Every column, nothing cut.
    Wide,
    /// One JSON document: an object for a report, an array for a list.
    Json,
    /// JSON lines: a report on one line, a list one element per line.
    Jsonl,
}

/// `-o FORMAT` and its alias `--json`, for every read command.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OutputArgs {
    /// Output format: table (fits the terminal), wide (every column, nothing
    /// cut), json, jsonl. The JSON shapes are in FORMAT.md.
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        value_name = "FORMAT",
        default_value_t = Format::Table
    )]
    output: Format,
    /// Same as `-o json`.
    #[arg(long, conflicts_with = "output")]
    json: bool,
}

impl OutputArgs {
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.output
        }
    }

    /// JSON of either kind, rather than a table.
    pub fn is_json(&self) -> bool {
        matches!(self.format(), Format::Json | Format::Jsonl)
    }

    pub fn is_wide(&self) -> bool {
        self.format() == Format::Wide
    }
}

/// Prints a report (one object): pretty for `json`, one line for `jsonl`.
pub fn report<T: Serialize + ?Sized>(value: &T, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Jsonl => outln!("{}", serde_json::to_string(value)?),
        _ => outln!("{}", serde_json::to_string_pretty(value)?),
    }
    Ok(())
}

/// Prints a list: one array for `json`, one element per line for `jsonl`.
pub fn list<T: Serialize>(items: &[T], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Jsonl => {
            for item in items {
                outln!("{}", serde_json::to_string(item)?);
            }
        }
        _ => outln!("{}", serde_json::to_string_pretty(items)?),
    }
    Ok(())
}

/// Prints one document of a stream (`--watch`, `-f`) on its own line.
pub fn stream<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// The width a table must fit: `COLUMNS`, else the terminal's; `None`
/// (no limit) for `-o wide` and when stdout is not a terminal.
pub fn width(format: Format) -> Option<u16> {
    if format == Format::Wide {
        return None;
    }
    if let Some(cols) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|&c| c > 0)
    {
        return Some(cols);
    }
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(&stdout).map(|(w, _)| w.0)
}

/// A table in the house style: no borders, two spaces between columns, no
/// trailing spaces, fitted to [`width`] by cutting cells with `…` (never
/// wrapping: one record, one line, for `grep`).
pub struct Table {
    inner: comfy_table::Table,
    width: Option<u16>,
}

impl Table {
    pub fn new<const N: usize>(header: [&str; N], format: Format) -> Self {
        let mut inner = comfy_table::Table::new();
        inner
            .load_style(comfy_table::presets::NOTHING)
            .set_header(header.to_vec())
            .set_truncation_indicator("…");
        // Two spaces between columns and none at either edge.
        for (i, c) in inner.column_iter_mut().enumerate() {
            c.set_padding((0, if i + 1 == N { 0 } else { 2 }));
        }
        let width = width(format);
        match width {
            Some(w) => {
                inner
                    .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
                    .set_width(w);
            }
            None => {
                inner.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
            }
        }
        Self { inner, width }
    }

    /// Adds a row; `paint(column)` may colour a cell (only on a terminal
    /// without `NO_COLOR`, see [`super::render::colour_enabled`]).
    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        let mut row = comfy_table::Row::from(cells);
        row.max_height(1);
        self.inner.add_row(row);
        self
    }

    /// Adds a row whose cell `column` is wrapped in the ANSI colour `code`
    /// when colour is enabled.
    pub fn row_painted(
        &mut self,
        mut cells: Vec<String>,
        column: usize,
        code: Option<&str>,
    ) -> &mut Self {
        if let (Some(code), true, Some(cell)) =
            (code, super::render::colour_enabled(), cells.get_mut(column))
        {
            *cell = format!("\x1b[{code}m{cell}\x1b[0m");
        }
        self.row(cells)
    }

    /// Keeps column `index` at least `min` characters wide when the table
    /// is cut to fit (ids and states are worth more than free text).
    pub fn keep(&mut self, index: usize, min: u16) -> &mut Self {
        if self.width.is_some() {
            if let Some(c) = self.inner.column_mut(index) {
                // The constraint counts the column's padding.
                let padding = c.padding_width();
                c.set_constraint(comfy_table::ColumnConstraint::LowerBoundary(
                    comfy_table::Width::Fixed(min + padding),
                ));
            }
        }
        self
    }

    /// The rendered table, one line per row, ending in a newline.
    pub fn render(&mut self) -> String {
        let mut out = String::new();
        for line in self.inner.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn table(width: Option<u16>) -> Table {
        let mut t = Table::new(["ID", "STATE", "NOTE"], Format::Wide);
        if let Some(w) = width {
            t.inner
                .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
                .set_width(w);
            t.width = Some(w);
        }
        t.row(vec![
            "agent-with-a-long-id".into(),
            "running".into(),
            "a note that is much longer than the rest of the row".into(),
        ]);
        t.row(vec!["b".into(), "idle".into(), String::new()]);
        t
    }

    #[test]
    fn wide_keeps_everything_without_trailing_spaces() {
        let out = table(None).render();
        assert_eq!(
            out,
            "ID                    STATE    NOTE\n\
             agent-with-a-long-id  running  a note that is much longer than the rest of the row\n\
             b                     idle\n"
        );
    }

    #[test]
    fn fitted_cuts_with_an_ellipsis_on_one_line() {
        let out = table(Some(50)).keep(0, 20).render();
        assert_eq!(out.lines().count(), 3, "{out}");
        for line in out.lines() {
            assert!(line.chars().count() <= 50, "{line:?} is wider than 50");
            assert_eq!(line, line.trim_end());
        }
        assert!(out.contains("agent-with-a-long-id"), "{out}");
        assert!(out.contains('…'), "{out}");
    }
}
