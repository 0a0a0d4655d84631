//! `society_toml`: the loader of `society.toml` (`SocietyConfig::parse`,
//! what `load` runs on the file's text), and what the supervisor does with a
//! config it accepted: resolve every agent, write its `config.json`, which
//! the agent process reads back, and build its brain.

use society_core::state::AgentConfig;
use society_runtime::config::SocietyConfig;
use std::path::Path;

pub fn check(data: &[u8]) {
    // `load` reads the file as UTF-8 text: anything else fails there.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("society.toml");
    let cfg = match SocietyConfig::parse(text, path) {
        Ok(cfg) => cfg,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let agents = cfg
        .declared(path)
        .unwrap_or_else(|e| panic!("a config that loaded does not resolve: {e}"));
    for agent in &agents {
        reads_back(agent);
    }
    for role in cfg.roles.keys() {
        // A role's template is checked when an agent is spawned from it.
        if let Ok(agent) = cfg.for_spawn(path, "spawned", role, None, false) {
            reads_back(&agent);
        }
    }
    let _ = cfg.governance();
}

/// What `provision` writes as `config.json` is what the agent reads.
fn reads_back(agent: &AgentConfig) {
    let json = serde_json::to_string(agent).expect("an agent config serialises");
    let back: AgentConfig = serde_json::from_str(&json).unwrap_or_else(|e| {
        panic!(
            "the config.json of agent {} does not read back: {e}\n{json}",
            agent.id
        )
    });
    assert_eq!(&back, agent, "config.json changed the agent's config");
    if let Err(e) = society_brains::build(&agent.brain) {
        panic!(
            "the brain of accepted agent {} does not build: {e}",
            agent.id
        );
    }
}
