//! Why the `llm` brain could not finish a message. Messages name the
//! provider, the model and the environment variable involved, never a key.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("no API key for {provider}: environment variable {var} is not set (set it in the environment of `society up`/`society supervise`, or set api_key_env = \"\" for a server without keys)")]
    MissingKey { provider: &'static str, var: String },
    #[error("the API key for {provider} in environment variable {var} holds characters an HTTP header cannot carry (a stray newline?)")]
    BadKey { provider: &'static str, var: String },
    #[error("{provider} refused the API key from environment variable {var} (HTTP {status}: {detail}): check the key and its permissions")]
    Unauthorized {
        provider: &'static str,
        var: String,
        status: u16,
        detail: String,
    },
    #[error("{provider} does not know model {model:?} (HTTP {status}): {detail}")]
    UnknownModel {
        provider: &'static str,
        model: String,
        status: u16,
        detail: String,
    },
    #[error(
        "the conversation does not fit the context window of {model:?} at {provider}: {detail}"
    )]
    ContextTooLong {
        provider: &'static str,
        model: String,
        detail: String,
    },
    /// `detail` says why, quotes the provider and names the keys to change.
    #[error("the conversation does not fit the context window of {model:?} at {provider} and compaction did not help: {detail}")]
    CompactionDidNotHelp {
        provider: &'static str,
        model: String,
        detail: String,
    },
    #[error("{provider} rejected the request (HTTP {status}): {detail}")]
    Rejected {
        provider: &'static str,
        status: u16,
        detail: String,
    },
    #[error("{provider} sent a malformed response: {reason}")]
    Malformed {
        provider: &'static str,
        reason: String,
    },
    #[error("{provider} still failing after {attempts} attempts: {last}")]
    RetriesExhausted {
        provider: &'static str,
        attempts: u32,
        last: String,
        /// The last answer's `Retry-After`: the message waits that long.
        retry_after: Option<Duration>,
    },
    #[error("{provider} asks to wait {}s before retrying, longer than retry_max ({}s)", retry_after.as_secs(), retry_max.as_secs())]
    RateLimited {
        provider: &'static str,
        retry_after: Duration,
        retry_max: Duration,
    },
    #[error("the circuit {circuit} is open: the provider refused the key too often ({last}); the message is parked until `society llm reset` or a successful call closes it")]
    CircuitOpen {
        circuit: String,
        /// This refusal opened the circuit: tell the orchestrator (once).
        escalate: bool,
        last: String,
    },
    #[error("failed to update the circuit file {}", path.display())]
    Circuit {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{provider} cut the answer off at max_tokens = {max_tokens} (stop reason {stop_reason:?}); the cut answer was not delivered: raise max_tokens{hint}")]
    Truncated {
        provider: &'static str,
        max_tokens: u64,
        stop_reason: String,
        hint: String,
    },
    #[error("{provider} answered with neither text nor tool calls (stop reason {stop_reason:?}): nothing to deliver, the attempt failed")]
    EmptyAnswer {
        provider: &'static str,
        stop_reason: String,
    },
    #[error("{provider} answered in text that is not the JSON object response_format {name:?} asks for: {text}")]
    NotStructured {
        provider: &'static str,
        name: String,
        text: String,
    },
    #[error("MCP server {server} could not be started: {reason}")]
    McpStart { server: String, reason: String },
    #[error("step limit: {max_steps} model calls without finishing (max_steps)")]
    StepLimit { max_steps: u32 },
    #[error("failed to read the system prompt {}", path.display())]
    Prompt {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("failed to write {}", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: society_core::FormatError,
    },
    #[error("failed to read {}", path.display())]
    Ledger {
        path: PathBuf,
        #[source]
        source: society_core::IoError,
    },
}

impl LlmError {
    /// The same request would fail the same way: a refused or missing key,
    /// an unknown model, a request the provider rejects, an answer we cannot
    /// read. Repeating the message only bills more calls.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            LlmError::MissingKey { .. }
                | LlmError::BadKey { .. }
                | LlmError::Unauthorized { .. }
                | LlmError::UnknownModel { .. }
                | LlmError::ContextTooLong { .. }
                | LlmError::CompactionDidNotHelp { .. }
                | LlmError::Rejected { .. }
                | LlmError::Malformed { .. }
        )
    }

    /// How long the provider asked us not to call (`Retry-After`): the
    /// message should wait that long rather than count a failed attempt.
    pub fn wait(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } => Some(*retry_after),
            LlmError::RetriesExhausted { retry_after, .. } => *retry_after,
            // Parked, not failed: the next attempt waits in the brain until
            // the circuit closes.
            LlmError::CircuitOpen { .. } => Some(Duration::ZERO),
            _ => None,
        }
    }

    /// The model keeps failing for reasons another model may not share:
    /// rate limits and server errors past their retries, an open circuit.
    pub fn falls_back(&self) -> bool {
        matches!(
            self,
            LlmError::RetriesExhausted { .. }
                | LlmError::RateLimited { .. }
                | LlmError::CircuitOpen { .. }
        )
    }

    /// What the orchestrator must be told, once, about this failure.
    pub fn escalation(&self) -> Option<(String, serde_json::Value)> {
        match self {
            LlmError::CircuitOpen {
                circuit,
                escalate: true,
                last,
            } => Some((
                format!("the LLM provider keeps refusing the API key: circuit {circuit} is open and agents using it park their messages; fix the key, then run `society llm reset {circuit}`"),
                serde_json::json!({"circuit": circuit, "last_error": last}),
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_errors_and_waits() {
        let unauthorized = LlmError::Unauthorized {
            provider: "openai",
            var: "K".into(),
            status: 401,
            detail: "Incorrect API key".into(),
        };
        assert!(unauthorized.is_permanent());
        assert!(unauthorized
            .to_string()
            .contains("HTTP 401: Incorrect API key"));
        let exhausted = |retry_after| LlmError::RetriesExhausted {
            provider: "openai",
            attempts: 2,
            last: "HTTP 429".into(),
            retry_after,
        };
        assert!(!exhausted(None).is_permanent());
        assert_eq!(exhausted(None).wait(), None);
        let s = Duration::from_secs(3);
        assert_eq!(exhausted(Some(s)).wait(), Some(s));
        let limited = LlmError::RateLimited {
            provider: "openai",
            retry_after: Duration::from_secs(30),
            retry_max: Duration::from_secs(2),
        };
        assert!(!limited.is_permanent());
        assert_eq!(limited.wait(), Some(Duration::from_secs(30)));
        assert!(!LlmError::StepLimit { max_steps: 3 }.is_permanent());
    }
}
