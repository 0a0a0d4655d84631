//! One model call over HTTP, with retries.
//!
//! The request runs on a helper thread while the brain's thread waits on a
//! channel, heartbeating and watching for a stop request: a slow model never
//! looks like a hung agent, and `society stop` abandons a call at once.
//! Timeouts, 408/409/425/429 and 5xx are retried (see [`super::retry`]);
//! other statuses are final and mapped to a [`LlmError`] that says what to do.
//! The key is read from the environment for each call and appears only in
//! the request headers: error details are scrubbed of it.

use super::config::{LlmConfig, Provider};
use super::error::LlmError;
use super::retry;
use crate::Hooks;
use serde_json::Value;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

/// Why a call produced no answer.
pub enum CallError {
    /// The agent is stopping.
    Abandoned,
    Failed(LlmError),
}

impl From<LlmError> for CallError {
    fn from(e: LlmError) -> Self {
        CallError::Failed(e)
    }
}

pub(super) struct Raw {
    pub(super) status: u16,
    pub(super) retry_after: Option<String>,
    pub(super) body: String,
}

enum Verdict {
    Answer(Value),
    Retry {
        why: String,
        after: Option<Duration>,
    },
    Fail(LlmError),
}

/// Sends `body` until it gets an answer, a final error, or runs out of
/// retries. `on_retry(hooks, retry, why, delay)` is told about every retry,
/// `unanswered(bytes, why)` about every request that may have reached the
/// provider but got no answer (a timeout, a connection cut after sending):
/// hosted providers bill those too.
pub fn call(
    client: &reqwest::blocking::Client,
    cfg: &LlmConfig,
    body: &Value,
    hooks: &mut dyn Hooks,
    mut on_retry: impl FnMut(&mut dyn Hooks, u32, &str, Duration),
    mut unanswered: impl FnMut(u64, &str) -> Result<(), LlmError>,
) -> Result<Value, CallError> {
    let provider = cfg.provider.name();
    let key = match cfg.key_env() {
        Some(var) => match std::env::var(var) {
            Ok(k) if reqwest::header::HeaderValue::from_str(&k).is_err() => {
                return Err(bad_key(cfg).into())
            }
            Ok(k) if !k.is_empty() => {
                crate::secrets::remember(&k);
                Some(k)
            }
            _ => {
                return Err(LlmError::MissingKey {
                    provider,
                    var: var.to_string(),
                }
                .into())
            }
        },
        None => None,
    };
    let streamed;
    let body = if cfg.stream {
        streamed = super::stream::request_body(cfg.provider, body);
        &streamed
    } else {
        body
    };
    let bytes = serde_json::to_vec(body).expect("a JSON value always serialises");
    let mut retry = 0;
    loop {
        if hooks.should_stop() {
            return Err(CallError::Abandoned);
        }
        let raw = send(client, cfg, key.as_deref(), bytes.clone(), hooks)?;
        let (why, after) = match raw.map(|r| verdict(cfg, key.as_deref(), r)) {
            Ok(Verdict::Answer(v)) => return Ok(v),
            Ok(Verdict::Fail(e)) => return Err(e.into()),
            Ok(Verdict::Retry { why, after }) => (why, after),
            Err(Transport { why, sent }) => {
                if sent {
                    unanswered(bytes.len() as u64, &why)?;
                }
                (why, None)
            }
        };
        retry += 1;
        if retry > cfg.retries {
            return Err(LlmError::RetriesExhausted {
                provider,
                attempts: retry,
                last: why,
                retry_after: after,
            }
            .into());
        }
        let mut delay = retry::backoff(cfg.retry_initial, cfg.retry_max, retry);
        if let Some(after) = after {
            if after > cfg.retry_max {
                // Not a failure of the message: the runtime defers it.
                return Err(LlmError::RateLimited {
                    provider,
                    retry_after: after,
                    retry_max: cfg.retry_max,
                }
                .into());
            }
            delay = delay.max(after);
        }
        on_retry(hooks, retry, &why, delay);
        pause(delay, hooks)?;
    }
}

fn bad_key(cfg: &LlmConfig) -> LlmError {
    LlmError::BadKey {
        provider: cfg.provider.name(),
        var: cfg.key_env().unwrap_or_default().to_string(),
    }
}

/// Sleeps `d`, heartbeating; a stop request cuts it short.
fn pause(d: Duration, hooks: &mut dyn Hooks) -> Result<(), CallError> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if hooks.should_stop() {
            return Err(CallError::Abandoned);
        }
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
        hooks.heartbeat();
    }
    Ok(())
}

/// A transport failure (retryable), described.
pub(super) struct Transport {
    pub(super) why: String,
    /// The request may have reached the provider (not a failed connect).
    pub(super) sent: bool,
}

/// One HTTP exchange.
fn send(
    client: &reqwest::blocking::Client,
    cfg: &LlmConfig,
    key: Option<&str>,
    body: Vec<u8>,
    hooks: &mut dyn Hooks,
) -> Result<Result<Raw, Transport>, CallError> {
    let mut req = client
        .post(cfg.endpoint())
        .header("content-type", "application/json")
        .body(body);
    req = match (cfg.provider, key) {
        (Provider::Openai, Some(k)) => req.bearer_auth(k),
        (Provider::Anthropic, Some(k)) => match reqwest::header::HeaderValue::from_str(k) {
            // Sensitive: kept out of any debug output, as bearer_auth does.
            Ok(mut v) => {
                v.set_sensitive(true);
                req.header("x-api-key", v)
            }
            Err(_) => return Err(bad_key(cfg).into()),
        },
        (_, None) => req,
    };
    if cfg.provider == Provider::Anthropic {
        req = req.header("anthropic-version", "2023-06-01");
    }
    req = extra_headers(req, cfg)?;
    if cfg.stream {
        return super::stream::exchange(req, cfg, hooks);
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = req.send().and_then(|resp| {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Ok(Raw {
                status,
                retry_after,
                body: resp.text()?,
            })
        });
        let _ = tx.send(result);
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(raw)) => return Ok(Ok(raw)),
            Ok(Err(e)) => {
                return Ok(Err(Transport {
                    why: describe(&e, cfg),
                    sent: !e.is_connect(),
                }))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                hooks.heartbeat();
                if hooks.should_stop() {
                    // The helper thread ends with the process.
                    return Err(CallError::Abandoned);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Ok(Err(Transport {
                    why: "the HTTP thread ended without an answer".into(),
                    sent: true,
                }))
            }
        }
    }
}

/// `headers`, `headers_env` (values read now, marked sensitive) and `query`.
fn extra_headers(
    mut req: reqwest::blocking::RequestBuilder,
    cfg: &LlmConfig,
) -> Result<reqwest::blocking::RequestBuilder, CallError> {
    for (name, value) in &cfg.headers {
        req = req.header(name, value);
    }
    for (name, var) in &cfg.headers_env {
        let value = std::env::var(var).ok().filter(|v| !v.is_empty());
        let Some(value) = value else {
            return Err(LlmError::MissingKey {
                provider: cfg.provider.name(),
                var: var.clone(),
            }
            .into());
        };
        crate::secrets::remember(&value);
        let Ok(mut value) = reqwest::header::HeaderValue::from_str(&value) else {
            return Err(LlmError::BadKey {
                provider: cfg.provider.name(),
                var: var.clone(),
            }
            .into());
        };
        value.set_sensitive(true);
        req = req.header(name, value);
    }
    if !cfg.query.is_empty() {
        req = req.query(&cfg.query);
    }
    Ok(req)
}

pub(super) fn describe(e: &reqwest::Error, cfg: &LlmConfig) -> String {
    if e.is_timeout() {
        return format!(
            "no answer from {} within {:?} (timeout)",
            cfg.endpoint(),
            cfg.timeout
        );
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn verdict(cfg: &LlmConfig, key: Option<&str>, raw: Raw) -> Verdict {
    let provider = cfg.provider.name();
    let status = raw.status;
    if (200..300).contains(&status) {
        return match serde_json::from_str::<Value>(&raw.body) {
            Ok(v) if v.is_object() => Verdict::Answer(v),
            Ok(_) => Verdict::Fail(LlmError::Malformed {
                provider,
                reason: "the body is JSON but not an object".into(),
            }),
            Err(e) => Verdict::Fail(LlmError::Malformed {
                provider,
                reason: format!("the body is not JSON ({e})"),
            }),
        };
    }
    let detail = safe_detail(&raw.body, key);
    let lower = raw.body.to_ascii_lowercase();
    match status {
        401 | 403 => Verdict::Fail(LlmError::Unauthorized {
            provider,
            var: cfg
                .key_env()
                .unwrap_or("(none: api_key_env = \"\")")
                .to_string(),
            status,
            detail,
        }),
        408 | 409 | 425 | 429 | 500..=599 => Verdict::Retry {
            why: format!("HTTP {status}: {detail}"),
            after: raw
                .retry_after
                .as_deref()
                .and_then(|v| retry::parse_retry_after(v, SystemTime::now())),
        },
        _ if status == 404 || lower.contains("model_not_found") => {
            Verdict::Fail(LlmError::UnknownModel {
                provider,
                model: cfg.model.clone(),
                status,
                detail,
            })
        }
        _ if [
            "context_length_exceeded",
            "prompt is too long",
            "maximum context length",
            "context window",
        ]
        .iter()
        .any(|p| lower.contains(p)) =>
        {
            Verdict::Fail(LlmError::ContextTooLong {
                provider,
                model: cfg.model.clone(),
                detail,
            })
        }
        _ => Verdict::Fail(LlmError::Rejected {
            provider,
            status,
            detail,
        }),
    }
}

/// The provider's error text as society writes it: the key scrubbed from
/// the whole body first, then cut — cut first, a key echoed near the cut
/// would be left without its last characters, unrecognisable to the scrub.
fn safe_detail(body: &str, key: Option<&str>) -> String {
    error_detail(&scrub(body, key))
}

/// The provider's own error message (both protocols use `error.message`),
/// else the start of the body.
fn error_detail(body: &str) -> String {
    let msg = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let text = msg.unwrap_or_else(|| body.trim().to_string());
    let text = if text.is_empty() {
        "no details".into()
    } else {
        text
    };
    super::tools::truncate(&text, 300)
}

fn scrub(text: &str, key: Option<&str>) -> String {
    let out = match key {
        Some(k) if k.len() >= 4 => text.replace(k, "[redacted]"),
        _ => text.to_string(),
    };
    crate::secrets::scrub(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_sent_is_scrubbed_not_only_this_calls_key() {
        crate::secrets::remember("hdr-secret-azure-0123456789");
        crate::secrets::remember("sk-fallback-key-abcdefghij");
        let body = r#"{"error": {"message": "bad header hdr-secret-azure-0123456789 and key sk-fallback-key-abcdefghij"}}"#;
        let detail = safe_detail(body, Some("sk-this-call"));
        assert_eq!(detail, "bad header [redacted] and key [redacted]");
    }

    #[test]
    fn a_key_anywhere_in_a_long_error_never_reaches_the_detail() {
        let key = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz";
        let filler = "x".repeat(600);
        for at in 0..=filler.len() {
            let message = format!("{}{key}{}", &filler[..at], &filler[at..]);
            for body in [
                serde_json::json!({"error": {"message": message}}).to_string(),
                message.clone(),
            ] {
                let detail = safe_detail(&body, Some(key));
                // No 8 characters of the key in a row survive, wherever the cut.
                for w in key.as_bytes().windows(8) {
                    let w = std::str::from_utf8(w).expect("ascii");
                    assert!(!detail.contains(w), "at {at}: {detail}");
                }
            }
        }
    }
}
