//! The views' JSON: the same functions `status`, `describe`, `case`,
//! `approvals`, `costs`, `metrics` and `tree` call, read from the files.

use super::server::App;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use society_core::{AgentId, CaseId, Layout};
use society_runtime::client::{self, ClientError};
use std::sync::Arc;

/// How much of a log's end an agent's view reads.
const TAIL_BYTES: u64 = 256 * 1024;
/// Records of each log an agent's view shows.
const TAIL_RECORDS: usize = 50;
/// How far back the message graph reads `agent-to-agent.jsonl`.
const FLOW_BYTES: u64 = 16 << 20;

/// An error as the page sees it: a status and a sentence.
pub struct Failure(pub StatusCode, pub String);

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        use society_runtime::exit::Code;
        let status = match e.exit_code() {
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::Conflict => StatusCode::CONFLICT,
            Code::Invalid | Code::Usage => StatusCode::BAD_REQUEST,
            Code::Locked => StatusCode::LOCKED,
            Code::Timeout => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure(status, e.to_string())
    }
}

pub fn bad(what: impl Into<String>) -> Failure {
    Failure(StatusCode::BAD_REQUEST, what.into())
}

/// A JSON answer with every known secret scrubbed.
pub fn answer(status: StatusCode, value: &Value) -> Response {
    let text = society_brains::secrets::scrub(&value.to_string());
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response()
}

pub fn failure(f: Failure) -> Response {
    answer(f.0, &json!({"ok": false, "error": f.1}))
}

/// Runs `f` on the blocking pool (the files are read synchronously).
pub async fn read<F>(app: &Arc<App>, f: F) -> Response
where
    F: FnOnce(&Layout) -> Result<Value, Failure> + Send + 'static,
{
    let layout = app.layout.clone();
    match tokio::task::spawn_blocking(move || f(&layout)).await {
        Ok(Ok(v)) => answer(StatusCode::OK, &v),
        Ok(Err(f)) => failure(f),
        Err(e) => failure(Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request failed: {e}"),
        )),
    }
}

fn to_value(v: impl serde::Serialize) -> Result<Value, Failure> {
    serde_json::to_value(v).map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

pub fn agent_id(text: &str) -> Result<AgentId, Failure> {
    AgentId::new(text).map_err(|e| bad(e.to_string()))
}

pub async fn status(State(app): State<Arc<App>>) -> Response {
    read(&app, |layout| {
        to_value(client::status::collect(layout, None)?)
    })
    .await
}

/// One agent: its `describe`, the ends of its logs, its dead letters.
pub async fn agent(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    read(&app, move |layout| {
        let id = agent_id(&id)?;
        let id = client::agents::existing(layout, id.as_str())?;
        let described = client::describe::describe(layout, id.as_str())?;
        let paths = layout.agent(&id);
        // A log that cannot be read (a link out of the society, a damaged
        // file) is named in its section; the others still show.
        let tail = |p: std::path::PathBuf| -> Value {
            match client::describe::tail(&p, TAIL_BYTES) {
                Ok(mut v) => {
                    let cut = v.len().saturating_sub(TAIL_RECORDS);
                    v.drain(..cut);
                    Value::Array(v)
                }
                Err(e) => json!({"error": e.to_string()}),
            }
        };
        let conversation = latest_conversation(&paths.dir).map(|p| {
            json!({
                "file": p.file_name().map(|n| n.to_string_lossy().to_string()),
                "records": tail(p),
            })
        });
        let deadletters = match client::deadletter::list(layout, Some(&id)) {
            Ok(d) => to_value(d)?,
            Err(e) => json!({"error": e.to_string()}),
        };
        Ok(json!({
            "agent": to_value(described)?,
            "activity": tail(paths.activity()),
            "inbox": tail(paths.inbox()),
            "outbox": tail(paths.outbox()),
            "decisions": tail(paths.decisions()),
            "deadletters": deadletters,
            "conversation": conversation,
        }))
    })
    .await
}

/// The most recently written `conversations/*.jsonl` of an llm agent.
fn latest_conversation(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let entries = std::fs::read_dir(dir.join("conversations")).ok()?;
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p)
}

/// Every case, oldest first (`case list -o json`'s rows).
pub async fn cases(State(app): State<Arc<App>>) -> Response {
    read(&app, |layout| {
        let mut rows = Vec::new();
        let mut skipped = Vec::new();
        for id in client::cases::all_ids(layout)? {
            match client::cases::load(layout, &id) {
                Ok(Some(l)) => {
                    let mut row = to_value(&l.summary)?;
                    row["archived"] = json!(l.archived);
                    rows.push(row);
                }
                Ok(None) => {}
                Err(e) => skipped.push(format!("case {id}: {e}")),
            }
        }
        let key = |r: &Value| {
            r["created"]
                .as_str()
                .or_else(|| r["last_ts"].as_str())
                .unwrap_or_default()
                .to_string()
        };
        rows.sort_by_key(key);
        Ok(json!({"cases": rows, "skipped": skipped}))
    })
    .await
}

/// One case (`case show -o json`: `{case, log, events}`).
pub async fn case(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    read(&app, move |layout| {
        let case = CaseId::new(id.as_str()).map_err(|e| bad(e.to_string()))?;
        let Some(loaded) = client::cases::load(layout, &case)? else {
            return Err(client::case_control::no_case(layout, &case).into());
        };
        let mut row = to_value(&loaded.summary)?;
        row["archived"] = json!(loaded.archived);
        Ok(json!({"case": row, "log": loaded.path, "events": loaded.records}))
    })
    .await
}

/// The pending requests (`approvals -o json`).
pub async fn approvals(State(app): State<Arc<App>>) -> Response {
    read(&app, |layout| {
        let pending = society_runtime::approvals::pending(layout).map_err(ClientError::from)?;
        Ok(json!({"pending": to_value(pending)?}))
    })
    .await
}

#[derive(Deserialize)]
pub struct FlowQuery {
    minutes: Option<u64>,
}

/// Who sent how many messages to whom in the last `minutes` (default 15),
/// from the router's mirror `messages/agent-to-agent.jsonl`.
pub async fn flow(State(app): State<Arc<App>>, Query(q): Query<FlowQuery>) -> Response {
    read(&app, move |layout| {
        let minutes = q.minutes.unwrap_or(15).clamp(1, 24 * 60);
        let since = society_core::time::unix_ms(std::time::SystemTime::now())
            .saturating_sub(minutes * 60_000);
        let mut edges: std::collections::BTreeMap<(String, String), (u64, String)> =
            Default::default();
        for rec in client::describe::tail(&layout.agent_to_agent(), FLOW_BYTES)? {
            let Some(ts) = rec["ts"].as_str() else {
                continue;
            };
            let Some(t) = society_core::time::parse_rfc3339(ts) else {
                continue;
            };
            if society_core::time::unix_ms(t) < since {
                continue;
            }
            let party = |k: &str| rec[k].as_str().unwrap_or("?").to_string();
            let e = edges.entry((party("from"), party("to"))).or_default();
            e.0 += 1;
            e.1 = rec["type"].as_str().unwrap_or_default().to_string();
        }
        let mut nodes = std::collections::BTreeSet::new();
        let edges: Vec<Value> = edges
            .into_iter()
            .map(|((from, to), (count, last_type))| {
                nodes.insert(from.clone());
                nodes.insert(to.clone());
                json!({"from": from, "to": to, "count": count, "last_type": last_type})
            })
            .collect();
        Ok(json!({"minutes": minutes, "nodes": nodes, "edges": edges}))
    })
    .await
}

#[derive(Deserialize)]
pub struct CostsQuery {
    by: Option<String>,
}

/// `costs -o json`, by agent (default), model or case.
pub async fn costs(State(app): State<Arc<App>>, Query(q): Query<CostsQuery>) -> Response {
    read(&app, move |layout| {
        use client::costs::By;
        let by = match q.by.as_deref() {
            None | Some("agent") => By::Agent,
            Some("model") => By::Model,
            Some("case") => By::Case,
            Some(other) => {
                return Err(bad(format!(
                    "unknown grouping {other:?}: expected agent, model or case"
                )))
            }
        };
        to_value(client::costs::fold(layout, by)?)
    })
    .await
}

/// `metrics -o json`.
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    read(&app, |layout| {
        to_value(client::metrics::collect(layout, None)?)
    })
    .await
}

/// `tree -o json`.
pub async fn tree(State(app): State<Arc<App>>) -> Response {
    read(&app, |layout| to_value(client::tree::tree(layout)?)).await
}

/// What the page's header shows: the supervisor, the approvals waiting.
pub async fn summary(State(app): State<Arc<App>>) -> Response {
    read(&app, |layout| {
        let pending = society_runtime::approvals::pending(layout).map_err(ClientError::from)?;
        Ok(json!({
            "root": layout.root(),
            "supervisor": client::supervisor::supervisor_pid(layout),
            "pending_approvals": pending.len(),
        }))
    })
    .await
}
