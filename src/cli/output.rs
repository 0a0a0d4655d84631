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

/// A line of free text (a heading, a note under a table) cut to `width`
/// display columns with `…`; control characters become spaces, so it stays
/// one line.
pub fn fit(text: &str, width: Option<u16>) -> String {
    use unicode_width::UnicodeWidthChar;
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let Some(max) = width.map(usize::from) else {
        return line;
    };
    let w = |c: char| c.width().unwrap_or(0);
    if line.chars().map(w).sum::<usize>() <= max {
        return line;
    }
    let mut cut = String::new();
    let mut used = 1; // the ellipsis
    for c in line.chars() {
        if used + w(c) > max {
            break;
        }
        used += w(c);
        cut.push(c);
    }
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

fn one_line(cells: Vec<String>) -> Vec<String> {
    cells
        .into_iter()
        .map(|c| {
            if c.contains(char::is_control) {
                c.chars()
                    .map(|ch| if ch.is_control() { ' ' } else { ch })
                    .collect()
            } else {
                c
            }
        })
        .collect()
}

fn display_width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// A table in the house style: no borders, two spaces between columns, no
/// trailing spaces, fitted to [`width`] by cutting cells with `…` (never
/// wrapping: one record, one line, for `grep`). Columns marked
/// [`Table::wide_only`] show only with `-o wide`, like kubectl's.
pub struct Table {
    inner: comfy_table::Table,
    width: Option<u16>,
    wide: bool,
    /// `(column, up_to)` from [`Table::keep`], applied at render time, once
    /// the paddings of the visible columns are known.
    keep: Vec<(usize, u16)>,
    /// The widest cell (or header) of each column, in display columns.
    widths: Vec<usize>,
}

impl Table {
    pub fn new(header: &[&str], format: Format) -> Self {
        let mut inner = comfy_table::Table::new();
        // A header is cut like any row, never wrapped onto a second line.
        let mut head = comfy_table::Row::from(header.to_vec());
        head.max_height(1);
        inner
            .load_style(comfy_table::presets::NOTHING)
            .set_header(head)
            .set_truncation_indicator("…")
            // Cut at the width, not at the last space before it: a cell
            // never holds a control character (see `one_line`), so comfy-table
            // finds no "word" to keep whole and shows as much as fits.
            .set_delimiter('\0');
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
        Self {
            inner,
            width,
            wide: format == Format::Wide,
            keep: Vec::new(),
            widths: header.iter().map(|h| display_width(h)).collect(),
        }
    }

    /// The width this table is fitted to (`None`: not cut).
    pub fn width(&self) -> Option<u16> {
        self.width
    }

    /// Adds a row, one line high: a longer cell is cut with `…`, and a
    /// line break or tab in a cell is a space (`-o wide` cuts nothing).
    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        let cells = one_line(cells);
        self.measure(&cells);
        self.add(cells)
    }

    fn measure(&mut self, cells: &[String]) {
        for (i, cell) in cells.iter().enumerate() {
            let w = display_width(cell);
            match self.widths.get_mut(i) {
                Some(max) => *max = (*max).max(w),
                None => self.widths.push(w),
            }
        }
    }

    fn add(&mut self, cells: Vec<String>) -> &mut Self {
        let mut row = comfy_table::Row::from(cells);
        row.max_height(1);
        self.inner.add_row(row);
        self
    }

    /// Adds a row whose cell `column` is wrapped in the ANSI colour `code`
    /// when colour is enabled (only on a terminal without `NO_COLOR`, see
    /// [`super::render::colour_enabled`]).
    pub fn row_painted(
        &mut self,
        cells: Vec<String>,
        column: usize,
        code: Option<&str>,
    ) -> &mut Self {
        self.row_colours(cells, &[(column, code)])
    }

    /// [`Table::row_painted`] for several cells: `(column, code)`.
    pub fn row_colours(
        &mut self,
        cells: Vec<String>,
        paint: &[(usize, Option<&str>)],
    ) -> &mut Self {
        let mut cells = one_line(cells);
        self.measure(&cells);
        if super::render::colour_enabled() {
            for &(column, code) in paint {
                if let (Some(code), Some(cell)) = (code, cells.get_mut(column)) {
                    *cell = format!("\x1b[{code}m{cell}\x1b[0m");
                }
            }
        }
        self.add(cells)
    }

    /// Keeps column `index` whole when the table is cut to fit, up to
    /// `up_to` display columns or half the width, whichever is more (and at
    /// least that wide if it is wider): ids and states are worth more than
    /// free text, and a wide terminal shows a long id whole.
    pub fn keep(&mut self, index: usize, up_to: u16) -> &mut Self {
        self.keep.push((index, up_to));
        self
    }

    /// Shows these columns only with `-o wide`.
    pub fn wide_only(&mut self, columns: &[usize]) -> &mut Self {
        if !self.wide {
            for &i in columns {
                if let Some(c) = self.inner.column_mut(i) {
                    c.set_constraint(comfy_table::ColumnConstraint::Hidden);
                }
            }
        }
        self
    }

    /// The rendered table, one line per row, ending in a newline.
    pub fn render(&mut self) -> String {
        // Two spaces between visible columns, none at either edge.
        let last = self
            .inner
            .column_iter()
            .rposition(|c| !c.is_hidden())
            .unwrap_or(0);
        for (i, c) in self.inner.column_iter_mut().enumerate() {
            c.set_padding((0, if i >= last { 0 } else { 2 }));
        }
        if let Some(width) = self.width {
            for &(index, up_to) in &self.keep {
                let content = self.widths.get(index).copied().unwrap_or(0);
                let min = u16::try_from(content)
                    .unwrap_or(u16::MAX)
                    .min(up_to.max(width / 2));
                if let Some(c) = self.inner.column_mut(index).filter(|c| !c.is_hidden()) {
                    // A lower boundary is what comfy-table gives the column
                    // when space is short (not more), and it counts the
                    // column's padding.
                    let padding = c.padding_width();
                    c.set_constraint(comfy_table::ColumnConstraint::LowerBoundary(
                        comfy_table::Width::Fixed(min + padding),
                    ));
                }
            }
        }
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
        let mut t = Table::new(&["ID", "STATE", "NOTE"], Format::Wide);
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
        t.row(vec!["b".into(), "idle".into(), "two\nlines".into()]);
        t
    }

    #[test]
    fn wide_keeps_everything_without_trailing_spaces() {
        let out = table(None).render();
        assert_eq!(
            out,
            "ID                    STATE    NOTE\n\
             agent-with-a-long-id  running  a note that is much longer than the rest of the row\n\
             b                     idle     two lines\n"
        );
    }

    #[test]
    fn fit_cuts_free_text_to_display_columns() {
        assert_eq!(fit("short", Some(10)), "short");
        assert_eq!(fit("a b\ncdefgh", Some(6)), "a b c…");
        assert_eq!(fit("abc   defgh", Some(7)), "abc…");
        assert_eq!(fit("漢字漢字", Some(5)), "漢字…");
        assert_eq!(fit("a\tlong line", None), "a long line");
    }

    #[test]
    fn a_header_wider_than_the_terminal_stays_on_one_line() {
        let mut t = Table::new(&["IDENTIFIER", "RESTARTS", "PURPOSE"], Format::Wide);
        t.inner
            .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
            .set_width(20);
        t.width = Some(20);
        t.row(vec!["a".into(), "1".into(), "x".into()]);
        let out = t.render();
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.lines().all(|l| l.chars().count() <= 20), "{out}");
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

    #[test]
    fn wide_only_columns_show_only_in_wide() {
        for (format, expect) in [
            (Format::Table, "ID  NOTE\na   x\n"),
            (Format::Wide, "ID  STATE  NOTE\na   idle   x\n"),
        ] {
            let mut t = Table::new(&["ID", "STATE", "NOTE"], format);
            t.wide_only(&[1])
                .row(vec!["a".into(), "idle".into(), "x".into()]);
            assert_eq!(t.render(), expect);
        }
        // The last shown column has no padding, so it may use the last two
        // columns of the width.
        let mut t = Table::new(&["ID", "NOTE", "STATE"], Format::Table);
        t.inner
            .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
            .set_width(9);
        t.width = Some(9);
        t.wide_only(&[2])
            .row(vec!["a".into(), "xxxxx".into(), "idle".into()]);
        assert_eq!(t.render(), "ID  NOTE\na   xxxxx\n");
    }
}
