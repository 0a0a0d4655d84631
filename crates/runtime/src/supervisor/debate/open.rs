//! The two lines of the supervisor's inbox a debate is made of: the
//! proposer's `debate_request` (opens the debate, once per decision) and the
//! participants' `perspective` replies (recorded in the case log). Both are
//! planned with the rest of their inbox batch, so a crash replays them from
//! the same source range with the same keys, and nothing lands twice.

use super::super::plan::Plan;
use super::super::planner::Planner;
use super::fold::Opened;
use super::request::DebateRequest;
use serde_json::{json, Value};
use society_core::kinds::case_log;
use society_core::{AgentId, CaseId, Envelope, Party};

/// System events of the debate lines that change nothing.
const DUPLICATE: &str = "debate_duplicate";
const IGNORED: &str = "perspective_ignored";

impl Planner<'_> {
    /// Opens the debate a `debate_request` asks for, unless its decision has
    /// one already; a request that does not check out is refused to its
    /// sender with the reason.
    pub fn debate_request(&self, plan: &mut Plan, env: &Envelope) {
        let Party::Agent(from) = &env.from else {
            return self.event(
                plan,
                "debate_request_refused",
                "supervisor",
                format!("{}/refused", env.id),
                json!({"id": env.id, "from": env.from, "reason": "only an agent can propose a debate"}),
            );
        };
        let req = match DebateRequest::parse(&env.body) {
            Ok(req) => req,
            Err(reason) => {
                return self.blocked(plan, env, &format!("debate request refused: {reason}"))
            }
        };
        if req.agent != *from {
            let reason = format!(
                "debate request refused: agent {} is not the sender {from}",
                req.agent
            );
            return self.blocked(plan, env, &reason);
        }
        let case = super::case_of(&req.decision);
        let log = self.layout.case_log(&case);
        // A batch re-planned after a crash finds its own records: it plans
        // them again (the commit skips those that landed).
        let replay = plan.landed(&log, &format!("{}/created", env.id));
        let exists = self.case_view(plan, &case).is_some()
            || log.exists()
            || self.layout.case_pointer(&case).exists();
        if exists && !replay {
            return self.duplicate(plan, env, from, &req.decision, &case);
        }
        let (participants, skipped) = self.participants(from, &req.participants);
        let opened = Opened {
            decision: req.decision.clone(),
            proposer: from.clone(),
            decision_type: req.decision_type.clone(),
            plan: req.plan,
            participants,
            time_limit_ms: req.time_limit_ms,
            threshold: req.threshold,
            min_interval_ms: req.min_interval_ms,
            opened_at: plan.now,
            deadline: plan.now.saturating_add(req.time_limit_ms),
            request: env.id,
            proposer_case: env.case.clone(),
            skipped,
            rationale: req.rationale,
            alternatives: req.alternatives,
            revision: req.revision,
            proposal: req.proposal,
            parked: req.parked,
            then: req.then,
        };
        let purpose = format!("debate on {} decision {}", req.decision_type, req.decision);
        let fields = json!({"purpose": purpose, "by": from});
        let src = |what: &str| format!("{}/{what}", env.id);
        self.case(
            plan,
            &case,
            case_log::CREATED,
            from.as_str(),
            src("created"),
            fields,
        );
        let fields = serde_json::to_value(&opened).unwrap_or(Value::Null);
        self.case(
            plan,
            &case,
            case_log::DEBATE_OPENED,
            "supervisor",
            src("debate_opened"),
            fields,
        );
        // The proposer always takes part: its position is its round-1 perspective.
        let fields =
            json!({"round": 1, "iteration": 0, "position": req.position, "t_ms": 0, "id": env.id});
        self.case(
            plan,
            &case,
            case_log::PERSPECTIVE,
            from.as_str(),
            src("perspective"),
            fields,
        );
        let fields = json!({"id": env.id, "decision": req.decision, "debate": case,
            "participants": opened.participants, "skipped": opened.skipped});
        self.event(
            plan,
            case_log::DEBATE_OPENED,
            from.as_str(),
            src("debate_opened"),
            fields,
        );
    }

    /// A request for a decision that has a debate already. Its own
    /// redelivery, or the proposer asking again while the debate runs, is
    /// dropped (the result is on its way) and logged; anything else would
    /// wait for an answer that never comes, so it is refused with the reason.
    fn duplicate(
        &self,
        plan: &mut Plan,
        env: &Envelope,
        from: &AgentId,
        decision: &str,
        case: &CaseId,
    ) {
        let (opened, open) = match self.opening(plan, case) {
            Some((o, open)) => (Some(o), open),
            None => (None, false),
        };
        let proposer = opened.as_ref().map(|o| &o.proposer);
        let redelivered = opened.as_ref().is_some_and(|o| o.request == env.id);
        if redelivered || (open && proposer == Some(from)) {
            let fields = json!({"id": env.id, "decision": decision, "debate": case});
            return self.event(
                plan,
                DUPLICATE,
                from.as_str(),
                format!("{}/{DUPLICATE}", env.id),
                fields,
            );
        }
        let reason = match proposer {
            Some(p) if p != from => format!(
                "debate request refused: decision {decision} is already debated in case {case}, proposed by {p}"
            ),
            _ => format!(
                "debate request refused: decision {decision} was already debated in case {case}; its result was sent then"
            ),
        };
        self.blocked(plan, env, &reason);
    }

    /// The opening of `case`'s debate and whether the debate is still open:
    /// from this batch, the open debates, or (ended) its log.
    fn opening(&self, plan: &Plan, case: &CaseId) -> Option<(Opened, bool)> {
        let log = self.layout.case_log(case);
        let parse = |bytes: &[u8]| -> Option<Opened> {
            let v: Value = serde_json::from_slice(bytes).ok()?;
            (v.get("event").and_then(Value::as_str) == Some(case_log::DEBATE_OPENED))
                .then(|| serde_json::from_value(v).ok())
                .flatten()
        };
        if let Some(o) = plan
            .deliveries
            .iter()
            .filter(|d| d.dest == log)
            .find_map(|d| parse(&d.record))
        {
            return Some((o, true));
        }
        if let Some(d) = self.debates.get(case) {
            return Some((d.opened.clone(), true));
        }
        let records = society_core::jsonl::read_objects(&log, &mut 0).ok()?;
        records
            .iter()
            .find_map(|r| parse(&serde_json::to_vec(r).ok()?))
            .map(|o| (o, false))
    }

    /// The proposer first, then each requested participant once (a role:
    /// every agent of it, in id order); parties that name no known agent
    /// are skipped and listed.
    fn participants(&self, proposer: &AgentId, asked: &[Party]) -> (Vec<AgentId>, Vec<String>) {
        let mut out = vec![proposer.clone()];
        let mut skipped = Vec::new();
        for party in asked {
            let found: Vec<AgentId> = match party {
                Party::Agent(a) if self.known(a) => vec![a.clone()],
                Party::Role(r) => self.agents.with_role(r).into_iter().cloned().collect(),
                _ => Vec::new(),
            };
            if found.is_empty() {
                skipped.push(party.to_string());
            }
            for a in found {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        (out, skipped)
    }

    /// Records a participant's `perspective` reply in its debate's log.
    pub fn perspective(&self, plan: &mut Plan, env: &Envelope) {
        let Party::Agent(from) = &env.from else {
            return;
        };
        let asked = env.reply_to.and_then(|r| self.debates.by_request(&r));
        let named = || {
            env.body
                .get("debate")
                .and_then(Value::as_str)
                .and_then(|c| c.parse().ok())
                .or_else(|| env.case.clone())
                .and_then(|c| self.debates.get(&c))
        };
        let Some(d) = asked.map(|(d, _)| d).or_else(named) else {
            return self.ignored(
                plan,
                env,
                "no open debate is waiting for it (it ended, or never opened)",
            );
        };
        if !d.opened.participants.contains(from) {
            let reason = format!(
                "perspective refused: {from} is not a participant of debate {}",
                d.case
            );
            return self.blocked(plan, env, &reason);
        }
        let src = format!("{}/perspective", env.id);
        let log = self.layout.case_log(&d.case);
        let planned = plan
            .deliveries
            .iter()
            .any(|p| p.key == src && p.dest == log);
        if d.replies.contains(&env.id) || planned {
            return;
        }
        if plan.now >= d.opened.deadline {
            return self.ignored(plan, env, "it arrived after the debate's deadline");
        }
        let Some(position) = env.body.get("position").and_then(Value::as_object) else {
            let got = env.body.get("position").unwrap_or(&Value::Null);
            let reason = format!(
                "perspective refused: position must be an object {{key: value}}, got {got}; your previous perspective stands"
            );
            return self.blocked(plan, env, &reason);
        };
        let (round, iteration) = match asked {
            Some((_, (to, r, i))) if to == from => (*r, *i),
            _ => (d.round, d.iteration),
        };
        let t_ms = plan.now.saturating_sub(d.opened.opened_at);
        let fields = json!({"round": round, "iteration": iteration, "position": position, "t_ms": t_ms, "id": env.id});
        self.case(
            plan,
            &d.case,
            case_log::PERSPECTIVE,
            from.as_str(),
            src,
            fields,
        );
    }

    fn ignored(&self, plan: &mut Plan, env: &Envelope, reason: &str) {
        let fields = json!({"id": env.id, "reply_to": env.reply_to, "reason": reason});
        self.event(
            plan,
            IGNORED,
            &env.from.to_string(),
            format!("{}/{IGNORED}", env.id),
            fields,
        );
    }
}
