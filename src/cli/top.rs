//! `society top [--once] [--interval DUR] [-o json|jsonl]`: per agent, CPU,
//! memory, messages per second, queue and spend
//! (`society_runtime::client::top`). Redraws every interval; the screen is
//! cleared only on a terminal, and `-o json` streams one document a line.
//! Rates need two looks, so `--once` looks twice, an interval apart.

use super::exit::Code;
use super::output::{self, OutputArgs, Table};
use super::when;
use society_core::Layout;
use society_runtime::client::top::{self, Report};
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one sample and exit (taken over one interval).
    #[arg(long)]
    once: bool,
    /// Time between refreshes (500ms, 2s; a bare number is seconds).
    #[arg(long, default_value = "1s", value_parser = crate::cli::duration)]
    interval: Duration,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let format = args.output.format();
    let terminal = std::io::stdout().is_terminal();
    let mut before = top::sample(layout)?;
    loop {
        std::thread::sleep(args.interval);
        let after = top::sample(layout)?;
        let report = top::rates(&before, &after);
        if args.output.is_json() {
            if args.once {
                output::report(&report, format)?;
            } else {
                output::stream(&report)?;
            }
        } else {
            if !args.once {
                if terminal {
                    out!("\x1b[2J\x1b[H");
                }
                outln!(
                    "society top  {}  every {}",
                    when::stamp(&society_core::time::now_rfc3339()),
                    humantime::format_duration(args.interval)
                );
            }
            out!("{}", render(&report, format));
        }
        if args.once {
            return Ok(Code::Ok);
        }
        before = after;
    }
}

fn render(report: &Report, format: output::Format) -> String {
    if report.agents.is_empty() {
        return "no agents yet: `society spawn ROLE` creates one\n".into();
    }
    let mut table = Table::new(
        &[
            "ID", "STATE", "PID", "CPU%", "RSS", "MSG/S", "QUEUE", "SPEND",
        ],
        format,
    );
    // Ids and states whole; the numbers give way first.
    table.keep(0, 32).keep(1, 8);
    for r in &report.agents {
        table.row(vec![
            r.id.to_string(),
            r.state.clone(),
            r.pid.map_or("-".into(), |p| p.to_string()),
            r.cpu_percent.map_or("-".into(), |c| format!("{c:.1}")),
            r.rss_bytes.map_or("-".into(), size),
            format!("{:.1}", r.msgs_per_sec),
            r.queue.to_string(),
            if r.spend_usd > 0.0 {
                format!("${:.4}", r.spend_usd)
            } else {
                "-".into()
            },
        ]);
    }
    table.render()
}

/// `812K`, `23.4M`, `1.2G`.
fn size(bytes: u64) -> String {
    const K: f64 = 1024.0;
    let b = bytes as f64;
    if b < K * K {
        format!("{:.0}K", b / K)
    } else if b < K * K * K {
        format!("{:.1}M", b / K / K)
    } else {
        format!("{:.1}G", b / K / K / K)
    }
}
