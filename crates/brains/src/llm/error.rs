//! Why the `llm` brain could not finish a message. Messages name the
//! provider, the model and the environment variable involved, never a key.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("no API key for {provider}: environment variable {var} is not set (set it in the environment of `society up`/`society supervise`, or set api_key_env = \"\" for a server without keys)")]
    MissingKey { provider: &'static str, var: String },
    #[error("the API key for {provider} in environment variable {var} holds characters an HTTP header cannot carry (a stray newline?)")]
    BadKey { provider: &'static str, var: String },
    #[error("{provider} refused the API key from environment variable {var} (HTTP {status}): check the key and its permissions")]
    Unauthorized {
        provider: &'static str,
        var: String,
        status: u16,
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
    },
    #[error("{provider} asks to wait {retry_after_s}s before retrying, longer than retry_max ({retry_max_s}s)")]
    RateLimited {
        provider: &'static str,
        retry_after_s: u64,
        retry_max_s: u64,
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
