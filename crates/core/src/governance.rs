//! Governance arithmetic: how a proposed decision is scored, which level of
//! autonomy it gets, how a debate's perspectives agree, and what an agent has
//! learned from the orchestrator's answers. Pure functions over plain data —
//! the runtime reads and writes the files (`decisions.jsonl`, `learning/`,
//! debate case logs) and calls these; no brain ever computes a score.
//!
//! The formulas, thresholds and caps are the design source's (see
//! `SOCIETY.md` §A, §C, §E); every cut-off is a policy value.

pub mod context;
pub mod debate;
pub mod learning;
pub mod score;

pub use context::{DecisionContext, ProposalError, Reversibility, Scope};
pub use debate::{agreement, consensus, Consensus};
pub use learning::{Learning, LearningPolicy, Preference, Record};
pub use score::{assess, Assessment, AutonomyPolicy, Rule, Scores};

use serde::{Deserialize, Serialize};

/// How a decision is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Act, then log.
    Autonomous,
    /// Plan, debate with peers for a bounded time; consensus → act, else ask.
    Collaborative,
    /// Plan with a rationale and wait for the approver's answer.
    RequiresApproval,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Autonomous => "autonomous",
            Level::Collaborative => "collaborative",
            Level::RequiresApproval => "requires_approval",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Level, String> {
        match s {
            "autonomous" => Ok(Level::Autonomous),
            "collaborative" => Ok(Level::Collaborative),
            "requires_approval" => Ok(Level::RequiresApproval),
            other => Err(format!(
                "unknown autonomy level {other:?} (expected autonomous, collaborative or requires_approval)"
            )),
        }
    }
}

/// Scores are compared strictly after rounding to 1e-9, so that
/// 0.3 + 0.4 + 0.2 (= 0.8999999999999999 in binary) counts as 0.9.
pub fn round9(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}
