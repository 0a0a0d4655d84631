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

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

impl Price {
    pub fn usd(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input + output_tokens as f64 * self.output) / 1e6
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
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_retry_initial", with = "duration_str")]
    pub retry_initial: Duration,
    #[serde(default = "default_retry_max", with = "duration_str")]
    pub retry_max: Duration,
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
fn default_max_steps() -> u32 {
    8
}
fn default_retries() -> u32 {
    3
}
fn default_retry_initial() -> Duration {
    Duration::from_millis(500)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(20)
}

impl LlmConfig {
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
        super::own_tools::check(&cfg.tools).map_err(invalid)?;
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
        Ok(cfg)
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

    /// The request field carrying the answer's token limit.
    pub fn max_tokens_field(&self) -> MaxTokensField {
        match self.provider {
            Provider::Anthropic => MaxTokensField::MaxTokens,
            Provider::Openai => self
                .max_tokens_field
                .unwrap_or_else(|| MaxTokensField::default_for(&self.model)),
        }
    }

    /// The full endpoint URL. A `base_url` that already ends in `/v1` (as
    /// local servers document it) is accepted too.
    pub fn endpoint(&self) -> String {
        let base = self
            .base_url
            .as_deref()
            .unwrap_or(self.provider.default_base_url())
            .trim_end_matches('/');
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
}
