//! `society memory AGENT query TEXT` and `memory AGENT list`: what an agent
//! would recall, with each score's parts, and everything it remembers. Read
//! only: a stale index is rebuilt in memory for the answer, never written
//! (the agent's own process is the only writer of its folder's memory).

use super::ClientError;
use society_core::memory::{Memory, Recall, Store};
use society_core::{AgentId, Layout};

/// The `k` memories `agent` would recall for `query` now.
pub fn query(
    layout: &Layout,
    agent: &AgentId,
    query: &str,
    k: usize,
) -> Result<Recall, ClientError> {
    let store = store(layout, agent)?;
    Ok(store.recall(query, k, std::time::SystemTime::now(), false)?)
}

/// Every memory of `agent`, oldest first.
pub fn list(layout: &Layout, agent: &AgentId) -> Result<Vec<Memory>, ClientError> {
    Ok(store(layout, agent)?.list()?)
}

fn store(layout: &Layout, agent: &AgentId) -> Result<Store, ClientError> {
    let dir = layout.agent(agent).dir;
    if !dir.is_dir() {
        return Err(ClientError::NoAgent {
            id: agent.clone(),
            dir: layout.state_dir().to_path_buf(),
            sending: false,
        });
    }
    Ok(Store::new(&dir))
}
