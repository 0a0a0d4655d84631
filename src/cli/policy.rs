//! `society policy show [--role ROLE] [-o FORMAT]` and `society policy set
//! KEY VALUE`: the governance policy (`[autonomy]`, `[learning]`,
//! `[debate]`) the agents decide by, and the orchestrator's changes to it
//! (see `society_runtime::governance`).
//!
//! `show` prints what agents read — `policy.json` — or, before any
//! supervisor or `set` has published one, what would be published:
//! `society.toml` with the logged changes applied. `set` works with the
//! supervisor up or down: it logs the change in `policy.jsonl` and
//! republishes `policy.json` itself, and agents read it at each decision.

use super::exit::{coded, coded_hint, Code};
use super::output::{self, OutputArgs, Table};
use anyhow::Context as _;
use serde_json::{json, Value};
use society_core::state::AgentConfig;
use society_core::{atomic, Layout};
use society_runtime::config::SocietyConfig;
use society_runtime::governance::{self, Governance};
use std::collections::BTreeSet;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The policy in effect: the base values, each role's overrides, the version and the change log.
    #[command(after_help = examples!(
        "society policy show",
        "society policy show --role director",
        "society policy show -o json | jq '.roles.director.autonomy.baselines'"
    ))]
    Show(ShowArgs),
    /// Change one policy value (validated, logged in policy.jsonl, published at once).
    ///
    /// KEY is `<table>.<key>` or `<table>.role.<role>.<key>`, the table one of
    /// autonomy, learning, debate; map keys go one level deeper
    /// (`autonomy.baselines.lighting`). VALUE is JSON (`0.7`, `true`,
    /// `["shot"]`, `"5m"`), or a bare word taken as a string. A value out of
    /// range is refused and nothing is logged.
    #[command(after_help = examples!(
        "society policy set autonomy.impact_max 0.7",
        "society policy set autonomy.role.director.baselines.lighting autonomous",
        "society policy set debate.time_limit 2m",
        "society policy set learning.share_with '[\"dp\"]'"
    ))]
    Set(SetArgs),
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Only this role's resolved policy.
    #[arg(long, value_name = "ROLE")]
    role: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// Dotted key: autonomy.impact_max, debate.role.editor.threshold, …
    key: String,
    /// The new value: JSON, or a bare word taken as a string.
    #[arg(allow_hyphen_values = true)]
    value: String,
}

pub fn run(layout: &Layout, cmd: Command) -> anyhow::Result<Code> {
    match cmd {
        Command::Show(args) => show(layout, args),
        Command::Set(args) => set(layout, args),
    }
}

/// The policy as published, else as it would be; and where it came from.
fn in_effect(
    layout: &Layout,
    config: &SocietyConfig,
) -> anyhow::Result<(Governance, &'static str)> {
    let (fresh, warnings) = governance::effective(layout, &config.governance())?;
    for w in &warnings {
        note!("warning: {w}");
    }
    if !layout.policy_json().exists() {
        return Ok((fresh, "society.toml"));
    }
    let published = governance::load(layout)?;
    if published != fresh {
        note!(
            "note: society.toml differs from the published policy.json; \
             `society config reload` (or the next `society up`) publishes it"
        );
    }
    Ok((published, "policy.json"))
}

fn load_config(layout: &Layout) -> anyhow::Result<SocietyConfig> {
    SocietyConfig::load(&layout.society_toml()).context("failed to read the policy's base")
}

fn show(layout: &Layout, args: ShowArgs) -> anyhow::Result<Code> {
    let config = load_config(layout)?;
    let (g, source) = in_effect(layout, &config)?;
    let roles = match &args.role {
        Some(r) => {
            society_core::id::validate_role(r)
                .map_err(|_| coded(Code::Invalid, format!("invalid role {r:?}")))?;
            vec![r.clone()]
        }
        None => known_roles(layout, &config, &g),
    };
    let mut doc = governance::show(&g, &roles);
    let changes = governance::changes(layout)?;
    doc["source"] = json!(source);
    doc["changes"] = serde_json::to_value(&changes)?;
    if let Some(r) = &args.role {
        if doc["roles"].get(r).is_none() {
            return Err(coded(
                Code::Invalid,
                format!(
                    "role {r}'s policy does not resolve: {}",
                    g.resolve(Some(r)).err().unwrap_or_default()
                ),
            ));
        }
    }
    let format = args.output.format();
    if args.output.is_json() {
        output::report(&doc, format)?;
        return Ok(Code::Ok);
    }
    outln!(
        "policy version {} (from {source}; {} change(s) logged)",
        doc["version"],
        changes.len()
    );
    let base = flatten(&doc["policy"]);
    let mut t = Table::new(&["KEY", "VALUE"], format);
    t.keep(0, 40);
    match &args.role {
        Some(r) => {
            for (k, v) in flatten(&doc["roles"][r]) {
                let mark = if base.iter().any(|(bk, bv)| *bk == k && *bv == v) {
                    ""
                } else {
                    "  (role)"
                };
                t.row(vec![k, format!("{v}{mark}")]);
            }
        }
        None => {
            for (k, v) in &base {
                t.row(vec![k.clone(), v.clone()]);
            }
        }
    }
    out!("{}", t.render());
    if args.role.is_none() {
        let mut t = Table::new(&["ROLE", "OVERRIDES", "VALUE"], format);
        let mut any = false;
        for r in &roles {
            for (k, v) in flatten(&doc["roles"][r]) {
                if !base.iter().any(|(bk, bv)| *bk == k && *bv == v) {
                    t.row(vec![r.clone(), k, v]);
                    any = true;
                }
            }
        }
        if any {
            outln!();
            out!("{}", t.render());
        }
    }
    if !changes.is_empty() {
        outln!();
        let mut t = Table::new(&["WHEN", "KEY", "PREVIOUS", "VALUE"], format);
        for c in &changes {
            t.row(vec![
                super::when::stamp(&c.ts),
                c.key.clone(),
                c.previous.as_ref().map_or("-".into(), text),
                text(&c.value),
            ]);
        }
        out!("{}", t.render());
    }
    Ok(Code::Ok)
}

fn set(layout: &Layout, args: SetArgs) -> anyhow::Result<Code> {
    let config = load_config(layout)?;
    let (before, _) = governance::effective(layout, &config.governance())?;
    let shown_before = resolved_at(&before, &args.key);
    let change = governance::set(layout, &args.key, &args.value).map_err(|e| {
        coded_hint(
            Code::Invalid,
            format!("refused: {e}; nothing was changed"),
            "`society policy show` lists the keys and their values",
        )
    })?;
    let previous = match (&change.previous, shown_before) {
        (Some(p), _) => text(p),
        (None, Some(d)) => format!("{} (default)", text(&d)),
        (None, None) => "(unset)".into(),
    };
    outln!("{}: {previous} → {}", change.key, text(&change.value));
    let version = governance::load(layout)?.version;
    note!(
        "policy version {version}, published to {}; agents use it from their next decision",
        layout.policy_json().display()
    );
    Ok(Code::Ok)
}

/// The resolved value a key stands for (`autonomy.role.director.risk_max`:
/// the director's `autonomy.risk_max`), defaults included.
fn resolved_at(g: &Governance, key: &str) -> Option<Value> {
    let parts: Vec<&str> = key.split('.').collect();
    let (table, role, rest) = match parts.as_slice() {
        [t, "role", r, rest @ ..] => (*t, Some(*r), rest),
        [t, rest @ ..] => (*t, None, rest),
        [] => return None,
    };
    let mut at = serde_json::to_value(g.resolve(role).ok()?)
        .ok()?
        .get(table)?
        .clone();
    for p in rest {
        at = at.get(*p)?.clone();
    }
    Some(at)
}

/// Every role the society knows: declared in `society.toml`, of an agent
/// folder, or overridden in the policy.
fn known_roles(layout: &Layout, config: &SocietyConfig, g: &Governance) -> Vec<String> {
    let mut roles: BTreeSet<String> = config.roles.keys().cloned().collect();
    roles.extend(config.agents.iter().filter_map(|a| a.role.clone()));
    for id in layout.agent_ids().unwrap_or_default() {
        if let Ok(Some(cfg)) =
            atomic::read_json::<AgentConfig>(&layout.agent(&id).config(), "agent config")
        {
            roles.insert(cfg.role);
        }
    }
    for table in [&g.autonomy, &g.learning, &g.debate] {
        if let Some(Value::Object(over)) = table.get("role") {
            roles.extend(over.keys().cloned());
        }
    }
    roles.into_iter().collect()
}

/// `(dotted key, value)` of every leaf; an empty map is one `{}` leaf.
fn flatten(v: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, inner) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, inner, out);
                }
            }
            other => out.push((prefix.to_string(), text(other))),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}

/// A value for people: strings bare, the rest as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(m) if m.is_empty() => "{}".into(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}
