//! `society check`: validates `society.toml` and the layout without starting
//! anything — what `up` checks before it starts a supervisor, and what a
//! deploy script runs before it reloads one.

use super::exit::{coded, Code};
use society_core::state::AgentConfig;
use society_core::{atomic, Layout};
use society_runtime::config::SocietyConfig;

pub fn run(layout: &Layout) -> anyhow::Result<Code> {
    // The layout's format was checked when it was found (`format.json`).
    let config = SocietyConfig::load(&layout.society_toml())?;
    let mut broken = Vec::new();
    let ids = layout.agent_ids()?;
    for id in &ids {
        if let Err(link) = society_core::confine::check_folder(&layout.agent(id)) {
            broken.push(format!("  agent {id}: {link}"));
            continue;
        }
        if let Err(e) = atomic::read_json::<AgentConfig>(&layout.agent(id).config(), "agent config")
        {
            broken.push(format!("  agent {id}: {e}"));
        }
    }
    for path in layout.agent_entries_not_folders()? {
        broken.push(format!("  {}: not a folder", path.display()));
    }
    for link in layout.agent_links()? {
        broken.push(format!("  {link}"));
    }
    if !broken.is_empty() {
        return Err(coded(
            Code::Invalid,
            format!(
                "{} agent folder(s) cannot be used:\n{}\n  (`society fsck --repair` rebuilds a config from society.toml or the registry)",
                broken.len(),
                broken.join("\n")
            ),
        ));
    }
    outln!(
        "ok: {} ({} agent(s) defined, {} routing rule(s)); {} agent folder(s), format {}",
        layout.society_toml().display(),
        config.agents.len(),
        config.routing.rules.len(),
        ids.len(),
        society_core::FORMAT_VERSION
    );
    Ok(Code::Ok)
}
