//! `society tree [-o FORMAT]`: the organisation, the orchestrator at the
//! root, each member with its state, inbox backlog and the escalations and
//! approvals waiting at it (`society_runtime::client::tree`). A report:
//! `-o json` is the `{root, pending, members}` object of FORMAT.md.

use super::exit::Code;
use super::output::{self, OutputArgs};
use society_core::Layout;
use society_runtime::client::tree::{self, Member, Waiting};
use std::fmt::Write;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let tree = tree::tree(layout)?;
    if args.output.is_json() {
        output::report(&tree, args.output.format())?;
        return Ok(Code::Ok);
    }
    let mut out = format!("{}{}\n", tree.root, waiting(&tree.pending));
    let last = tree.members.len().saturating_sub(1);
    for (i, m) in tree.members.iter().enumerate() {
        member(&mut out, m, "", i == last);
    }
    out!("{out}");
    Ok(Code::Ok)
}

fn member(out: &mut String, m: &Member, prefix: &str, last: bool) {
    let (branch, more) = if last {
        ("└─ ", "   ")
    } else {
        ("├─ ", "│  ")
    };
    let inbox = if m.inbox_pending > 0 {
        format!("  inbox {}", m.inbox_pending)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{prefix}{branch}{}  {}  {}{inbox}{}",
        m.id,
        m.role,
        m.state,
        waiting(&m.pending)
    );
    let next = format!("{prefix}{more}");
    let end = m.members.len().saturating_sub(1);
    for (i, c) in m.members.iter().enumerate() {
        member(out, c, &next, i == end);
    }
}

/// `  waiting: 1 escalation (w1, w2), 1 approval (w3)`.
fn waiting(items: &[Waiting]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let list: Vec<String> = items
        .iter()
        .map(|w| format!("{} {} ({})", w.kind, w.item, w.parties.join(", ")))
        .collect();
    format!("  waiting: {}", list.join("; "))
}
