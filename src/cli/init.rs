//! `society init [DIR]`.

use crate::cli::exit::Code;
use anyhow::Context;
use society_core::Layout;
use std::path::PathBuf;

const TEMPLATE: &str = include_str!("../../fixtures/society.toml.template");

pub fn run(dir: Option<PathBuf>) -> anyhow::Result<Code> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::current_dir()?,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let layout = Layout::at(&dir);
    let existed = layout.state_dir().is_dir();
    layout.create()?;
    let toml = layout.society_toml();
    if !toml.exists() {
        std::fs::write(&toml, TEMPLATE)
            .with_context(|| format!("failed to write {}", toml.display()))?;
    }
    if existed {
        outln!(
            "society already initialised in {} (nothing overwritten)",
            layout.root().display()
        );
    } else {
        outln!("initialised society in {}", layout.root().display());
        outln!(
            "  edit {} to declare agents, then `society up`",
            toml.display()
        );
    }
    Ok(Code::Ok)
}

#[cfg(test)]
mod tests {
    /// Every policy key the template documents under `[defaults]` is a real
    /// key with a value of the right type: uncommented, it parses.
    #[test]
    fn the_templates_documented_defaults_parse() {
        let mut toml = String::from("[defaults]\n");
        let mut in_defaults = false;
        for line in super::TEMPLATE.lines() {
            let bare = line.strip_prefix("# ").unwrap_or(line);
            if bare.starts_with('[') {
                in_defaults = bare == "[defaults]";
                continue;
            }
            let Some(setting) = line.strip_prefix("# ").filter(|_| in_defaults) else {
                continue;
            };
            let setting = setting.split(" #").next().unwrap_or("").trim();
            if setting.contains(" = ") {
                toml.push_str(setting);
                toml.push('\n');
            }
        }
        assert!(toml.lines().count() > 20, "{toml}");
        let table: toml::Table = toml::from_str(&toml).expect("valid TOML");
        let defaults = serde_json::to_value(&table["defaults"]).expect("JSON");
        let policy: society_core::state::Policy =
            serde_json::from_value(defaults).expect("every documented key is a policy key");
        assert_eq!(
            policy,
            society_core::state::Policy::default(),
            "and shows its default"
        );
    }
}
