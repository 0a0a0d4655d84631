//! Escalations and approval requests, routed through the organisation
//! (SOCIETY.md O1/O2): to the lowest common supervisor of the parties, up
//! the chain when that lead escalates, does not answer within its
//! `answer_within`, or is asked beyond its approval scope, and to the
//! orchestrator last. With no `reports_to` among the parties nothing here
//! happens: everything goes to the orchestrator as it always did.
//!
//! Where an item waits is decided here and written to
//! `supervisor/escalations.jsonl` in the same batch as the message to the
//! lead, so a restart folds the log and carries on (`crate::org`).

use super::super::plan::{Plan, ORG_HOP};
use super::Planner;
use crate::activity;
use crate::org::{node, outcome, record, Item, APPROVAL, ESCALATION};
use serde_json::{json, Value};
use society_core::kinds::{case_log, event, message};
use society_core::org::{lowest_common, ORCHESTRATOR};
use society_core::{AgentId, CaseId, Envelope, MsgId, Party};

impl Planner<'_> {
    /// The lead an agent reports to (`None`: the orchestrator, or unknown).
    pub fn lead_of(&self, id: &str) -> Option<String> {
        let id = AgentId::new(id).ok()?;
        let (cfg, _) = self.agents.get(&id)?;
        cfg.org.reports_to.clone().filter(|l| l != ORCHESTRATOR)
    }

    /// Does any party have a lead? If not, the orchestrator is the judge,
    /// exactly as before the organisation existed.
    fn in_hierarchy(&self, parties: &[String]) -> bool {
        parties.iter().any(|p| self.lead_of(p).is_some())
    }

    /// An item as this batch sees it.
    pub fn item_view(&self, plan: &Plan, id: &MsgId) -> Option<Item> {
        plan.items.get(id).or_else(|| self.items.get(id)).cloned()
    }

    /// The item whose message (at some node) `msg` is: what a lead replies to.
    fn item_of_message(&self, plan: &Plan, msg: &MsgId, from: &str) -> Option<Item> {
        let hit = |i: &Item| {
            i.msg == *msg
                || i.chain.iter().any(|n| {
                    n.get("node").and_then(Value::as_str) == Some(from)
                        && n.get("msg").and_then(Value::as_str) == Some(&msg.to_string())
                })
        };
        plan.items
            .values()
            .find(|i| hit(i))
            .or_else(|| {
                self.items
                    .0
                    .values()
                    .find(|i| hit(i) && !plan.items.contains_key(&i.item))
            })
            .cloned()
    }

    /// A record of the escalation log, folded into the batch's view at once.
    fn org_record(&self, plan: &mut Plan, name: &str, src: String, mut fields: Value) {
        fields["src"] = json!(src);
        let rec = activity::record(name, "supervisor", 0, fields);
        if let Ok(v) = serde_json::from_slice::<Value>(&rec) {
            let mut view = crate::org::Items::default();
            if let Some(id) = v
                .get("item")
                .and_then(|i| serde_json::from_value::<MsgId>(i.clone()).ok())
            {
                if let Some(i) = self.item_view(plan, &id) {
                    view.0.insert(id, i);
                }
                view.apply(&v);
                if let Some(i) = view.0.remove(&id) {
                    plan.items.insert(id, i);
                }
            }
        }
        plan.push(self.layout.supervisor_escalations(), true, src, rec);
    }

    /// From `start` up, the first node that takes the item: any lead for an
    /// escalation, a lead whose scope admits it for an approval. The leads
    /// passed over are added to `chain` as `out_of_scope`. `None`: the
    /// orchestrator.
    fn first_taker(
        &self,
        kind: &str,
        body: &Value,
        start: Option<String>,
        chain: &mut Vec<Value>,
    ) -> Option<String> {
        // A lead met twice is a `reports_to` cycle (a `config.json` edited
        // by hand: `society.toml` refuses them): the item goes to the top.
        let mut seen: std::collections::HashSet<String> = chain
            .iter()
            .filter_map(|n| n.get("node").and_then(Value::as_str).map(str::to_string))
            .collect();
        let mut at = start;
        while let Some(lead) = at {
            if !seen.insert(lead.clone()) {
                chain.push(node(
                    &lead,
                    Some(outcome::OUT_OF_SCOPE),
                    Some("reports_to cycle"),
                ));
                return None;
            }
            let Some(cfg) = AgentId::new(&lead)
                .ok()
                .and_then(|id| self.agents.get(&id))
                .map(|(c, _)| c)
            else {
                chain.push(node(
                    &lead,
                    Some(outcome::OUT_OF_SCOPE),
                    Some("no such agent"),
                ));
                return None;
            };
            if kind == APPROVAL {
                let verdict = match &cfg.org.approve {
                    None => Err("no approve scope".to_string()),
                    Some(scope) => scope.admits(body),
                };
                if let Err(why) = verdict {
                    chain.push(node(&lead, Some(outcome::OUT_OF_SCOPE), Some(&why)));
                    at = self.lead_of(&lead);
                    continue;
                }
            }
            return Some(lead);
        }
        None
    }

    /// Puts an item where it now waits: the message (to the lead, or to the
    /// orchestrator's inbox) and its record (`opened`, or `moved` from `from`).
    #[allow(clippy::too_many_arguments)]
    fn place(
        &self,
        plan: &mut Plan,
        item: MsgId,
        kind: &str,
        request: &Envelope,
        parties: &[String],
        mut chain: Vec<Value>,
        at: Option<String>,
        from: Option<(&str, &str)>,
    ) {
        let n = chain.len() as u32;
        let (at_name, msg, due) = match &at {
            Some(lead) => {
                let id = AgentId::new(lead).expect("first_taker returns known agents only");
                let within = self
                    .agents
                    .get(&id)
                    .map_or(society_core::org::DEFAULT_ANSWER_WITHIN, |(c, _)| {
                        c.org.answer_within
                    });
                let mut env = request.clone();
                env.id = MsgId::derive(&item, ORG_HOP + n);
                env.from = Party::Supervisor;
                env.to = Party::Agent(id.clone());
                env.reply_to = None;
                env.hops = 0;
                chain.push(json!({"node": lead, "msg": env.id}));
                let mut body = request.body.clone();
                if let Some(b) = body.as_object_mut() {
                    b.insert("item".into(), json!(item));
                    b.insert("chain".into(), json!(chain));
                    b.insert("parties".into(), json!(parties));
                    if kind == APPROVAL {
                        b.insert("request".into(), json!(item));
                        b.insert("requester".into(), json!(request.from));
                    }
                }
                env.body = body;
                self.to_agent(plan, &id, &env);
                let within = u64::try_from(within.as_millis()).unwrap_or(u64::MAX);
                (lead.clone(), env.id, plan.now.saturating_add(within))
            }
            None => {
                chain.push(node(ORCHESTRATOR, None, None));
                let mut env = request.clone();
                if kind == ESCALATION {
                    env.body["chain"] = json!(chain);
                    env.body["parties"] = json!(parties);
                    env.body["item"] = json!(item);
                }
                self.to_orchestrator(plan, &env);
                (ORCHESTRATOR.to_string(), env.id, 0)
            }
        };
        match from {
            None => self.org_record(
                plan,
                record::OPENED,
                format!("{item}/{}", record::OPENED),
                json!({"item": item, "kind": kind, "at": at_name, "msg": msg, "due": due,
                       "chain": chain, "parties": parties, "case": request.case, "request": request}),
            ),
            Some((from, why)) => {
                self.org_record(
                    plan,
                    record::MOVED,
                    format!("{item}/{}@{from}", record::MOVED),
                    json!({"item": item, "kind": kind, "from": from, "to": at_name, "why": why,
                           "msg": msg, "due": due, "chain": chain, "case": request.case}),
                );
                self.event(
                    plan,
                    "escalation_moved",
                    from,
                    format!("{item}/moved@{from}"),
                    json!({"item": item, "kind": kind, "to": at_name, "why": why}),
                );
            }
        }
    }

    /// An escalation with several parties (the escalating agent first):
    /// to their lowest common supervisor, or — with no `reports_to` among
    /// them — to the orchestrator exactly as before.
    #[allow(clippy::too_many_arguments)]
    pub fn escalate_up(
        &self,
        plan: &mut Plan,
        source: MsgId,
        agent: &str,
        parties: Vec<String>,
        case: Option<&CaseId>,
        reason: &str,
        context: Value,
    ) {
        if !self.in_hierarchy(&parties) {
            return self.escalation(plan, source, agent, case, reason, context);
        }
        let item = MsgId::derive(&source, super::super::plan::ESCALATION);
        let mut esc = Envelope::new(
            Party::Supervisor,
            Party::Orchestrator,
            message::ESCALATION,
            json!({"agent": agent, "reason": reason, "context": context, "source": source}),
        );
        esc.id = item;
        esc.case = case.cloned();
        let lookup = |id: &str| self.lead_of(id);
        let start = lowest_common(&parties, &lookup);
        let mut chain = Vec::new();
        let at = self.first_taker(ESCALATION, &esc.body, start, &mut chain);
        let to = at.clone().unwrap_or_else(|| ORCHESTRATOR.into());
        self.place(plan, item, ESCALATION, &esc, &parties, chain, at, None);
        if let Some(case) = case.filter(|c| !self.case_closed(plan, c)) {
            let fields = json!({"reason": reason, "by": agent, "escalation": item, "to": to});
            self.case(
                plan,
                case,
                case_log::ESCALATED,
                "supervisor",
                format!("{item}/escalated"),
                fields,
            );
        }
        self.event(
            plan,
            event::ESCALATED,
            agent,
            format!("{item}/escalated"),
            json!({"reason": reason, "case": case, "to": to, "parties": parties}),
        );
    }

    /// An approval request whose parties have leads: waits at the lowest
    /// common supervisor whose scope admits it, and is recorded. Returns
    /// `false` when it goes to the orchestrator's inbox as before (the
    /// caller delivers it there).
    pub fn approval_up(&self, plan: &mut Plan, request: &Envelope, parties: Vec<String>) -> bool {
        if !self.in_hierarchy(&parties) {
            return false;
        }
        let lookup = |id: &str| self.lead_of(id);
        let start = lowest_common(&parties, &lookup);
        let mut chain = Vec::new();
        let at = self.first_taker(APPROVAL, &request.body, start, &mut chain);
        self.place(
            plan, request.id, APPROVAL, request, &parties, chain, at, None,
        );
        true
    }

    /// The item goes one node up from where it waits: its lead did not
    /// answer in time, or escalated it, or answered beyond its scope.
    pub fn move_up(&self, plan: &mut Plan, item: &Item, why: &str, reason: &str) {
        if item.at == ORCHESTRATOR || !item.is_open() {
            return;
        }
        let mut chain = item.chain.clone();
        if let Some(last) = chain.last_mut() {
            last["outcome"] = json!(why);
            last["reason"] = json!(reason);
        }
        let start = self.lead_of(&item.at);
        let at = self.first_taker(&item.kind, &item.request.body, start, &mut chain);
        self.place(
            plan,
            item.item,
            &item.kind,
            &item.request,
            &item.parties,
            chain,
            at,
            Some((&item.at, why)),
        );
    }

    /// Settles an item (`how`: handled, approved, rejected).
    pub fn close_item(
        &self,
        plan: &mut Plan,
        item: &Item,
        by: &str,
        how: &str,
        note: Option<&str>,
    ) {
        let mut chain = item.chain.clone();
        if let Some(last) = chain
            .last_mut()
            .filter(|l| l.get("node").and_then(Value::as_str) == Some(by))
        {
            last["outcome"] = json!(how);
        } else {
            chain.push(node(by, Some(how), None));
        }
        self.org_record(
            plan,
            record::ANSWERED,
            format!("{}/{}", item.item, record::ANSWERED),
            json!({"item": item.item, "kind": item.kind, "by": by, "how": how, "note": note,
                   "chain": chain, "case": item.case}),
        );
    }

    /// A message from an agent answering (or escalating) an item that
    /// waits — or waited — at it. `false`: not about an item.
    pub fn lead_message(&self, plan: &mut Plan, env: &Envelope) -> bool {
        let Party::Agent(lead) = &env.from else {
            return false;
        };
        let Some(msg) = env.reply_to else {
            return false;
        };
        let Some(item) = self.item_of_message(plan, &msg, lead.as_str()) else {
            return false;
        };
        if !item.is_open() || item.at != lead.as_str() || item.msg != msg {
            let state = match &item.answered {
                Some(a) => format!(
                    "it was already answered by {}",
                    a.get("by").and_then(Value::as_str).unwrap_or("someone")
                ),
                None => format!("it has moved on to {}", item.at),
            };
            self.blocked(
                plan,
                env,
                &format!("{} {} not accepted: {state}", item.kind, item.item),
            );
            return true;
        }
        if env.kind == message::ESCALATE {
            let reason = env
                .body
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("escalated by the lead");
            self.move_up(plan, &item, outcome::ESCALATED, reason);
            return true;
        }
        if item.kind == ESCALATION {
            let note = env
                .body
                .get("note")
                .and_then(Value::as_str)
                .or_else(|| env.body.get("text").and_then(Value::as_str));
            self.close_item(plan, &item, lead.as_str(), "handled", note);
            return true;
        }
        let Some(approve) = env.body.get("approve").and_then(Value::as_bool) else {
            self.blocked(
                plan,
                env,
                &format!("approval request {}: answer with a body {{\"approve\": true|false, \"note\": ...}}", item.item),
            );
            return true;
        };
        let scope = self
            .agents
            .get(lead)
            .and_then(|(c, _)| c.org.approve.clone());
        let verdict = scope.map_or(Err("no approve scope".to_string()), |s| {
            s.admits(&item.request.body)
        });
        if let Err(why) = verdict {
            self.blocked(
                plan,
                env,
                &format!(
                    "approval request {} is beyond your scope ({why}); it goes up",
                    item.item
                ),
            );
            self.move_up(
                plan,
                &item,
                outcome::OUT_OF_SCOPE,
                &format!("answered beyond its scope: {why}"),
            );
            return true;
        }
        let note = env
            .body
            .get("note")
            .and_then(Value::as_str)
            .map(str::to_string);
        let how = if approve {
            case_log::APPROVED
        } else {
            case_log::REJECTED
        };
        let kept = note.clone();
        self.decide_as(plan, env, item.item, approve, note, None, lead.as_str());
        // Settled only if the answer was taken (not, say, for a closed case).
        if plan.decided.contains(&item.item) {
            self.close_item(plan, &item, lead.as_str(), how, kept.as_deref());
        }
        true
    }

    /// The orchestrator answered an approval: the item (if any) is settled.
    pub fn orchestrator_answered(
        &self,
        plan: &mut Plan,
        request: MsgId,
        approve: bool,
        note: Option<&str>,
    ) {
        if let Some(item) = self.item_view(plan, &request).filter(Item::is_open) {
            let how = if approve {
                case_log::APPROVED
            } else {
                case_log::REJECTED
            };
            self.close_item(plan, &item, ORCHESTRATOR, how, note);
        }
    }
}
