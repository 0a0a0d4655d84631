//! The tool loop for one inbound message, driven by the tail of its
//! conversation log (see the crate-level notes in `llm.rs`).

use super::budget::{self, Exceeded};
use super::circuit::{Circuit, Gate};
use super::compact;
use super::conversation::{Conversation, Next, Started, ToolCall, Turn};
use super::extension;
use super::http::{self, CallError};
use super::inbound::{render, Inbound};
use super::inflight;
use super::ledger::{self, Ledger};
use super::memory_tools;
use super::own_tools::OnInterrupt;
use super::toolbox::{self, Invocation};
use super::tools::{self, ReplyTo};
use super::{anthropic, openai, wire, Llm, LlmError, Provider};
use crate::{Action, Context};
use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_core::{Envelope, MsgId};
use std::time::Instant;

/// The tool whose call ends a message; text said alongside it is delivered.
const FINISH: &str = "finish";

/// Longest tool result (and argument string) kept in `tools.jsonl`.
const SUMMARY: usize = 200;

pub fn run(llm: &mut Llm, ctx: &mut Context<'_>, msg: &Envelope) -> Result<Vec<Action>, CallError> {
    let ledger = Ledger::new(ctx.folder, ctx.agent.as_str(), ctx.gen);
    let inbound = Inbound::of(msg, &ledger)?;
    inflight::recover(ctx.folder, &ledger)?;
    let mut conv = Conversation::load(ctx.folder, &inbound.key)?;
    match &inbound.budget {
        Some(answer) if !answer.approved => {
            extension::rejected(&ledger, answer)?;
            return Ok(vec![Action::Log {
                message: format!(
                    "budget extension {} rejected: the parked message ends here{}",
                    answer.request,
                    answer
                        .note
                        .as_ref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                ),
            }]);
        }
        // The conversation resumes where the budget stopped it: no new turn.
        Some(answer) => extension::approved(&ledger, answer)?,
        None if !conv.has_user_turn(msg.id) => conv.push(
            Turn::User {
                msg: msg.id,
                text: render(msg),
            },
            ctx.gen,
        )?,
        None => {}
    }
    let system = llm.system_prompt(ctx)?;
    let structured = llm.cfg.response_format.is_some();
    llm.toolbox.prepare(ctx.folder, ctx.hooks)?;
    loop {
        ctx.hooks.heartbeat();
        match conv.next() {
            Next::Done => break,
            Next::Execute(calls) => {
                for call in calls {
                    execute(llm, ctx, &mut conv, msg, &call, &inbound.reply_to)?;
                }
            }
            Next::Call => {
                if ctx.hooks.should_stop() {
                    return Err(CallError::Abandoned);
                }
                let step = conv.steps(msg.id) + 1;
                if step > llm.cfg.max_steps {
                    return Err(LlmError::StepLimit {
                        max_steps: llm.cfg.max_steps,
                    }
                    .into());
                }
                if let Some(exceeded) =
                    call_model(llm, ctx, &mut conv, msg, &inbound, &system, step)?
                {
                    let mut actions = actions_of(&conv, msg.id, &inbound, structured);
                    actions.push(extension::request(
                        &ledger,
                        msg,
                        &inbound,
                        &exceeded,
                        actions.len(),
                        ctx,
                    )?);
                    return Ok(actions);
                }
            }
        }
    }
    let mut actions = actions_of(&conv, msg.id, &inbound, structured);
    actions.extend(
        llm.escalations
            .drain(..)
            .map(|(reason, context)| Action::Escalate { reason, context }),
    );
    Ok(actions)
}

/// One model call, unless a budget forbids it (then the budget that did).
fn call_model(
    llm: &mut Llm,
    ctx: &mut Context<'_>,
    conv: &mut Conversation,
    msg: &Envelope,
    inbound: &Inbound,
    system: &str,
    step: u32,
) -> Result<Option<Exceeded>, CallError> {
    if let Some(exceeded) = compact::maybe(llm, ctx, conv, msg, inbound, system)? {
        return Ok(Some(exceeded));
    }
    // The model, then each `fallback` in order while they keep failing;
    // the rest of the message stays on the one that answered.
    let last = llm.cfg.fallbacks.len();
    let mut i = llm.candidate;
    loop {
        match call_candidate(llm, i, ctx, conv, msg, inbound, system, step) {
            Err(CallError::Failed(e)) if i < last && e.falls_back() => {
                if let Some(escalation) = e.escalation() {
                    // The message goes on, on another model: the
                    // orchestrator still hears about the refused key.
                    llm.escalations.push(escalation);
                }
                let (from, to) = (llm.cfg.candidate(i), llm.cfg.candidate(i + 1));
                let fields = json!({"id": msg.id, "step": step, "from": from.model,
                    "from_provider": from.provider.name(), "to": to.model,
                    "to_provider": to.provider.name(), "fallback": i + 1, "reason": e.to_string()});
                tracing::warn!(from = from.model, to = to.model, "falling back: {e}");
                ctx.hooks.log("llm_fallback", fields);
                i += 1;
            }
            other => {
                llm.candidate = i;
                return other;
            }
        }
    }
}

/// One model call on candidate `i` (0: the model, 1..: its fallbacks).
#[allow(clippy::too_many_arguments)]
fn call_candidate(
    llm: &mut Llm,
    i: usize,
    ctx: &mut Context<'_>,
    conv: &mut Conversation,
    msg: &Envelope,
    inbound: &Inbound,
    system: &str,
    step: u32,
) -> Result<Option<Exceeded>, CallError> {
    let cfg = llm.cfg.candidate(i);
    let turns = conv.for_request();
    let tools = llm.toolbox.definitions();
    let mut req = openai::Request {
        model: &cfg.model,
        system,
        tools: &tools,
        turns: &turns,
        max_tokens: cfg.max_tokens,
        max_tokens_field: cfg.max_tokens_field(),
        temperature: cfg.temperature,
        reasoning_effort: cfg.reasoning_effort,
        thinking_budget: cfg.thinking_budget,
    };
    let build = |req: &openai::Request<'_>| {
        let mut body = match cfg.provider {
            Provider::Openai => openai::body(req),
            Provider::Anthropic => anthropic::body(req),
        };
        wire::apply(cfg, &mut body);
        body
    };
    let mut body = build(&req);
    let size = serde_json::to_vec(&body).map_or(0, |b| b.len() as u64);
    let last = conv.last_usage().map_or(0, |u| u.input + u.output);
    let estimate = size.div_ceil(4).max(last);
    let mine = ledger::tally(ctx.folder)?;
    let society = ledger::society_tally(ctx.folder)?;
    match budget::check(cfg, &mine, &society, estimate) {
        // Built again: the limit's field name and the thinking budget depend on it.
        Ok(max_tokens) if max_tokens != req.max_tokens => {
            req.max_tokens = max_tokens;
            body = build(&req);
        }
        Ok(_) => {}
        Err(exceeded) => return Ok(Some(exceeded)),
    }
    let sent_max_tokens = req.max_tokens;
    let client = llm.client()?;
    let cfg = llm.cfg.candidate(i);
    let (agent, gen) = (ctx.agent.as_str().to_string(), ctx.gen);
    let provider = cfg.provider.name();
    let circuit = Circuit::of(ctx.folder, cfg);
    if i < llm.cfg.fallbacks.len() {
        // A fallback waits: move on instead of parking.
        if let Gate::Open(state) =
            circuit
                .gate(cfg.circuit_cooldown)
                .map_err(|e| LlmError::Circuit {
                    path: ctx.folder.to_path_buf(),
                    source: e,
                })?
        {
            return Err(LlmError::CircuitOpen {
                circuit: state.name,
                escalate: false,
                last: state.last_error,
            }
            .into());
        }
    } else {
        park(&circuit, cfg, ctx.hooks, msg.id)?;
    }
    let request_bytes = serde_json::to_vec(&body).map_or(0, |b| b.len() as u64);
    let in_flight = inflight::begin(
        ctx.folder,
        json!({"provider": provider, "model": cfg.model, "request_bytes": request_bytes,
            "case": inbound.case, "id": msg.id, "step": step}),
    )?;
    let answer = http::call(
        &client,
        cfg,
        &body,
        ctx.hooks,
        |hooks, retry, why, delay| {
            tracing::warn!(
                agent,
                provider,
                retry,
                delay_ms = delay.as_millis() as u64,
                "{why}"
            );
            hooks.log(
                "llm_retry",
                json!({"id": msg.id, "provider": provider, "model": cfg.model,
            "step": step, "retry": retry, "reason": why, "delay_ms": delay.as_millis() as u64}),
            );
        },
        |bytes, why| {
            Ledger::new(ctx.folder, &agent, gen).append(
                society_core::kinds::ledger::UNKNOWN_COST,
                json!({"provider": provider, "model": cfg.model, "request_bytes": bytes,
                    "reason": why, "case": inbound.case, "id": msg.id, "step": step}),
            )
        },
    );
    if let Err(CallError::Abandoned) = &answer {
        // Stopping does not wait for the answer: the call may be billed.
        let mut fields = in_flight;
        fields["reason"] = json!("the agent stopped while the call was in flight");
        Ledger::new(ctx.folder, &agent, gen)
            .append(society_core::kinds::ledger::UNKNOWN_COST, fields)?;
    }
    inflight::end(ctx.folder);
    let answer = circuit.record(answer, &agent, cfg.circuit_after, |closed| {
        ctx.hooks.log(
            "llm_circuit_closed",
            json!({"circuit": closed.name, "failures": closed.failures, "was_open": closed.open}),
        );
    });
    // Too long: compact once and call again; a second refusal finds nothing
    // new to cut and fails with CompactionDidNotHelp.
    let answer = match answer {
        Err(CallError::Failed(LlmError::ContextTooLong { detail, .. })) => {
            return match compact::forced(llm, ctx, conv, msg, inbound, system, detail)? {
                Some(exceeded) => Ok(Some(exceeded)),
                None => call_candidate(llm, i, ctx, conv, msg, inbound, system, step),
            };
        }
        other => other?,
    };
    let reply = match cfg.provider {
        Provider::Openai => openai::parse(&answer, step),
        Provider::Anthropic => anthropic::parse(&answer),
    }
    .map_err(|reason| LlmError::Malformed { provider, reason })?;
    // No usage from the server: charge an estimate, so budgets still count.
    let estimated = !budget::usage_reported(&answer);
    let tokens = if estimated {
        budget::estimate(size, &reply)
    } else {
        reply.usage
    };
    let cache = wire::cache_tokens(cfg.provider, &answer);
    let mut tokens = tokens;
    if cache.outside_input && !estimated {
        tokens.input += cache.read + cache.written;
    }
    let usd = cfg.prices.map_or(0.0, |p| {
        p.usd_cached(tokens.input, cache.read, cache.written, tokens.output)
    });
    let mut usage = json!({"provider": provider, "model": cfg.model, "input_tokens": tokens.input,
        "output_tokens": tokens.output, "usd": usd, "case": inbound.case, "id": msg.id, "step": step});
    if i > 0 {
        usage["fallback"] = json!(i);
    }
    if cache.read > 0 {
        usage["cached_input_tokens"] = json!(cache.read);
    }
    if cache.written > 0 {
        usage["cache_write_tokens"] = json!(cache.written);
    }
    if cfg.prices.is_none() {
        usage["priced"] = json!(false);
    }
    if estimated {
        usage["estimated"] = json!(true);
    }
    Ledger::new(ctx.folder, &agent, gen).append(society_core::kinds::ledger::USAGE, usage)?;
    // Charged, but kept out of the conversation: the retried attempt calls
    // the model again instead of finding a "done" tail.
    let stop_reason = reply.stop_reason.clone().unwrap_or_default();
    if reply.truncated {
        return Err(LlmError::Truncated {
            provider,
            max_tokens: sent_max_tokens,
            stop_reason,
            hint: truncation_hint(cfg, sent_max_tokens),
        }
        .into());
    }
    if let (Some(format), Some(text), true) =
        (&cfg.response_format, &reply.text, reply.calls.is_empty())
    {
        if !serde_json::from_str::<Value>(text).is_ok_and(|v| v.is_object()) {
            return Err(LlmError::NotStructured {
                provider,
                name: format.name.clone(),
                text: tools::truncate(text, 200),
            }
            .into());
        }
    }
    if reply.text.is_none() && reply.calls.is_empty() {
        return Err(LlmError::EmptyAnswer {
            provider,
            stop_reason,
        }
        .into());
    }
    conv.push(
        Turn::Assistant {
            msg: msg.id,
            step,
            text: reply.text,
            calls: reply.calls,
            usage: tokens,
            thinking: reply.thinking,
        },
        gen,
    )?;
    Ok(None)
}

/// Waits while the provider's circuit is open (see [`super::circuit`]),
/// saying so in the activity log.
fn park(
    circuit: &Circuit,
    cfg: &super::LlmConfig,
    hooks: &mut dyn crate::Hooks,
    id: MsgId,
) -> Result<(), CallError> {
    circuit.park(
        cfg.circuit_cooldown,
        hooks,
        |hooks, state| {
            tracing::warn!(circuit = state.name, "parked: the circuit is open");
            hooks.log(
                "llm_parked",
                json!({"id": id, "circuit": state.name, "opened_at": state.opened_at,
                    "failures": state.failures, "last_error": state.last_error}),
            );
        },
        |hooks, how| {
            hooks.log(
                "llm_unparked",
                json!({"id": id, "circuit": circuit.name(), "how": how}),
            );
        },
    )
}

/// What else to change when an answer is cut: thinking and reasoning
/// tokens count against the same limit.
fn truncation_hint(cfg: &super::LlmConfig, sent: u64) -> String {
    let mut hint = String::new();
    if sent < cfg.max_tokens {
        hint.push_str(&format!(" (a budget lowered it from {})", cfg.max_tokens));
    }
    if let Some(b) = cfg.thinking_budget {
        hint.push_str(&format!(", or lower thinking_budget ({b})"));
    }
    if let Some(e) = cfg.reasoning_effort {
        hint.push_str(&format!(", or lower reasoning_effort ({})", e.name()));
    }
    hint
}

fn execute(
    llm: &mut Llm,
    ctx: &mut Context<'_>,
    conv: &mut Conversation,
    inbound: &Envelope,
    call: &ToolCall,
    reply_to: &ReplyTo,
) -> Result<(), CallError> {
    let msg = inbound.id;
    let step = conv.steps(msg);
    let started = Instant::now();
    let log_path = society_core::AgentPaths::new(ctx.folder.to_path_buf()).tools();
    let mut fields = json!({"tool": call.name, "args": shorten(&call.args), "id": msg, "step": step, "call": call.id});
    let structured = llm.cfg.response_format.is_some();
    let out = match llm.toolbox.find(&call.name) {
        None if call.name == wire::STRUCTURED_TOOL && structured => tools::Outcome {
            result: "answer recorded".into(),
            ok: true,
        },
        None if memory_tools::offers(&llm.cfg, &call.name) => {
            let at = memory_tools::Place {
                folder: ctx.folder,
                msg,
                case: inbound.case.as_ref(),
                step,
            };
            memory_tools::execute(call, &at)
        }
        None => tools::execute(call, ctx.folder, reply_to),
        Some(tool) => {
            extend(&mut fields, llm.toolbox.describe(&tool));
            let runs = conv.runs(msg, step, &call.id);
            if runs > 0 && llm.toolbox.on_interrupt(&tool) == OnInterrupt::Report {
                fields["interrupted"] = json!(true);
                toolbox::interrupted(&call.name)
            } else {
                let run = runs + 1;
                conv.push_started(
                    Started {
                        msg,
                        step,
                        call: call.id.clone(),
                        name: call.name.clone(),
                        run,
                    },
                    ctx.gen,
                )?;
                fields["run"] = json!(run);
                log(
                    &log_path,
                    "tool_started",
                    ctx.agent.as_str(),
                    ctx.gen,
                    fields.clone(),
                );
                let call_id = format!("{msg}-{step}-{}", call.id);
                let msg_id = msg.to_string();
                let inv = Invocation {
                    call,
                    call_id: &call_id,
                    run,
                    agent: ctx.agent.as_str(),
                    msg: &msg_id,
                    folder: ctx.folder,
                };
                match llm.toolbox.run(&tool, &inv, ctx.hooks) {
                    Some(out) => out,
                    None => return Err(CallError::Abandoned),
                }
            }
        }
    };
    extend(
        &mut fields,
        json!({"result": tools::truncate(&out.result, SUMMARY),
            "ms": started.elapsed().as_millis() as u64, "ok": out.ok}),
    );
    log(&log_path, "tool_call", ctx.agent.as_str(), ctx.gen, fields);
    conv.push(
        Turn::Tool {
            msg,
            step,
            call: call.id.clone(),
            name: call.name.clone(),
            args: call.args.clone(),
            result: out.result,
            ok: out.ok,
        },
        ctx.gen,
    )?;
    Ok(())
}

/// The actions of everything recorded for `msg`, in log order: one per
/// successful message tool call, and a reply for the text of an answer
/// that ends the message — a text-only answer, or text alongside `finish`
/// when no `reply` call answered the sender already.
fn actions_of(conv: &Conversation, msg: MsgId, inbound: &Inbound, structured: bool) -> Vec<Action> {
    let turns: Vec<&Turn> = conv.turns.iter().filter(|t| t.msg() == msg).collect();
    let replied = turns
        .iter()
        .any(|t| matches!(t, Turn::Tool { name, ok: true, .. } if name == "reply"));
    let mut actions = Vec::new();
    for turn in turns {
        match turn {
            Turn::Tool {
                name,
                args,
                ok: true,
                ..
            } if structured && name == wire::STRUCTURED_TOOL => {
                let body = json!({"body": {"text": args.to_string(), "json": args}});
                actions.extend(tools::rebuild("reply", &body, &inbound.reply_to));
            }
            Turn::Tool {
                name,
                args,
                ok: true,
                ..
            } => {
                actions.extend(tools::rebuild(name, args, &inbound.reply_to));
            }
            Turn::Assistant {
                text: Some(text),
                calls,
                ..
            } if calls.is_empty() || (!replied && calls.iter().any(|c| c.name == FINISH)) => {
                if inbound.text_replies {
                    let mut args = json!({"body": {"text": text}});
                    if structured {
                        // Checked when the answer came: a JSON object.
                        args["body"]["json"] = serde_json::from_str(text).unwrap_or(Value::Null);
                    }
                    actions.extend(tools::rebuild("reply", &args, &inbound.reply_to));
                } else {
                    actions.push(Action::Log {
                        message: format!(
                            "answer to an agent's reply, not sent back: {}",
                            tools::truncate(text, SUMMARY)
                        ),
                    });
                }
            }
            _ => {}
        }
    }
    actions
}

/// Appends a log record (`ts, event, agent, gen, ...`); logging never fails the message.
fn log(path: &std::path::Path, event: &str, agent: &str, gen: u64, fields: Value) {
    let mut rec = json!({"ts": society_core::time::now_rfc3339(), "event": event, "agent": agent, "gen": gen});
    if let (Some(r), Value::Object(f)) = (rec.as_object_mut(), fields) {
        r.extend(f);
    }
    let bytes = serde_json::to_vec(&rec).expect("a JSON map always serialises");
    if let Err(e) = append_one(
        path,
        &bytes,
        Durability::Flushed,
        society_core::DEFAULT_MAX_RECORD,
    ) {
        tracing::error!(error = %e, event, "failed to write log record");
    }
}

fn extend(fields: &mut Value, more: Value) {
    if let (Value::Object(f), Value::Object(m)) = (fields, more) {
        f.extend(m);
    }
}

/// Arguments for the log: long strings (file contents) cut short.
fn shorten(v: &Value) -> Value {
    match v {
        Value::String(s) if s.len() > SUMMARY => Value::String(tools::truncate(s, SUMMARY)),
        Value::Array(a) => Value::Array(a.iter().map(shorten).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shorten(v))).collect()),
        other => other.clone(),
    }
}
