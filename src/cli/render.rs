//! What every human output shares: whether to colour (only on a terminal,
//! never with `NO_COLOR`) and warnings on stderr. Tables are
//! [`super::output::Table`].

use std::io::IsTerminal;

pub fn colour_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Warnings on stderr, one a line (stderr may be closed: they are not worth
/// a failure).
pub fn warn(warnings: &[String]) {
    use std::io::Write as _;
    for w in warnings {
        let _ = writeln!(std::io::stderr(), "warning: {w}");
    }
}
