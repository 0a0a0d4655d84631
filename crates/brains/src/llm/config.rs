//! The `llm` brain's config: the agent's `brain` table from `society.toml`,
//! plus what the runtime injects when it resolves the agent (`prices` for the
//! agent's model, `society_budget` from `[budget]`).

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
    #[serde(default)]
    pub temperature: Option<f64>,
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
}

fn default_max_tokens() -> u64 {
    1024
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
        if cfg.max_steps == 0 || cfg.max_tokens == 0 {
            return Err(invalid(
                "`max_steps` and `max_tokens` must be at least 1".into(),
            ));
        }
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
        ] {
            assert!(LlmConfig::parse(&bad).is_err(), "{bad}");
        }
    }
}
