//! `society memory AGENT query TEXT [--k N]` and `memory AGENT list`: see
//! `society_runtime::client::memory`. `query` is a report (`-o json` is one
//! object: `hits`, `index`, `total`); `list` is a list (an array of memories).

use super::exit::Code;
use super::output::{self, OutputArgs, Table};
use super::table;
use society_core::{AgentId, Layout};
use society_runtime::client::memory;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The agent whose memory to read.
    agent: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// What the agent would recall for TEXT: the best memories with their
    /// score, its BM25 and recency parts, and the terms matched.
    #[command(after_help = examples!(
        "society memory writer query dragon fire",
        "society memory writer query \"the bible\" --k 10 -o json | jq '.hits[] | {score, text}'"
    ))]
    Query {
        /// The query (terms: runs of letters and digits, any case).
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        /// How many memories (1 to 100).
        #[arg(long, default_value_t = society_core::memory::DEFAULT_K)]
        k: usize,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Every memory of the agent, oldest first.
    #[command(after_help = examples!(
        "society memory writer list",
        "society memory writer list -o jsonl | jq -r .text"
    ))]
    List {
        #[command(flatten)]
        output: OutputArgs,
    },
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let agent = AgentId::new(args.agent)?;
    match args.command {
        Command::Query { text, k, output } => query(layout, &agent, &text.join(" "), k, &output),
        Command::List { output } => list(layout, &agent, &output),
    }
}

fn query(
    layout: &Layout,
    agent: &AgentId,
    text: &str,
    k: usize,
    output: &OutputArgs,
) -> anyhow::Result<Code> {
    let recall = memory::query(layout, agent, text, k)?;
    let format = output.format();
    if output.is_json() {
        output::report(&recall, format)?;
        return Ok(Code::Ok);
    }
    if recall.hits.is_empty() {
        outln!(
            "{agent} recalls nothing for {text:?} ({} memories)",
            recall.total
        );
        return Ok(Code::Ok);
    }
    let mut t = Table::new(
        &[
            "#", "SCORE", "BM25", "RECENCY", "AGE", "TAGS", "MATCHED", "TEXT",
        ],
        format,
    );
    t.wide_only(&[6]);
    for (i, h) in recall.hits.iter().enumerate() {
        t.row(vec![
            (i + 1).to_string(),
            format!("{:.3}", h.score),
            format!("{:.3}", h.bm25),
            format!("{:.3}", h.recency),
            table::age(&h.memory.ts),
            h.memory.tags.join(","),
            h.matched.join(","),
            table::truncate(&h.memory.text, 200),
        ]);
    }
    out!("{}", t.render());
    Ok(Code::Ok)
}

fn list(layout: &Layout, agent: &AgentId, output: &OutputArgs) -> anyhow::Result<Code> {
    let all = memory::list(layout, agent)?;
    let format = output.format();
    if output.is_json() {
        output::list(&all, format)?;
        return Ok(Code::Ok);
    }
    if all.is_empty() {
        outln!("{agent} remembers nothing yet");
        return Ok(Code::Ok);
    }
    let mut t = Table::new(&["ID", "AGE", "CASE", "TAGS", "TEXT"], format);
    t.keep(0, 26);
    for m in &all {
        t.row(vec![
            m.id.clone(),
            table::age(&m.ts),
            m.case.as_ref().map_or("-".into(), ToString::to_string),
            m.tags.join(","),
            table::truncate(&m.text, 200),
        ]);
    }
    out!("{}", t.render());
    Ok(Code::Ok)
}
