//! Agents asking to write shared context (`shared_put` to the supervisor).
//!
//! Shared context is written only by the orchestrator (`society shared
//! put`) in this version. An agent's `shared_put` is refused with a
//! `message_blocked` notice that says so (and a system event), rather
//! than recorded as an ordinary report the agent would wait on forever.
//! An agent path (a policy key `shared_write`, the put applied by the
//! supervisor idempotently under the message's id) is future work; see
//! FORMAT.md "Shared context".

use super::plan::Plan;
use super::planner::Planner;
use society_core::kinds::shared;
use society_core::{Envelope, Party};

/// Why an agent's put is refused.
pub(super) const REFUSED: &str = "agents cannot write shared context in this version: \
     only the orchestrator's `society shared put` does; send the file's path to the orchestrator";

impl Planner<'_> {
    /// Refuses an agent's `shared_put`; `false` when `env` is not one.
    pub fn shared_put(&self, plan: &mut Plan, env: &Envelope) -> bool {
        if env.kind != shared::PUT_TYPE || !matches!(env.from, Party::Agent(_)) {
            return false;
        }
        self.blocked(plan, env, REFUSED);
        true
    }
}
