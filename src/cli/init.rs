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
        println!(
            "society already initialised in {} (nothing overwritten)",
            layout.root().display()
        );
    } else {
        println!("initialised society in {}", layout.root().display());
        println!(
            "  edit {} to declare agents, then `society up`",
            toml.display()
        );
    }
    Ok(Code::Ok)
}
