//! History compaction for long cases.
//!
//! A case's conversation grows with every message. Before each model call
//! the request's size is estimated (as the budgets do: body bytes / 4, or
//! the previous answer's tokens if larger); past `compact_at` ×
//! `context_window`, the turns before a cut ([`Conversation::cut`]: never
//! inside a message, so never between tool calls and their results, and
//! the last `compact_keep` messages kept) are summarised by one model call
//! (`compact_model`, else the agent's model; no tools), charged to
//! `costs.jsonl` with `"purpose": "compaction"`, and a `summary` turn is
//! appended to the conversation. Requests then carry the summary as their
//! first user turn and the turns after the cut verbatim; the file keeps
//! every turn.
//!
//! Reactively, a provider's "context too long" answer compacts once and
//! retries the call once (without `context_window` this is the only way
//! compaction happens); when nothing is left to cut, or the retried call is
//! refused again, the attempt fails with [`LlmError::CompactionDidNotHelp`].
//!
//! Crash safety: the summary line is written only after its call was
//! answered and charged. A process killed during the call leaves nothing,
//! and its replacement finds the same cut and summarises it again; once
//! the line exists, the cut it covers is never summarised again (the next
//! cut must lie after it).

use super::budget::{self, Exceeded};
use super::conversation::{Conversation, Turn};
use super::http::{self, CallError};
use super::inbound::Inbound;
use super::ledger::{self, Ledger};
use super::{anthropic, openai, Llm, LlmConfig, LlmError, Provider};
use crate::Context;
use serde_json::{json, Value};
use society_core::Envelope;

/// What the summariser is told.
const INSTRUCTIONS: &str =
    "You compact the history of a long conversation between an agent and the \
society of agents it works in, so the agent can continue without the original turns. Write a \
summary that keeps: what was asked and by whom (with message ids and case ids), what was answered \
or sent, decisions made, facts and numbers learned, files written or read, and what is still open. \
Be concise and factual; do not invent anything; answer with the summary only.";

/// How a summary opens the requests that carry it.
const FRAME: &str =
    "[Summary of the earlier conversation: its older turns were compacted into this summary.]";

/// The summary as requests send it: the first user turn.
pub fn framed(text: &str) -> String {
    format!("{FRAME}\n\n{text}")
}

/// Before a model call: summarises older turns when the request would pass
/// `compact_at` × `context_window`. `Some` when a budget forbids the summary
/// call (the message is parked like for any call).
pub fn maybe(
    llm: &mut Llm,
    ctx: &mut Context<'_>,
    conv: &mut Conversation,
    msg: &Envelope,
    inbound: &Inbound,
    system: &str,
) -> Result<Option<Exceeded>, CallError> {
    let Some(window) = llm.cfg.context_window else {
        return Ok(None);
    };
    let before = estimate(&llm.cfg, system, &llm.toolbox.definitions(), conv);
    let limit = (window as f64 * llm.cfg.compact_at()) as u64;
    if before <= limit {
        return Ok(None);
    }
    let Some(cut) = conv.cut(llm.cfg.compact_keep) else {
        // Nothing older than the kept messages: the call goes as it is,
        // and a refusal ends in CompactionDidNotHelp.
        tracing::warn!(
            agent = ctx.agent.as_str(),
            estimate = before,
            limit,
            "conversation past compact_at but nothing left to compact"
        );
        return Ok(None);
    };
    summarise(
        llm,
        ctx,
        conv,
        msg,
        inbound,
        system,
        cut,
        "context_window",
        before,
    )
}

/// After the provider refused the request as too long: compacts once, or
/// says why compaction cannot help.
pub fn forced(
    llm: &mut Llm,
    ctx: &mut Context<'_>,
    conv: &mut Conversation,
    msg: &Envelope,
    inbound: &Inbound,
    system: &str,
    refused: String,
) -> Result<Option<Exceeded>, CallError> {
    let Some(cut) = conv.cut(llm.cfg.compact_keep) else {
        let why = if conv.summary().is_some() {
            "already compacted: what is left is the kept messages"
        } else {
            "nothing older than the kept messages to summarise"
        };
        return Err(did_not_help(&llm.cfg, why, refused).into());
    };
    let before = estimate(&llm.cfg, system, &llm.toolbox.definitions(), conv);
    summarise(
        llm,
        ctx,
        conv,
        msg,
        inbound,
        system,
        cut,
        "context_too_long",
        before,
    )
}

fn did_not_help(cfg: &LlmConfig, why: &str, refused: String) -> LlmError {
    let window = cfg
        .context_window
        .map(|w| format!(" (now {w})"))
        .unwrap_or_default();
    LlmError::CompactionDidNotHelp {
        provider: cfg.provider.name(),
        model: cfg.model.clone(),
        detail: format!(
            "{why} ({refused}); lower compact_keep (now {}) so more is summarised, or set context_window{window} so it compacts sooner",
            cfg.compact_keep
        ),
    }
}

/// Tokens the next request would carry, estimated as the budgets do.
pub fn estimate(
    cfg: &LlmConfig,
    system: &str,
    tools: &[super::tools::Definition],
    conv: &Conversation,
) -> u64 {
    let turns = conv.for_request();
    let req = openai::Request {
        model: &cfg.model,
        system,
        tools,
        turns: &turns,
        max_tokens: cfg.max_tokens,
        max_tokens_field: cfg.max_tokens_field(),
        temperature: cfg.temperature,
        reasoning_effort: cfg.reasoning_effort,
        thinking_budget: cfg.thinking_budget,
    };
    let body = match cfg.provider {
        Provider::Openai => openai::body(&req),
        Provider::Anthropic => anthropic::body(&req),
    };
    let size = serde_json::to_vec(&body).map_or(0, |b| b.len() as u64);
    let last = conv.last_usage().map_or(0, |u| u.input + u.output);
    size.div_ceil(4).max(last)
}

/// One summary call for `turns[..cut]`, charged, then the summary line.
#[allow(clippy::too_many_arguments)]
fn summarise(
    llm: &mut Llm,
    ctx: &mut Context<'_>,
    conv: &mut Conversation,
    msg: &Envelope,
    inbound: &Inbound,
    system: &str,
    cut: usize,
    reason: &str,
    before: u64,
) -> Result<Option<Exceeded>, CallError> {
    let mut cfg = llm.cfg.for_compaction();
    let (prev, older) = conv.older(cut);
    let covered = older.len();
    let text = transcript(prev, &older);
    let mut body = request(&cfg, &text);
    let size = serde_json::to_vec(&body).map_or(0, |b| b.len() as u64);
    let mine = ledger::tally(ctx.folder)?;
    let society = ledger::society_tally(ctx.folder)?;
    match budget::check(&cfg, &mine, &society, size.div_ceil(4)) {
        Ok(max_tokens) if max_tokens != cfg.max_tokens => {
            cfg.max_tokens = max_tokens;
            body = request(&cfg, &text);
        }
        Ok(_) => {}
        Err(exceeded) => return Ok(Some(exceeded)),
    }
    let client = llm.client()?;
    let (agent, gen) = (ctx.agent.as_str().to_string(), ctx.gen);
    let provider = cfg.provider.name();
    let answer = http::call(
        &client,
        &cfg,
        &body,
        ctx.hooks,
        |hooks, retry, why, delay| {
            hooks.log(
                "llm_retry",
                json!({"id": msg.id, "provider": provider, "model": cfg.model, "purpose": "compaction",
                    "retry": retry, "reason": why, "delay_ms": delay.as_millis() as u64}),
            );
        },
        |bytes, why| {
            Ledger::new(ctx.folder, &agent, gen).append(
                society_core::kinds::ledger::UNKNOWN_COST,
                json!({"provider": provider, "model": cfg.model, "request_bytes": bytes,
                    "reason": why, "case": inbound.case, "id": msg.id, "purpose": "compaction"}),
            )
        },
    );
    let answer = match answer {
        Err(CallError::Failed(LlmError::ContextTooLong { detail, .. })) => {
            return Err(did_not_help(
                &llm.cfg,
                "the turns to summarise do not fit the summary call either",
                detail,
            )
            .into())
        }
        other => other?,
    };
    let reply = match cfg.provider {
        Provider::Openai => openai::parse(&answer, 0),
        Provider::Anthropic => anthropic::parse(&answer),
    }
    .map_err(|reason| LlmError::Malformed { provider, reason })?;
    let estimated = !budget::usage_reported(&answer);
    let tokens = if estimated {
        budget::estimate(size, &reply)
    } else {
        reply.usage
    };
    let usd = cfg
        .prices
        .map_or(0.0, |p| p.usd(tokens.input, tokens.output));
    let mut usage = json!({"provider": provider, "model": cfg.model, "input_tokens": tokens.input,
        "output_tokens": tokens.output, "usd": usd, "case": inbound.case, "id": msg.id,
        "purpose": "compaction"});
    if cfg.prices.is_none() {
        usage["priced"] = json!(false);
    }
    if estimated {
        usage["estimated"] = json!(true);
    }
    Ledger::new(ctx.folder, &agent, gen).append(society_core::kinds::ledger::USAGE, usage)?;
    let Some(summary) = reply.text.filter(|t| !t.trim().is_empty()) else {
        return Err(LlmError::EmptyAnswer {
            provider,
            stop_reason: reply.stop_reason.unwrap_or_default(),
        }
        .into());
    };
    conv.push(
        Turn::Summary {
            msg: msg.id,
            upto: cut,
            text: summary,
            model: cfg.model.clone(),
            usage: tokens,
        },
        gen,
    )?;
    let after = estimate(&llm.cfg, system, &llm.toolbox.definitions(), conv);
    tracing::info!(
        agent,
        turns = covered,
        before,
        after,
        "conversation compacted"
    );
    ctx.hooks.log(
        "llm_compacted",
        json!({"id": msg.id, "case": inbound.case, "reason": reason, "model": cfg.model,
            "upto": cut, "turns": covered, "tokens_before": before, "tokens_after": after,
            "cut_short": reply.truncated}),
    );
    Ok(None)
}

/// The summary call's body: instructions, then the transcript as one user
/// message; no tools.
fn request(cfg: &LlmConfig, transcript: &str) -> Value {
    match cfg.provider {
        Provider::Openai => {
            let mut b = json!({"model": cfg.model, "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": transcript}]});
            b[cfg.max_tokens_field().key()] = json!(cfg.max_tokens);
            b
        }
        Provider::Anthropic => json!({"model": cfg.model, "system": INSTRUCTIONS,
            "max_tokens": cfg.max_tokens,
            "messages": [{"role": "user", "content": [{"type": "text", "text": transcript}]}]}),
    }
}

/// The older turns as plain text: tool calls and results inline, so no
/// protocol pairing rules apply and no tools are needed.
fn transcript(prev: Option<&str>, turns: &[Turn]) -> String {
    let mut out = String::from("Summarise this conversation.\n");
    if let Some(prev) = prev {
        out.push_str("\n## Summary of what came before\n");
        out.push_str(prev);
        out.push('\n');
    }
    for turn in turns {
        match turn {
            Turn::User { text, .. } => {
                out.push_str("\n## Message to the agent\n");
                out.push_str(text);
                out.push('\n');
            }
            Turn::Assistant { text, calls, .. } => {
                out.push_str("\n## The agent\n");
                if let Some(t) = text {
                    out.push_str(t);
                    out.push('\n');
                }
                for c in calls {
                    out.push_str(&format!("called {}({})\n", c.name, c.args));
                }
            }
            Turn::Tool {
                name, result, ok, ..
            } => {
                let how = if *ok { "result" } else { "error" };
                out.push_str(&format!("\n## {name} {how}\n{result}\n"));
            }
            Turn::Summary { .. } => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::conversation::{ToolCall, Usage};
    use society_core::MsgId;

    fn cfg(provider: &str) -> LlmConfig {
        LlmConfig::parse(&json!({"kind": "llm", "provider": provider, "model": "big",
            "compact_model": "o4-mini", "compact_max_tokens": 300, "temperature": 0.5}))
        .expect("valid")
        .for_compaction()
    }

    #[test]
    fn the_summary_call_has_no_tools_and_its_own_model_and_limit() {
        let b = request(&cfg("openai"), "T");
        assert_eq!(b["model"], "o4-mini");
        assert_eq!(
            b["max_completion_tokens"], 300,
            "the field of the compact model"
        );
        assert_eq!(b.get("tools"), None);
        assert_eq!(b.get("temperature"), None);
        assert_eq!(b["messages"][1], json!({"role": "user", "content": "T"}));
        let b = request(&cfg("anthropic"), "T");
        assert_eq!(
            (b["max_tokens"].as_u64(), b.get("tools")),
            (Some(300), None)
        );
        assert_eq!(b["messages"][0]["content"][0]["text"], "T");
    }

    #[test]
    fn the_transcript_carries_calls_and_results_and_requests_lead_with_the_summary() {
        let m = MsgId::generate();
        let turns = vec![
            Turn::User {
                msg: m,
                text: "write it".into(),
            },
            Turn::Assistant {
                msg: m,
                step: 1,
                text: Some("on it".into()),
                calls: vec![ToolCall {
                    id: "c".into(),
                    name: "write_file".into(),
                    args: json!({"path": "a"}),
                }],
                usage: Usage::default(),
                thinking: vec![],
            },
            Turn::Tool {
                msg: m,
                step: 1,
                call: "c".into(),
                name: "write_file".into(),
                args: json!({}),
                result: "refused: no".into(),
                ok: false,
            },
        ];
        let t = transcript(Some("before"), &turns);
        for part in [
            "before",
            "write it",
            "on it",
            "called write_file({\"path\":\"a\"})",
            "## write_file error\nrefused: no",
        ] {
            assert!(t.contains(part), "{part:?} in {t}");
        }
        // Anthropic: the summary and the next user turn make one user message.
        let summary = Turn::Summary {
            msg: m,
            upto: 3,
            text: "S".into(),
            model: "small".into(),
            usage: Usage::default(),
        };
        let turns = [summary, turns[0].clone()];
        let c = LlmConfig::parse(&json!({"kind": "llm", "provider": "anthropic", "model": "m"}))
            .expect("valid");
        let req = openai::Request {
            model: "m",
            system: "sys",
            tools: &crate::llm::tools::definitions(&[]),
            turns: &turns,
            max_tokens: 10,
            max_tokens_field: c.max_tokens_field(),
            temperature: None,
            reasoning_effort: None,
            thinking_budget: None,
        };
        let b = anthropic::body(&req);
        assert_eq!(b["messages"].as_array().map(Vec::len), Some(1));
        assert_eq!(b["messages"][0]["content"][0]["text"], framed("S"));
        assert_eq!(b["messages"][0]["content"][1]["text"], "write it");
        let b = openai::body(&req);
        assert_eq!(
            b["messages"][1],
            json!({"role": "user", "content": framed("S")})
        );
    }
}
