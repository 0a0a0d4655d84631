//! Agents publishing shared context (`shared_put` to the supervisor).
//!
//! An agent whose policy has `shared_write = true` may send the supervisor
//! `shared_put {name, path}`, `path` a file in its own folder. Two steps,
//! each crash-safe:
//!
//! 1. [`Planner::shared_put`] (with its inbox batch): refuses what is not
//!    allowed or not well formed with a `message_blocked` notice, else
//!    records a `request` line in `shared/.requests.jsonl`, keyed by the
//!    message's id.
//! 2. [`Supervisor::shared_tick`] (every turn of the main loop) applies each
//!    request without an `answered` line: the put is
//!    `client::shared::put_bytes` with the message id as `src` and `once`,
//!    so a put repeated after a crash returns the version already logged;
//!    then one direct batch holds the answer to the agent
//!    (`shared_put_done` or `shared_put_failed`, id derived from the
//!    request) and the `answered` line. A restart folds the file again and
//!    finishes what is unanswered: one version, one answer.

use super::plan::Plan;
use super::planner::Planner;
use super::Supervisor;
use crate::client::shared::{put_bytes, validate_name, SharedError};
use serde_json::{json, Value};
use society_core::kinds::shared;
use society_core::{time, AgentId, Envelope, MsgId, Party};
use std::collections::BTreeMap;
use std::path::{Component, Path};

/// The answer's id: `derive(request, this)`.
const ANSWER: u32 = 0x7fff_0b02;

/// A `request` line.
#[derive(Debug, Clone)]
struct Request {
    agent: AgentId,
    name: String,
    path: String,
    case: Option<society_core::CaseId>,
    hops: u32,
}

/// What the supervisor follows of `shared/.requests.jsonl`.
#[derive(Debug, Default)]
pub(super) struct SharedRequests {
    cursor: u64,
    open: BTreeMap<MsgId, Request>,
}

impl SharedRequests {
    fn refresh(&mut self, path: &Path) {
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        if len < self.cursor {
            // Replaced or cut by hand: fold what is there now again.
            *self = SharedRequests::default();
        }
        if len <= self.cursor {
            return;
        }
        let lines = match society_core::jsonl::read_objects(path, &mut self.cursor) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the shared requests");
                return;
            }
        };
        for v in lines {
            let Some(src) = v
                .get("src")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<MsgId>().ok())
            else {
                continue;
            };
            match v.get("event").and_then(Value::as_str) {
                Some(shared::REQUEST) => {
                    let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
                    let (Some(agent), Some(name), Some(p)) = (
                        s("agent").and_then(|a| AgentId::new(a).ok()),
                        s("name"),
                        s("path"),
                    ) else {
                        continue;
                    };
                    self.open.insert(
                        src,
                        Request {
                            agent,
                            name,
                            path: p,
                            case: s("case").and_then(|c| society_core::CaseId::new(c).ok()),
                            hops: v.get("hops").and_then(Value::as_u64).unwrap_or(0) as u32,
                        },
                    );
                }
                Some(shared::ANSWERED) => {
                    self.open.remove(&src);
                }
                _ => {}
            }
        }
    }
}

/// Why a `path` of an agent's request is no file of its folder, if it is not.
fn bad_path(path: &str) -> Option<&'static str> {
    let p = Path::new(path);
    if path.is_empty() {
        return Some("no path given");
    }
    if p.is_absolute() {
        return Some("the path must be relative to the agent's folder");
    }
    if p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Some("the path may not contain `..` or `.`");
    }
    None
}

impl Planner<'_> {
    /// Plans an agent's `shared_put`: refused, or recorded for the tick.
    /// `false` when `env` is not one.
    pub fn shared_put(&self, plan: &mut Plan, env: &Envelope) -> bool {
        let Party::Agent(agent) = &env.from else {
            return false;
        };
        if env.kind != shared::PUT_TYPE {
            return false;
        }
        let allowed = self
            .agents
            .get(agent)
            .is_some_and(|(cfg, _)| cfg.policy.shared_write);
        if !allowed {
            let reason = format!(
                "agent {agent} may not write shared context: its policy has no `shared_write = true` \
                 (the orchestrator publishes with `society shared put`)"
            );
            self.blocked(plan, env, &reason);
            return true;
        }
        let field = |k: &str| env.body.get(k).and_then(Value::as_str).unwrap_or_default();
        let (name, path) = (field("name"), field("path"));
        if let Err(e) = validate_name(name) {
            self.blocked(plan, env, &e.to_string());
            return true;
        }
        if let Some(why) = bad_path(path) {
            self.blocked(plan, env, &format!("invalid path {path:?}: {why}"));
            return true;
        }
        // The store's folder, for the request line (idempotent).
        let _ = std::fs::create_dir_all(self.layout.shared_dir());
        let line = json!({"event": shared::REQUEST, "src": env.id, "agent": agent, "name": name,
            "path": path, "case": env.case, "hops": env.hops, "ts": time::now_rfc3339()});
        plan.push(
            self.layout.shared_requests(),
            true,
            env.id.to_string(),
            serde_json::to_vec(&line).unwrap_or_default(),
        );
        true
    }
}

impl Supervisor {
    /// Applies and answers the recorded requests (see the module docs).
    pub(super) fn shared_tick(&mut self) {
        if self.shutting_down {
            return;
        }
        let path = self.layout.shared_requests();
        self.shared.refresh(&path);
        if self.shared.open.is_empty() || self.stalled_touches(&path) {
            return;
        }
        let open: Vec<(MsgId, Request)> = self
            .shared
            .open
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (src, req) in open {
            let outcome = self.apply_put(src, &req);
            society_core::fault::point("supervisor.shared.put");
            let mut answer = Envelope::new(
                Party::Supervisor,
                Party::Agent(req.agent.clone()),
                shared::DONE_TYPE,
                json!({}),
            );
            answer.id = MsgId::derive(&src, ANSWER);
            answer.reply_to = Some(src);
            answer.case = req.case.clone();
            answer.hops = req.hops.saturating_add(1);
            match &outcome {
                Ok(v) => {
                    answer.body = json!({"name": v.name, "version": v.version, "sha256": v.sha256});
                }
                Err(e) => {
                    answer.kind = shared::FAILED_TYPE.into();
                    answer.body = json!({"name": req.name, "error": e.to_string()});
                }
            }
            let mut plan = Plan::at(super::plan::now_ms());
            let line = json!({"event": shared::ANSWERED, "src": src, "answer": answer.id,
                "version": outcome.as_ref().ok().map(|v| v.version), "ts": time::now_rfc3339()});
            plan.push(
                path.clone(),
                true,
                format!("{src}/answered"),
                serde_json::to_vec(&line).unwrap_or_default(),
            );
            if self.slots.contains_key(&req.agent) {
                self.planner().to_agent(&mut plan, &req.agent, &answer);
            }
            tracing::info!(agent = %req.agent, name = %req.name, ok = outcome.is_ok(), "shared put");
            self.commit_direct(plan);
            self.shared.open.remove(&src);
        }
    }

    /// The put of one request: the agent's file, resolved inside its folder.
    fn apply_put(
        &self,
        src: MsgId,
        req: &Request,
    ) -> Result<crate::client::shared::Version, SharedError> {
        let dir = self.layout.agent(&req.agent).config();
        let dir = dir.parent().unwrap_or(Path::new("."));
        let file = dir.join(&req.path);
        let resolved = std::fs::canonicalize(&file)
            .map_err(|_| SharedError::Missing { path: file.clone() })?;
        let root = std::fs::canonicalize(dir).map_err(|_| SharedError::Missing {
            path: dir.to_path_buf(),
        })?;
        if !resolved.starts_with(&root) {
            return Err(SharedError::OutsideFolder {
                path: file,
                resolved,
                agent: req.agent.to_string(),
            });
        }
        if !resolved.is_file() {
            return Err(SharedError::NotAFile { path: file });
        }
        // Opened once, below the agent's folder, from the checked path: a
        // symlink swapped in meanwhile cannot lead out, a FIFO cannot block.
        let rel = resolved
            .strip_prefix(&root)
            .unwrap_or(&resolved)
            .to_path_buf();
        let bytes =
            crate::client::shared::read_beneath(&root, &rel, &file).map_err(|e| match e {
                SharedError::Outside { resolved, .. } => SharedError::OutsideFolder {
                    path: file.clone(),
                    resolved,
                    agent: req.agent.to_string(),
                },
                other => other,
            })?;
        put_bytes(
            &self.layout,
            &req.name,
            &bytes,
            req.agent.as_str(),
            Some(&src.to_string()),
            true,
        )
    }
}
