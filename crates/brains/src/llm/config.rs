//! The `llm` brain's config: the agent's `brain` table from `society.toml`,
//! plus what the runtime injects when it resolves the agent (`prices` for the
//! agent's model, `society_budget` from `[budget]`).

use super::anthropic::MIN_THINKING_BUDGET;
use super::mcp::McpServer;
use super::own_tools::OwnTool;
use crate::BrainError;
use serde::Deserialize;
use society_core::time::duration_str;
use std::path::PathBuf;
use std::time::Duration;

/// Which wire protocol the endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// `POST {base_url}/v1/chat/completions` (OpenAI and every compatible server:
    /// ollama, llama.cpp `llama-server`, vLLM, ...).
    Openai,
    /// `POST {base_url}/v1/messages` (Anthropic Messages).
    Anthropic,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
        }
    }

    fn default_base_url(self) -> &'static str {
        match self {
            Provider::Openai => "https://api.openai.com",
            Provider::Anthropic => "https://api.anthropic.com",
        }
    }

    fn default_key_env(self) -> &'static str {
        match self {
            Provider::Openai => "OPENAI_API_KEY",
            Provider::Anthropic => "ANTHROPIC_API_KEY",
        }
    }

    /// The endpoint path after the base URL.
    pub fn path(self) -> &'static str {
        match self {
            Provider::Openai => "/v1/chat/completions",
            Provider::Anthropic => "/v1/messages",
        }
    }
}

/// The name under which OpenAI-compatible requests carry the answer's
/// token limit: OpenAI's reasoning models refuse `max_tokens`, many local
/// servers only know `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensField {
    MaxTokens,
    MaxCompletionTokens,
}

impl MaxTokensField {
    pub fn key(self) -> &'static str {
        match self {
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        }
    }

    /// `max_completion_tokens` for OpenAI's reasoning models (`o1`, `o3`,
    /// `o4-mini`, `gpt-5*`, also behind a router prefix such as `openai/o3`),
    /// `max_tokens` for everything else: it is what compatible servers know.
    fn default_for(model: &str) -> MaxTokensField {
        let name = model
            .rsplit('/')
            .next()
            .unwrap_or(model)
            .to_ascii_lowercase();
        let o_series = name.strip_prefix('o').is_some_and(|rest| {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            digits > 0 && matches!(rest[digits..].chars().next(), None | Some('-'))
        });
        if o_series || name.starts_with("gpt-5") {
            MaxTokensField::MaxCompletionTokens
        } else {
            MaxTokensField::MaxTokens
        }
    }
}

/// OpenAI's `reasoning_effort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    Minimal,
    Low,
    Medium,
    High,
}

impl ReasoningEffort {
    pub fn name(self) -> &'static str {
        match self {
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        }
    }
}

/// `tool_choice`: whether (and which) tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum ToolChoice {
    /// The model decides (the providers' default).
    Auto,
    /// Some tool, never plain text (`required` / Anthropic `any`).
    Required,
    /// No tool.
    None,
    /// This tool.
    Tool(String),
}

impl From<String> for ToolChoice {
    fn from(s: String) -> ToolChoice {
        match s.as_str() {
            "auto" => ToolChoice::Auto,
            "required" | "any" => ToolChoice::Required,
            "none" => ToolChoice::None,
            _ => ToolChoice::Tool(s),
        }
    }
}

/// `response_format`: the final answer is JSON matching `schema`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseFormat {
    #[serde(default = "default_format_name")]
    pub name: String,
    pub schema: serde_json::Value,
    #[serde(default = "default_true")]
    pub strict: bool,
    /// OpenAI-compatible servers only: `json_schema` (OpenAI, vLLM,
    /// llama.cpp `llama-server`) or `json_object` — `{type: "json_object",
    /// schema}`, what llama-cpp-python's server takes.
    #[serde(default)]
    pub mode: FormatMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatMode {
    #[default]
    JsonSchema,
    JsonObject,
}

fn default_format_name() -> String {
    "answer".into()
}
fn default_true() -> bool {
    true
}

/// Spending limits; absent keys are unlimited. Daily limits reset at 00:00 UTC.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub tokens_per_day: Option<u64>,
    pub tokens_total: Option<u64>,
    pub usd_per_day: Option<f64>,
    pub usd_total: Option<f64>,
}

impl Limits {
    pub fn has_usd(&self) -> bool {
        self.usd_per_day.is_some() || self.usd_total.is_some()
    }
}

/// USD per million tokens. Prompt tokens read from the provider's cache
/// cost `cached_input`, tokens written to it `cache_write` (each `input`
/// when not given).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cached_input: Option<f64>,
    #[serde(default)]
    pub cache_write: Option<f64>,
}

impl Price {
    pub fn usd(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        self.usd_cached(input_tokens, 0, 0, output_tokens)
    }

    /// `input_tokens` counts every prompt token, `cached` and `written` included.
    pub fn usd_cached(
        &self,
        input_tokens: u64,
        cached: u64,
        written: u64,
        output_tokens: u64,
    ) -> f64 {
        let plain = input_tokens.saturating_sub(cached + written) as f64;
        (plain * self.input
            + cached as f64 * self.cached_input.unwrap_or(self.input)
            + written as f64 * self.cache_write.unwrap_or(self.input)
            + output_tokens as f64 * self.output)
            / 1e6
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    #[allow(dead_code)]
    kind: String,
    pub provider: Provider,
    #[serde(default)]
    base_url: Option<String>,
    pub model: String,
    /// Environment variable holding the key, read at call time. Default:
    /// `OPENAI_API_KEY` / `ANTHROPIC_API_KEY`; `""` sends no key (local servers).
    #[serde(default)]
    api_key_env: Option<String>,
    /// Relative to the agent folder (absolute paths are allowed).
    #[serde(default)]
    pub system_prompt_file: Option<PathBuf>,
    /// Inline alternative to `system_prompt_file`.
    #[serde(default)]
    pub system_prompt: Option<String>,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u64,
    /// OpenAI only; see [`MaxTokensField::default_for`].
    #[serde(default)]
    max_tokens_field: Option<MaxTokensField>,
    #[serde(default)]
    pub temperature: Option<f64>,
    /// OpenAI only.
    #[serde(default)]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Anthropic only: extended thinking with this many tokens of its
    /// `max_tokens` for thinking.
    #[serde(default)]
    pub thinking_budget: Option<u64>,
    #[serde(default = "default_timeout", with = "duration_str")]
    pub timeout: Duration,
    #[serde(default = "default_connect_timeout", with = "duration_str")]
    pub connect_timeout: Duration,
    /// Ask for the answer as server-sent events (see `stream.rs`).
    #[serde(default)]
    pub stream: bool,
    /// With `stream`: the longest silence allowed; see [`LlmConfig::stall_timeout`].
    #[serde(default, deserialize_with = "some_duration")]
    stall_timeout: Option<Duration>,
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_retry_initial", with = "duration_str")]
    pub retry_initial: Duration,
    #[serde(default = "default_retry_max", with = "duration_str")]
    pub retry_max: Duration,
    /// Refused keys (HTTP 401/403) in a row, by any agent on the same
    /// provider, endpoint and key variable, that open the circuit; 0 never does.
    #[serde(default = "default_circuit_after")]
    pub circuit_after: u32,
    /// How long an open circuit waits before one parked call probes it.
    #[serde(default = "default_circuit_cooldown", with = "duration_str")]
    pub circuit_cooldown: Duration,
    /// Extra request headers (OpenRouter's `HTTP-Referer`, an org or
    /// project header, a gateway's routing header).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Extra headers whose *values* are read from environment variables at
    /// each call (Azure OpenAI's `api-key`), kept out of society.toml and logs.
    #[serde(default)]
    pub headers_env: std::collections::BTreeMap<String, String>,
    /// Query parameters added to the endpoint (Azure OpenAI's `api-version`).
    #[serde(default)]
    pub query: std::collections::BTreeMap<String, String>,
    /// Replaces the provider's endpoint path (`/v1/chat/completions`,
    /// `/v1/messages`) after `base_url`, e.g. Azure's
    /// `/openai/deployments/NAME/chat/completions`.
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Stop sequences (`stop` / Anthropic `stop_sequences`).
    #[serde(default)]
    pub stop: Vec<String>,
    /// OpenAI only.
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    /// Anthropic only: `cache_control` breakpoints on the system prompt,
    /// the tools and the history's stable prefix.
    #[serde(default)]
    pub prompt_cache: bool,
    /// Offer the `decide` tool (propose a decision the runtime assesses).
    #[serde(default)]
    pub decide: bool,
    /// Offer the `remember` and `recall` tools (the agent's `memory.jsonl`).
    #[serde(default)]
    pub memory: bool,
    /// Offer the `read_shared` tool (`.society-agent/shared/`).
    #[serde(default)]
    pub shared: bool,
    /// List the shared files (names, sizes) in the system prompt; offers
    /// `read_shared` too.
    #[serde(default)]
    pub shared_in_prompt: bool,
    /// Models to move to, in order, when this one keeps failing: tables of
    /// brain keys that override this config's (see [`Self::fallback_configs`]).
    #[serde(default)]
    fallback: Vec<serde_json::Value>,
    /// The parsed `fallback` entries.
    #[serde(skip)]
    pub fallbacks: Vec<LlmConfig>,
    #[serde(default)]
    pub budget: Limits,
    /// Injected by the runtime from `[prices."<model>"]`.
    #[serde(default)]
    pub prices: Option<Price>,
    /// Injected by the runtime from `[budget]`.
    #[serde(default)]
    pub society_budget: Limits,
    /// Own tools: `[[agent.brain.tools]]` (see `own_tools.rs`).
    #[serde(default)]
    pub tools: Vec<OwnTool>,
    /// MCP servers: `[[agent.brain.mcp]]` (see `mcp.rs`).
    #[serde(default)]
    pub mcp: Vec<McpServer>,
    /// The sandbox of its tools and MCP servers (see `sandbox.rs`); the
    /// merged settings are in [`Self::sandbox_settings`].
    #[serde(default, rename = "sandbox")]
    _sandbox: Option<serde_json::Value>,
    /// Injected by the runtime from `[sandbox]`.
    #[serde(default, rename = "society_sandbox")]
    _society_sandbox: Option<serde_json::Value>,
    #[serde(skip)]
    pub sandbox_settings: crate::sandbox::Settings,
    /// Compaction (see `compact.rs`): the model's context window in tokens;
    /// without it only a provider's "context too long" compacts.
    #[serde(default)]
    pub context_window: Option<u64>,
    /// Share of `context_window` past which a request is compacted first.
    #[serde(default)]
    compact_at: Option<f64>,
    /// Messages (user turns) kept verbatim; the one being handled always is.
    #[serde(default = "default_compact_keep")]
    pub compact_keep: u32,
    /// A cheaper model on the same endpoint for summaries.
    #[serde(default)]
    pub compact_model: Option<String>,
    /// The summary's `max_tokens`.
    #[serde(default = "default_compact_max_tokens")]
    pub compact_max_tokens: u64,
    /// Injected by the runtime from `[prices."<compact_model>"]`.
    #[serde(default)]
    pub compact_prices: Option<Price>,
}

fn default_compact_keep() -> u32 {
    2
}
fn default_compact_max_tokens() -> u64 {
    1024
}

fn default_max_tokens() -> u64 {
    1024
}

/// Highest `max_tokens` accepted at load: no Anthropic model answers more
/// than 128k tokens; OpenAI-compatible servers (local ones with long
/// contexts included) get room up to a million.
fn max_tokens_cap(provider: Provider) -> u64 {
    match provider {
        Provider::Openai => 1_000_000,
        Provider::Anthropic => 128_000,
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_stall_timeout() -> Duration {
    Duration::from_secs(30)
}

fn some_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration_str::deserialize(d).map(Some)
}
fn default_max_steps() -> u32 {
    8
}
fn default_retries() -> u32 {
    3
}
fn default_retry_initial() -> Duration {
    Duration::from_millis(500)
}
fn default_circuit_after() -> u32 {
    3
}
fn default_circuit_cooldown() -> Duration {
    Duration::from_secs(300)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(20)
}

impl LlmConfig {
    /// Is `read_shared` offered?
    pub fn offers_shared(&self) -> bool {
        self.shared || self.shared_in_prompt
    }

    pub fn parse(config: &serde_json::Value) -> Result<LlmConfig, BrainError> {
        let invalid = |reason: String| BrainError::Config {
            kind: "llm".into(),
            reason,
        };
        let cfg: LlmConfig =
            serde_json::from_value(config.clone()).map_err(|e| invalid(e.to_string()))?;
        if cfg.model.trim().is_empty() {
            return Err(invalid("`model` is empty".into()));
        }
        if cfg.max_steps == 0 {
            return Err(invalid("`max_steps` must be at least 1".into()));
        }
        cfg.check_ranges().map_err(invalid)?;
        cfg.check_compaction().map_err(invalid)?;
        cfg.check_stream().map_err(invalid)?;
        super::own_tools::check(&cfg.tools).map_err(invalid)?;
        if let Some(t) = cfg
            .tools
            .iter()
            .find(|t| super::memory_tools::offers(&cfg, &t.name))
        {
            return Err(invalid(format!(
                "own tool {:?} takes the name of a tool this brain offers (memory/shared): rename it",
                t.name
            )));
        }
        super::mcp::check(&cfg.mcp).map_err(invalid)?;
        if cfg.system_prompt.is_some() && cfg.system_prompt_file.is_some() {
            return Err(invalid(
                "give `system_prompt` or `system_prompt_file`, not both".into(),
            ));
        }
        if cfg.prices.is_none() && (cfg.budget.has_usd() || cfg.society_budget.has_usd()) {
            return Err(invalid(format!(
                "a USD budget applies but model {:?} has no price: add [prices.{:?}] input = .., output = .. (USD per million tokens) to society.toml",
                cfg.model, cfg.model
            )));
        }
        let url = cfg.endpoint();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(format!(
                "`base_url` must start with http:// or https://, got {url:?}"
            )));
        }
        let mut cfg = cfg;
        cfg.sandbox_settings = crate::sandbox::Settings::from_brain(config).map_err(invalid)?;
        for tool in &mut cfg.tools {
            tool.sandbox = cfg.sandbox_settings.clone();
        }
        for server in &mut cfg.mcp {
            server.sandbox = cfg.sandbox_settings.clone();
        }
        cfg.fallbacks = Self::fallback_configs(config, &cfg.fallback)?;
        Ok(cfg)
    }

    /// Keys that belong to one provider: a fallback entry that changes
    /// `provider` does not inherit them.
    const PROVIDER_KEYS: [&'static str; 12] = [
        "base_url",
        "api_key_env",
        "max_tokens_field",
        "reasoning_effort",
        "thinking_budget",
        "seed",
        "prompt_cache",
        "headers",
        "headers_env",
        "query",
        "path",
        "temperature",
    ];

    /// Each `fallback` entry is this config with the entry's keys on top —
    /// except `fallback` itself, the primary model's prices (the runtime
    /// puts each entry's own `prices` in it) and, when the entry changes
    /// `provider`, the [`Self::PROVIDER_KEYS`].
    fn fallback_configs(
        raw: &serde_json::Value,
        entries: &[serde_json::Value],
    ) -> Result<Vec<LlmConfig>, BrainError> {
        let mut out = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let invalid = |reason: String| BrainError::Config {
                kind: "llm".into(),
                reason: format!("fallback[{i}]: {reason}"),
            };
            let Some(over) = entry.as_object() else {
                return Err(invalid("must be a table of brain keys".into()));
            };
            if !over.contains_key("model") {
                return Err(invalid("give `model` (the model to move to)".into()));
            }
            for key in ["fallback", "kind", "budget", "society_budget"] {
                if over.contains_key(key) {
                    return Err(invalid(format!("`{key}` cannot be set per fallback")));
                }
            }
            let mut merged = raw.as_object().cloned().unwrap_or_default();
            for key in ["fallback", "prices", "compact_prices"] {
                merged.remove(key);
            }
            if over
                .get("provider")
                .is_some_and(|p| Some(p) != raw.get("provider"))
            {
                for key in Self::PROVIDER_KEYS {
                    merged.remove(key);
                }
            }
            merged.extend(over.clone());
            let cfg =
                LlmConfig::parse(&serde_json::Value::Object(merged)).map_err(|e| match e {
                    BrainError::Config { reason, .. } => invalid(reason),
                    other => invalid(other.to_string()),
                })?;
            out.push(cfg);
        }
        Ok(out)
    }

    /// This config (0) or its fallback `i` (1, 2, ...).
    pub fn candidate(&self, i: usize) -> &LlmConfig {
        match i {
            0 => self,
            _ => &self.fallbacks[i - 1],
        }
    }

    /// What the provider would refuse, said at load: the key, the value and
    /// what is allowed.
    fn check_ranges(&self) -> Result<(), String> {
        let p = self.provider;
        let name = p.name();
        let cap = max_tokens_cap(p);
        if !(1..=cap).contains(&self.max_tokens) {
            return Err(format!(
                "`max_tokens` = {} is out of range for provider {name}: allowed 1 to {cap}",
                self.max_tokens
            ));
        }
        if let Some(t) = self.temperature {
            let top = match p {
                Provider::Openai => 2.0,
                Provider::Anthropic => 1.0,
            };
            if !(0.0..=top).contains(&t) {
                return Err(format!(
                    "`temperature` = {t} is out of range for provider {name}: allowed 0 to {top}"
                ));
            }
        }
        let only = |key: &str, provider: Provider| {
            format!(
                "`{key}` is for provider {} only, this agent uses {name}",
                provider.name()
            )
        };
        match p {
            Provider::Openai if self.thinking_budget.is_some() => {
                return Err(
                    only("thinking_budget", Provider::Anthropic) + " (use `reasoning_effort`)"
                )
            }
            Provider::Anthropic if self.reasoning_effort.is_some() => {
                return Err(only("reasoning_effort", Provider::Openai) + " (use `thinking_budget`)")
            }
            Provider::Anthropic if self.max_tokens_field.is_some() => {
                return Err(only("max_tokens_field", Provider::Openai))
            }
            _ => {}
        }
        if let Some(t) = self.top_p {
            if !(0.0..=1.0).contains(&t) {
                return Err(format!(
                    "`top_p` = {t} is out of range for provider {name}: allowed 0 to 1"
                ));
            }
        }
        if p == Provider::Anthropic && self.seed.is_some() {
            return Err(only("seed", Provider::Openai));
        }
        if p == Provider::Openai && self.prompt_cache {
            return Err(only("prompt_cache", Provider::Anthropic)
                + " (OpenAI caches long prompts by itself; cached tokens are read from its usage)");
        }
        let max_stop = match p {
            Provider::Openai => 4,
            Provider::Anthropic => 8191,
        };
        if self.stop.len() > max_stop || self.stop.iter().any(String::is_empty) {
            return Err(format!(
                "`stop` must hold 1 to {max_stop} non-empty strings for provider {name}"
            ));
        }
        if let Some(path) = &self.path {
            if !path.starts_with('/') {
                return Err(format!("`path` = {path:?} must start with /"));
            }
        }
        for (what, map) in [
            ("headers", &self.headers),
            ("headers_env", &self.headers_env),
        ] {
            for (k, v) in map {
                if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                    return Err(format!("`{what}`: {k:?} is not a valid header name"));
                }
                if what == "headers" && reqwest::header::HeaderValue::from_str(v).is_err() {
                    return Err(format!(
                        "`headers`: the value of {k:?} cannot be sent in a header"
                    ));
                }
                if what == "headers_env" && v.is_empty() {
                    return Err(format!(
                        "`headers_env`: {k:?} names no environment variable"
                    ));
                }
            }
        }
        if let Some(f) = &self.response_format {
            if p == Provider::Anthropic && f.mode != FormatMode::JsonSchema {
                return Err(only("response_format.mode", Provider::Openai)
                    + " (Anthropic answers through the final_answer tool)");
            }
            if f.schema.get("type").and_then(|t| t.as_str()) != Some("object") {
                return Err(
                    "`response_format.schema` must be a JSON Schema with type = \"object\"".into(),
                );
            }
            if !f
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                || f.name.is_empty()
                || f.name.len() > 64
            {
                return Err(format!(
                    "`response_format.name` = {:?}: use [a-zA-Z0-9_-], 1 to 64",
                    f.name
                ));
            }
        }
        if let Some(b) = self.thinking_budget {
            if b < MIN_THINKING_BUDGET || b >= self.max_tokens {
                return Err(format!(
                    "`thinking_budget` = {b} is out of range for provider {name}: allowed {MIN_THINKING_BUDGET} to {} (below `max_tokens` = {})",
                    self.max_tokens.saturating_sub(1),
                    self.max_tokens
                ));
            }
            if let Some(t) = self.temperature.filter(|t| *t != 1.0) {
                return Err(format!(
                    "`temperature` = {t} cannot be combined with `thinking_budget` at provider {name}: leave it unset (or 1)"
                ));
            }
        }
        Ok(())
    }

    /// The compaction keys, said at load with the key and what is allowed.
    fn check_compaction(&self) -> Result<(), String> {
        if self.context_window == Some(0) {
            return Err("`context_window` must be at least 1 (tokens)".into());
        }
        if let Some(at) = self.compact_at {
            if self.context_window.is_none() {
                return Err(format!(
                    "`compact_at` = {at} needs `context_window` (the model's window in tokens)"
                ));
            }
            if !(at > 0.0 && at < 1.0) {
                return Err(format!(
                    "`compact_at` = {at} is out of range: a share of `context_window` between 0 and 1 (exclusive)"
                ));
            }
        }
        if self.compact_keep == 0 {
            return Err(
                "`compact_keep` must be at least 1 (the message being handled is always kept)"
                    .into(),
            );
        }
        let cap = max_tokens_cap(self.provider);
        if !(1..=cap).contains(&self.compact_max_tokens) {
            return Err(format!(
                "`compact_max_tokens` = {} is out of range for provider {}: allowed 1 to {cap}",
                self.compact_max_tokens,
                self.provider.name()
            ));
        }
        if let Some(m) = &self.compact_model {
            if m.trim().is_empty() {
                return Err("`compact_model` is empty".into());
            }
            let usd = self.budget.has_usd() || self.society_budget.has_usd();
            if usd && *m != self.model && self.compact_prices.is_none() {
                return Err(format!(
                    "a USD budget applies but compact_model {m:?} has no price: add [prices.{m:?}] input = .., output = .. (USD per million tokens) to society.toml"
                ));
            }
        }
        Ok(())
    }

    /// `compact_at`, defaulted.
    pub fn compact_at(&self) -> f64 {
        self.compact_at.unwrap_or(0.75)
    }

    /// The config of a summary call: the compaction model (with its price),
    /// `compact_max_tokens`, and no sampling or thinking options.
    pub fn for_compaction(&self) -> LlmConfig {
        let mut c = self.clone();
        if let Some(m) = self.compact_model.as_ref().filter(|m| **m != self.model) {
            c.model = m.clone();
            c.prices = self.compact_prices;
        }
        c.max_tokens = self.compact_max_tokens;
        c.temperature = None;
        c.reasoning_effort = None;
        c.thinking_budget = None;
        c
    }

    /// `stall_timeout` needs `stream` and must leave the model some time.
    fn check_stream(&self) -> Result<(), String> {
        match self.stall_timeout {
            Some(_) if !self.stream => Err(
                "`stall_timeout` applies to streamed answers only: set `stream = true` (without it, `timeout` bounds the whole request)".into(),
            ),
            Some(d) if d.is_zero() => Err(
                "`stall_timeout` = \"0s\" is out of range: it must be longer than zero".into(),
            ),
            _ => Ok(()),
        }
    }

    /// With `stream`, the longest silence allowed: before the response
    /// starts, and between two chunks of it. `timeout` is not used then:
    /// a model that keeps producing tokens is never cut.
    pub fn stall_timeout(&self) -> Duration {
        self.stall_timeout.unwrap_or_else(default_stall_timeout)
    }

    /// The request field carrying the answer's token limit.
    pub fn max_tokens_field(&self) -> MaxTokensField {
        match self.provider {
            Provider::Anthropic => MaxTokensField::MaxTokens,
            Provider::Openai => self
                .max_tokens_field
                .unwrap_or_else(|| MaxTokensField::default_for(&self.model)),
        }
    }

    /// The full endpoint URL (without `query`). A `base_url` that already
    /// ends in `/v1` (as local servers document it) is accepted too; a
    /// `path` replaces the provider's path and is appended as is.
    pub fn endpoint(&self) -> String {
        let base = self
            .base_url
            .as_deref()
            .unwrap_or(self.provider.default_base_url())
            .trim_end_matches('/');
        if let Some(path) = &self.path {
            return format!("{base}{path}");
        }
        let base = base.strip_suffix("/v1").unwrap_or(base);
        format!("{base}{}", self.provider.path())
    }

    /// The variable holding the key, or `None` for unauthenticated servers.
    pub fn key_env(&self) -> Option<&str> {
        match self.api_key_env.as_deref() {
            Some("") => None,
            Some(v) => Some(v),
            None => Some(self.provider.default_key_env()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_endpoint() {
        let cfg = LlmConfig::parse(&json!({"kind": "llm", "provider": "openai", "model": "m",
            "base_url": "http://127.0.0.1:9/v1/"}))
        .expect("valid");
        assert_eq!(cfg.endpoint(), "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(cfg.key_env(), Some("OPENAI_API_KEY"));
        assert_eq!(cfg.retries, 3);
        assert_eq!(cfg.timeout, Duration::from_secs(60));
        let cfg = LlmConfig::parse(
            &json!({"kind": "llm", "provider": "anthropic", "model": "m",
            "api_key_env": "", "timeout": "2s"}),
        )
        .expect("valid");
        assert_eq!(cfg.endpoint(), "https://api.anthropic.com/v1/messages");
        assert_eq!(cfg.key_env(), None);
        assert_eq!(cfg.timeout, Duration::from_secs(2));
    }

    #[test]
    fn refuses_bad_configs() {
        for bad in [
            json!({"kind": "llm", "provider": "gemini", "model": "m"}),
            json!({"kind": "llm", "provider": "openai", "model": "m", "temprature": 1}),
            json!({"kind": "llm", "provider": "openai", "model": "m", "budget": {"usd_total": 1.0}}),
            json!({"kind": "llm", "provider": "openai", "model": "m", "base_url": "ftp://x"}),
            json!({"kind": "llm", "provider": "openai", "model": "m", "reasoning_effort": "max"}),
            json!({"kind": "llm", "provider": "openai", "model": "m", "max_tokens_field": "tokens"}),
        ] {
            assert!(LlmConfig::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_what_the_provider_would_refuse_naming_key_value_and_range() {
        let err = |provider: &str, extra: serde_json::Value| {
            let mut v = json!({"kind": "llm", "provider": provider, "model": "m"});
            if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
                v.extend(extra.clone());
            }
            match LlmConfig::parse(&v) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("accepted {v}"),
            }
        };
        for (provider, extra, says) in [
            ("anthropic", json!({"temperature": 1.7}), "`temperature` = 1.7 is out of range for provider anthropic: allowed 0 to 1"),
            ("openai", json!({"temperature": 2.5}), "`temperature` = 2.5 is out of range for provider openai: allowed 0 to 2"),
            ("openai", json!({"temperature": -0.1}), "allowed 0 to 2"),
            ("anthropic", json!({"max_tokens": 10_000_000}), "`max_tokens` = 10000000 is out of range for provider anthropic: allowed 1 to 128000"),
            ("openai", json!({"max_tokens": 0}), "`max_tokens` = 0 is out of range for provider openai: allowed 1 to 1000000"),
            ("anthropic", json!({"max_tokens": 4000, "thinking_budget": 500}), "`thinking_budget` = 500 is out of range for provider anthropic: allowed 1024 to 3999"),
            ("anthropic", json!({"max_tokens": 4000, "thinking_budget": 4000}), "allowed 1024 to 3999"),
            ("anthropic", json!({"max_tokens": 4000, "thinking_budget": 2000, "temperature": 0.5}), "`temperature` = 0.5 cannot be combined with `thinking_budget`"),
            ("openai", json!({"thinking_budget": 2000}), "`thinking_budget` is for provider anthropic only"),
            ("anthropic", json!({"reasoning_effort": "high"}), "`reasoning_effort` is for provider openai only"),
            ("anthropic", json!({"max_tokens_field": "max_tokens"}), "`max_tokens_field` is for provider openai only"),
        ] {
            let e = err(provider, extra.clone());
            assert!(e.contains(says), "{provider} {extra}: {e}");
        }
        for (provider, ok) in [
            (
                "anthropic",
                json!({"temperature": 1.0, "max_tokens": 128_000}),
            ),
            (
                "anthropic",
                json!({"max_tokens": 4000, "thinking_budget": 1024, "temperature": 1.0}),
            ),
            (
                "openai",
                json!({"temperature": 2.0, "max_tokens": 1_000_000, "reasoning_effort": "low"}),
            ),
        ] {
            let mut v = json!({"kind": "llm", "provider": provider, "model": "m"});
            if let (Some(v), Some(ok)) = (v.as_object_mut(), ok.as_object()) {
                v.extend(ok.clone());
            }
            LlmConfig::parse(&v).unwrap_or_else(|e| panic!("{v}: {e}"));
        }
    }

    #[test]
    fn streaming_keys() {
        let parse = |extra: serde_json::Value| {
            let mut v = json!({"kind": "llm", "provider": "openai", "model": "m"});
            if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
                v.extend(extra.clone());
            }
            LlmConfig::parse(&v).map_err(|e| e.to_string())
        };
        let cfg = parse(json!({})).expect("valid");
        assert!(!cfg.stream, "off by default");
        let cfg = parse(json!({"stream": true})).expect("valid");
        assert_eq!(cfg.stall_timeout(), Duration::from_secs(30));
        let cfg = parse(json!({"stream": true, "stall_timeout": "250ms"})).expect("valid");
        assert_eq!(cfg.stall_timeout(), Duration::from_millis(250));
        for (extra, says) in [
            (
                json!({"stream": true, "stall_timeout": "0s"}),
                "`stall_timeout` = \"0s\" is out of range",
            ),
            (
                json!({"stall_timeout": "5s"}),
                "`stall_timeout` applies to streamed answers only: set `stream = true`",
            ),
            (
                json!({"stream": true, "stall_timeout": "soon"}),
                "invalid duration \"soon\"",
            ),
            (json!({"stream": "yes"}), "invalid type"),
        ] {
            let e = parse(extra.clone()).expect_err("refused");
            assert!(e.contains(says), "{extra}: {e}");
        }
    }

    #[test]
    fn the_token_limit_field_defaults_by_model_and_can_be_set() {
        let field = |provider: &str, model: &str, set: Option<&str>| {
            let mut v = json!({"kind": "llm", "provider": provider, "model": model});
            if let Some(f) = set {
                v["max_tokens_field"] = json!(f);
            }
            LlmConfig::parse(&v)
                .expect("valid")
                .max_tokens_field()
                .key()
        };
        for model in [
            "o1",
            "o1-preview",
            "o3-mini",
            "o4-mini",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5.1",
            "openai/o3",
        ] {
            assert_eq!(
                field("openai", model, None),
                "max_completion_tokens",
                "{model}"
            );
        }
        for model in [
            "gpt-4o",
            "gpt-4.1-mini",
            "qwen2.5:7b",
            "omni",
            "o",
            "llama3",
        ] {
            assert_eq!(field("openai", model, None), "max_tokens", "{model}");
        }
        assert_eq!(
            field("openai", "qwen", Some("max_completion_tokens")),
            "max_completion_tokens"
        );
        assert_eq!(field("openai", "o3", Some("max_tokens")), "max_tokens");
        assert_eq!(field("anthropic", "o3", None), "max_tokens");
    }

    #[test]
    fn compaction_keys_are_checked_at_load() {
        let parse = |extra: serde_json::Value| {
            let mut v = json!({"kind": "llm", "provider": "openai", "model": "m"});
            if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
                v.extend(extra.clone());
            }
            LlmConfig::parse(&v).map_err(|e| e.to_string())
        };
        let cfg = parse(json!({})).expect("defaults");
        assert_eq!(
            (cfg.context_window, cfg.compact_at(), cfg.compact_keep),
            (None, 0.75, 2)
        );
        let cfg = parse(
            json!({"context_window": 8000, "compact_at": 0.5, "compact_keep": 1,
            "compact_model": "small", "compact_max_tokens": 300, "temperature": 0.3}),
        )
        .expect("valid");
        let c = cfg.for_compaction();
        assert_eq!(
            (c.model.as_str(), c.max_tokens, c.temperature),
            ("small", 300, None)
        );
        for (extra, says) in [
            (
                json!({"context_window": 0}),
                "`context_window` must be at least 1",
            ),
            (
                json!({"compact_at": 0.5}),
                "`compact_at` = 0.5 needs `context_window`",
            ),
            (
                json!({"context_window": 10, "compact_at": 1.0}),
                "`compact_at` = 1 is out of range",
            ),
            (
                json!({"context_window": 10, "compact_at": 0.0}),
                "between 0 and 1",
            ),
            (
                json!({"compact_keep": 0}),
                "`compact_keep` must be at least 1",
            ),
            (
                json!({"compact_max_tokens": 0}),
                "`compact_max_tokens` = 0 is out of range",
            ),
            (json!({"compact_model": " "}), "`compact_model` is empty"),
            (
                json!({"compact_model": "small", "prices": {"input": 1.0, "output": 1.0},
                "budget": {"usd_total": 1.0}}),
                "compact_model \"small\" has no price",
            ),
        ] {
            let e = parse(extra.clone()).expect_err("refused");
            assert!(e.contains(says), "{extra}: {e}");
        }
    }
}
