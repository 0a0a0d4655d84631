//! The HTTP server: routes, the page, its assets, the event stream.

use super::{actions, api, auth, live};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use society_core::Layout;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Answers remembered per request id (a double click, a retried POST).
const REMEMBERED: usize = 1024;

pub struct App {
    pub layout: Layout,
    pub csrf: String,
    pub token: Option<String>,
    pub events: broadcast::Sender<Arc<str>>,
    /// Actions run one at a time: a repeated request id waits for the
    /// first one's answer and gets it.
    pub acting: tokio::sync::Mutex<()>,
    pub answered: Mutex<Answered>,
}

/// The answers to the last [`REMEMBERED`] request ids.
#[derive(Default)]
pub struct Answered {
    map: HashMap<String, (StatusCode, serde_json::Value)>,
    order: VecDeque<String>,
}

impl Answered {
    pub fn get(&self, id: &str) -> Option<(StatusCode, serde_json::Value)> {
        self.map.get(id).cloned()
    }
    pub fn put(&mut self, id: String, answer: (StatusCode, serde_json::Value)) {
        if self.map.insert(id.clone(), answer).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

pub async fn serve(
    layout: Layout,
    listener: std::net::TcpListener,
    token: Option<String>,
) -> anyhow::Result<()> {
    // Every value the dashboard's environment holds under a secret-looking
    // name is scrubbed from every response (keys never reach the files,
    // but a page is one more place not to show one).
    society_brains::secrets::remember_environment();
    let (events, _) = broadcast::channel(4096);
    let app = Arc::new(App {
        layout: layout.clone(),
        csrf: auth::random_hex(16)?,
        token,
        events: events.clone(),
        acting: tokio::sync::Mutex::new(()),
        answered: Mutex::new(Answered::default()),
    });
    live::start(layout, events)?;
    let page = get(index);
    let router = Router::new()
        .route("/", page.clone())
        .route("/agents", page.clone())
        .route("/agents/{id}", page.clone())
        .route("/cases", page.clone())
        .route("/cases/{id}", page.clone())
        .route("/approvals", page.clone())
        .route("/flow", page.clone())
        .route("/costs", page.clone())
        .route("/metrics", page.clone())
        .route("/send", page)
        .route("/assets/app.js", get(app_js))
        .route("/assets/app.css", get(app_css))
        .route("/api/events", get(events_stream))
        .route("/api/summary", get(api::summary))
        .route("/api/status", get(api::status))
        .route("/api/agents/{id}", get(api::agent))
        .route("/api/cases", get(api::cases))
        .route("/api/cases/{id}", get(api::case))
        .route("/api/approvals", get(api::approvals))
        .route("/api/flow", get(api::flow))
        .route("/api/costs", get(api::costs))
        .route("/api/metrics", get(api::metrics))
        .route("/api/tree", get(api::tree))
        .route("/api/approve", post(actions::approve))
        .route("/api/reject", post(actions::reject))
        .route("/api/override", post(actions::override_plan))
        .route("/api/choose", post(actions::choose))
        .route("/api/send", post(actions::send))
        .route("/api/cases/open", post(actions::case_open))
        .route("/api/cases/close", post(actions::case_close))
        .route("/api/stop", post(actions::stop))
        .route("/api/restart", post(actions::restart))
        .route("/api/unblock", post(actions::unblock))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::guard,
        ))
        .with_state(app);
    let listener = tokio::net::TcpListener::from_std(listener)?;
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn index(State(app): State<Arc<App>>) -> Html<String> {
    Html(INDEX.replace("{{csrf}}", &app.csrf))
}

async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

async fn app_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS).into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"ok": false, "error": "no such page"})),
    )
        .into_response()
}

/// The event stream: one `message` event per change (`live.rs` says what
/// they hold). A client that falls behind gets `resync` and refetches.
async fn events_stream(
    State(app): State<Arc<App>>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let rx = app.events.subscribe();
    let hello = Event::default().data(r#"{"topic":"hello"}"#);
    let stream = futures_util::stream::unfold((rx, Some(hello)), |(mut rx, first)| async move {
        if let Some(ev) = first {
            return Some((Ok(ev), (rx, None)));
        }
        let ev = match rx.recv().await {
            Ok(data) => Event::default().data(&*data),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                Event::default().data(r#"{"topic":"resync"}"#)
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(ev), (rx, None)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
