//! `society spawn ROLE [--id ID] [--brain KIND] [--keep-alive] [--wait]
//! [--purpose TEXT [--tag T]... [--fresh] [--explain]] [-o FORMAT]`.

use super::daemon::{start_for, NoStart};
use super::exit::coded;
use super::exit::Code;
use super::output::{self, Format, OutputArgs, Table};
use society_core::Layout;
use society_runtime::client::{agents, reuse};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The agent's role (a [roles.ROLE] template in society.toml applies if present).
    role: String,
    /// Agent id (default: ROLE-N, the first free N).
    #[arg(long, conflicts_with = "purpose")]
    id: Option<String>,
    /// Brain kind; overrides the role template (configure a script, command
    /// or llm brain in society.toml's [roles.ROLE]).
    #[arg(long, value_name = "KIND", value_parser = clap::builder::PossibleValuesParser::new(society_brains::KINDS))]
    brain: Option<String>,
    /// Keep the process running when idle.
    #[arg(long)]
    keep_alive: bool,
    /// The work this agent is for: reuse the dormant folder of ROLE whose
    /// experience matches it best (its state archived, its skills and
    /// memory kept), or make a new one if none matches.
    #[arg(long, value_name = "TEXT")]
    purpose: Option<String>,
    /// A domain of the purpose (repeatable); a shared tag weighs most.
    #[arg(long = "tag", value_name = "TAG", requires = "purpose", value_parser = tag)]
    tags: Vec<String>,
    /// A new folder even if a dormant one matches.
    #[arg(long, requires = "purpose")]
    fresh: bool,
    /// Print every candidate folder's score, term by term.
    #[arg(long, requires = "purpose")]
    explain: bool,
    /// Wait until the agent process is up.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits (30s, 2m; a bare number is seconds).
    #[arg(long, default_value = "30s", value_parser = crate::cli::duration)]
    timeout: Duration,
    #[command(flatten)]
    start: NoStart,
    #[command(flatten)]
    output: OutputArgs,
}

/// A tag is one word: letters, digits, `-`, `_`, `.`; compared lowercased.
fn tag(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.chars().count() <= 64
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(text.to_lowercase())
    } else {
        Err(format!(
            "invalid tag {text:?}: a tag is one word of letters, digits, '-', '_' or '.' (at most 64)"
        ))
    }
}

/// `-o json`: what the spawn did.
#[derive(serde::Serialize)]
struct Report<'a> {
    id: String,
    reused: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_purpose: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    archive: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skills_preserved: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_reset: Option<&'a [String]>,
    updated: bool,
    candidates: &'a [reuse::Candidate],
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    if args.purpose.as_deref().is_some_and(|p| p.trim().is_empty()) {
        return Err(coded(
            Code::Usage,
            "--purpose is empty: say what the agent is for",
        ));
    }
    let req = agents::Spawn {
        role: args.role,
        id: args.id,
        brain: args.brain,
        keep_alive: args.keep_alive,
        purpose: args.purpose,
        tags: args.tags,
        fresh: args.fresh,
    };
    let spawned = agents::spawn(layout, &req)?;
    if spawned.updated {
        note!("updated the config of existing agent {}", spawned.id);
    }
    let running = start_for(layout, args.start.no_start)?;
    if args.wait && !running {
        return Err(coded(
            Code::Usage,
            format!("{} is spawned, but --wait needs a running supervisor: drop --no-start, or run `society up`", spawned.id),
        ));
    }
    if args.wait {
        agents::wait_up(layout, &spawned.id, args.timeout, 0)?;
    }
    let format = args.output.format();
    if args.output.is_json() {
        let r = spawned.reused.as_ref();
        let report = Report {
            id: spawned.id.to_string(),
            reused: r.is_some(),
            previous_purpose: r.and_then(|r| r.previous.as_deref()),
            archive: r.map(|r| r.archive.as_str()),
            skills_preserved: r.map(|r| r.skills_preserved.as_slice()),
            state_reset: r.map(|r| r.state_reset.as_slice()),
            updated: spawned.updated,
            candidates: &spawned.candidates,
        };
        output::report(&report, format)?;
        return Ok(Code::Ok);
    }
    if args.explain {
        explain(&spawned.candidates, format)?;
    }
    if req.purpose.is_some() {
        match &spawned.reused {
            Some(r) => note!(
                "reused {} (previous purpose: {}); its state is in {}",
                r.agent,
                r.previous.as_deref().unwrap_or("none"),
                layout.agent(&r.agent).dir.join(&r.archive).display()
            ),
            None => note!("new folder {}", spawned.id),
        }
    }
    outln!("{}", spawned.id);
    Ok(Code::Ok)
}

/// One row per candidate folder: each term's points and what matched.
fn explain(candidates: &[reuse::Candidate], format: Format) -> anyhow::Result<()> {
    if candidates.is_empty() {
        outln!("no folder of this role exists: a new one is made");
        return Ok(());
    }
    let mut t = Table::new(
        &[
            "AGENT",
            "DORMANT",
            "DOMAIN",
            "SKILL",
            "TECH",
            "SUCCESS",
            "RECENCY",
            "EXPERIENCE",
            "TOTAL",
            "MATCHED",
        ],
        format,
    );
    let pts = |p: f64| format!("{p:.1}");
    for c in candidates {
        let s = &c.score;
        let mut matched: Vec<String> = Vec::new();
        for (name, term) in [
            ("domain", &s.domain),
            ("skill", &s.skill),
            ("tech", &s.technology),
        ] {
            if !term.matched.is_empty() {
                matched.push(format!("{name}: {}", term.matched.join(",")));
            }
        }
        if matched.is_empty() {
            matched.push("nothing (not reused: another domain)".into());
        }
        t.row(vec![
            c.agent.to_string(),
            c.not_dormant
                .clone()
                .map_or("yes".into(), |why| format!("no: {why}")),
            pts(s.domain.points),
            pts(s.skill.points),
            pts(s.technology.points),
            pts(s.success_rate.points),
            pts(s.recency.points),
            pts(s.experience.points),
            pts(s.total),
            matched.join("; "),
        ]);
    }
    out!("{}", t.render());
    Ok(())
}
