//! The page's actions. Each writes what its CLI command writes, through the
//! same client function: approve/reject/override/choose (`decide` control
//! requests), send (the recipient's inbox), case open/close, stop, restart
//! (control requests), unblock. Like the CLI, send, case open/close and
//! restart start the supervisor when none runs; answers and stop do not.
//!
//! Every POST carries a `request_id` chosen by the page. Actions run one at
//! a time and the answer to each id is remembered: a double click, or a
//! retried request, gets the first answer back (`"replayed": true`) and
//! writes nothing. Answering a request twice from two pages is refused by
//! the client itself (already decided).

use super::api::{agent_id, answer, bad, failure, Failure};
use super::server::App;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use society_core::{CaseId, Envelope, Layout, MsgId, Party};
use society_runtime::client::{agents, answers, case_control, send as sending, supervisor};
use society_runtime::control::How;
use std::sync::Arc;

/// The part every action's body shares.
#[derive(Deserialize)]
struct Envelope0 {
    request_id: String,
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Failure> {
    serde_json::from_slice(body)
        .map_err(|e| bad(format!("the request's JSON body is invalid: {e}")))
}

/// Runs `f` once per request id (see the module docs).
async fn act<T, F>(app: Arc<App>, body: Bytes, f: F) -> Response
where
    T: DeserializeOwned + Send + 'static,
    F: FnOnce(&Layout, T) -> Result<Value, Failure> + Send + 'static,
{
    let request_id = match parse::<Envelope0>(&body) {
        Ok(e) => e.request_id,
        Err(e) => return failure(e),
    };
    let id_ok = (8..=80).contains(&request_id.len())
        && request_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return failure(bad(
            "request_id must be 8 to 80 letters, digits, '-' or '_'",
        ));
    }
    let args: T = match parse(&body) {
        Ok(a) => a,
        Err(e) => return failure(e),
    };
    let _one_at_a_time = app.acting.lock().await;
    let remembered = app
        .answered
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&request_id);
    if let Some((status, mut value)) = remembered {
        value["replayed"] = json!(true);
        return answer(status, &value);
    }
    let layout = app.layout.clone();
    let outcome = tokio::task::spawn_blocking(move || f(&layout, args)).await;
    let (status, value) = match outcome {
        Ok(Ok(mut v)) => {
            v["ok"] = json!(true);
            (StatusCode::OK, v)
        }
        Ok(Err(Failure(status, error))) => (status, json!({"ok": false, "error": error})),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"ok": false, "error": format!("the action failed: {e}")}),
        ),
    };
    app.answered
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .put(request_id, (status, value.clone()));
    answer(status, &value)
}

fn msg_id(text: &str) -> Result<MsgId, Failure> {
    text.parse()
        .map_err(|e| bad(format!("{text:?} is not a request id: {e}")))
}

fn note(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

/// Starts the supervisor if none runs (what the CLI's `start_for` does).
fn wake(layout: &Layout) -> Result<Option<u32>, Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match supervisor::ensure_supervisor(layout, &exe)? {
        supervisor::Started::New(pid) => Ok(Some(pid)),
        supervisor::Started::Already(_) => Ok(None),
    }
}

#[derive(Deserialize)]
struct Decide {
    id: String,
    note: Option<String>,
}

fn decided(request: &society_runtime::approvals::Approval, what: &str) -> Value {
    json!({
        "message": format!("{what} {} ({})", request.id, request.plan),
        "id": request.id,
        "case": request.case,
    })
}

pub async fn approve(State(app): State<Arc<App>>, body: Bytes) -> Response {
    act(app, body, |layout, a: Decide| {
        let r = answers::decide(layout, &msg_id(&a.id)?, true, note(a.note))?;
        Ok(decided(&r, "approved"))
    })
    .await
}

pub async fn reject(State(app): State<Arc<App>>, body: Bytes) -> Response {
    act(app, body, |layout, a: Decide| {
        let Some(feedback) = note(a.note) else {
            return Err(bad(
                "a rejection needs feedback: what should the requester change?",
            ));
        };
        let r = answers::decide(layout, &msg_id(&a.id)?, false, Some(feedback))?;
        Ok(decided(&r, "rejected"))
    })
    .await
}

#[derive(Deserialize)]
struct Override {
    id: String,
    plan: String,
    note: Option<String>,
}

pub async fn override_plan(State(app): State<Arc<App>>, body: Bytes) -> Response {
    act(app, body, |layout, a: Override| {
        let plan = a.plan.trim().to_string();
        if plan.is_empty() {
            return Err(bad("an override needs the plan to carry out instead"));
        }
        let how = How::Override { plan };
        let r = answers::answer(layout, &msg_id(&a.id)?, true, note(a.note), Some(how))?;
        Ok(decided(&r, "overrode"))
    })
    .await
}

#[derive(Deserialize)]
struct Choose {
    id: String,
    option: usize,
    note: Option<String>,
}

pub async fn choose(State(app): State<Arc<App>>, body: Bytes) -> Response {
    act(app, body, |layout, a: Choose| {
        let how = How::Choose {
            option: a.option,
            plan: String::new(),
        };
        let r = answers::answer(layout, &msg_id(&a.id)?, true, note(a.note), Some(how))?;
        Ok(decided(&r, &format!("chose option {} of", a.option)))
    })
    .await
}

#[derive(Deserialize)]
struct SendArgs {
    to: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    /// A JSON object, or text (sent as `{"text": …}`, as `society send`).
    body: Value,
    case: Option<String>,
}

pub async fn send(State(app): State<Arc<App>>, body: Bytes) -> Response {
    act(app, body, |layout, a: SendArgs| {
        let to: Party =
            a.to.trim()
                .parse()
                .map_err(|e| bad(format!("recipient {:?}: {e}", a.to)))?;
        let kind = note(a.kind).unwrap_or_else(|| "task".to_string());
        sending::check_type(&kind)?;
        let body = match a.body {
            Value::String(t) if t.trim().is_empty() => {
                return Err(bad("nothing to send: the body is empty"))
            }
            Value::String(t) => json!({ "text": t }),
            v @ Value::Object(_) => v,
            other => {
                return Err(bad(format!(
                    "the body must be text or a JSON object, not {other}"
                )))
            }
        };
        let mut env = Envelope::new(Party::Orchestrator, to, kind, body);
        env.case = note(a.case)
            .map(|c| CaseId::new(c.as_str()))
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        let done = sending::deliver(layout, &env)?;
        let started = wake(layout)?;
        Ok(json!({
            "message": format!("sent {} to {}", env.id, env.to),
            "id": env.id,
            "warnings": done.warnings,
            "supervisor_started": started,
        }))
    })
    .await
}

#[derive(Deserialize)]
struct CaseOpen {
    purpose: String,
    assign: Option<String>,
    priority: Option<String>,
}

pub async fn case_open(State(app): State<Arc<App>>, body: Bytes) -> Response {
    act(app, body, |layout, a: CaseOpen| {
        let new = case_control::NewCase {
            purpose: a.purpose,
            assign: note(a.assign),
            priority: note(a.priority),
            due: None,
        };
        let case = case_control::request_open(layout, &new)?;
        let started = wake(layout)?;
        Ok(json!({
            "message": format!("case {case} requested (it opens when the supervisor reads it)"),
            "case": case,
            "supervisor_started": started,
        }))
    })
    .await
}

#[derive(Deserialize)]
struct CaseClose {
    id: String,
    reason: Option<String>,
}

pub async fn case_close(State(app): State<Arc<App>>, body: Bytes) -> Response {
    act(app, body, |layout, a: CaseClose| {
        let case = CaseId::new(a.id.as_str()).map_err(|e| bad(e.to_string()))?;
        case_control::request_close(layout, &case, note(a.reason))?;
        let started = wake(layout)?;
        Ok(json!({
            "message": format!("close of case {case} requested"),
            "case": case,
            "supervisor_started": started,
        }))
    })
    .await
}

#[derive(Deserialize)]
struct AgentAction {
    id: String,
}

pub async fn stop(State(app): State<Arc<App>>, body: Bytes) -> Response {
    act(app, body, |layout, a: AgentAction| {
        let id = agents::existing(layout, agent_id(&a.id)?.as_str())?;
        agents::stop(layout, &id, None)?;
        Ok(json!({"message": format!("{id}: stop requested (held until restarted)"), "agent": id}))
    })
    .await
}

pub async fn restart(State(app): State<Arc<App>>, body: Bytes) -> Response {
    act(app, body, |layout, a: AgentAction| {
        let id = agents::existing(layout, agent_id(&a.id)?.as_str())?;
        agents::request_restart(layout, &id)?;
        let started = wake(layout)?;
        Ok(json!({"message": format!("{id}: restart requested"), "agent": id, "supervisor_started": started}))
    })
    .await
}

pub async fn unblock(State(app): State<Arc<App>>, body: Bytes) -> Response {
    act(app, body, |layout, a: AgentAction| {
        let id = agents::existing(layout, agent_id(&a.id)?.as_str())?;
        answers::unblock(layout, &id)?;
        Ok(json!({"message": format!("{id}: unblock requested"), "agent": id}))
    })
    .await
}
