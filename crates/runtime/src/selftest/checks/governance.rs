//! The society governs itself: the film crew's approval-request share falls
//! as its agents learn from the orchestrator's answers.

use super::super::{unique_dir, Env, Failed};
use serde_json::Value;
use std::process::{Command, Stdio};

/// `society demo film-crew --json` (6 episodes quick, 12 full): the share
/// of decisions that asked for approval falls band by band, a debate
/// reached consensus and one expired.
pub fn film_crew_learns(env: &Env) -> Result<String, Failed> {
    let episodes = env.pick(6, 12).to_string();
    let base = unique_dir("society-selftest-film-crew-")?;
    let dir = base.join("society");
    let out = Command::new(&env.exe)
        .args([
            "demo",
            "film-crew",
            "--json",
            "--episodes",
            &episodes,
            "--dir",
        ])
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failed::io("run", &env.exe, e))?;
    let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        Failed::Unmet(format!(
            "demo film-crew printed no JSON ({e}); status {}; stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })?;
    let bands: Vec<String> = doc["bands"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            format!(
                "{} {:.0}%",
                b["episodes"].as_str().unwrap_or("?"),
                b["share"].as_f64().unwrap_or(0.0) * 100.0
            )
        })
        .collect();
    ensure!(
        out.status.success() && doc["falling"] == true,
        "the approval-request share did not fall ({}): {}",
        out.status,
        bands.join(", ")
    );
    ensure!(
        doc["debates"]["consensus"].as_u64().unwrap_or(0) >= 1
            && doc["debates"]["expired"].as_u64().unwrap_or(0) >= 1,
        "expected a debate to reach consensus and one to expire: {}",
        doc["debates"]
    );
    let _ = std::fs::remove_dir_all(&base);
    Ok(format!(
        "{episodes} episodes; asked for approval: {}; debates {}",
        bands.join(" → "),
        doc["debates"]
    ))
}
