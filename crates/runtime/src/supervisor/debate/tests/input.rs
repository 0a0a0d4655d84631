//! What comes in: bad requests and perspectives, redeliveries and replays,
//! case ids.

use super::*;

#[test]
fn bad_perspectives_are_refused_and_the_previous_one_stands() {
    let mut s = film_crew();
    s.inbox(&[request(lighting(json!({"contrast": "high"})))]);
    s.tick();
    s.answer("dp", json!("high contrast please"));
    let blocked = s.to("dp", message::MESSAGE_BLOCKED);
    assert_eq!(blocked.len(), 1);
    let reason = blocked[0].body["reason"].as_str().unwrap();
    assert!(reason.contains("position must be an object"), "{reason}");
    assert!(!s.story().iter().any(|e| e == "perspective dp r1i0"));
    // A non-participant's perspective is refused too.
    let rr = s.asked("dp").pop().unwrap();
    let intruder = reply("editor", &rr, json!({"position": {"contrast": "low"}}));
    s.inbox(&[intruder]);
    let reason = s.to("editor", message::MESSAGE_BLOCKED)[0].body["reason"].clone();
    assert!(
        reason.as_str().unwrap().contains("not a participant"),
        "{reason}"
    );
    // A good answer, then the same reply again (a redelivery): recorded once.
    let good = reply("dp", &rr, json!({"position": {"contrast": "high"}}));
    s.inbox(&[good.clone(), good.clone()]);
    s.inbox(&[good]);
    let n = s
        .story()
        .iter()
        .filter(|e| *e == "perspective dp r1i0")
        .count();
    assert_eq!(n, 1);
}

#[test]
fn a_replayed_request_opens_one_debate() {
    let mut s = film_crew();
    let req = request(lighting(json!({"contrast": "high"})));
    // Twice in one batch, then once more in a later one, then a new
    // message for the same decision.
    s.inbox(&[req.clone(), req.clone()]);
    s.inbox(&[req]);
    s.inbox(&[request(lighting(json!({"contrast": "low"})))]);
    let opened = s.story().iter().filter(|e| *e == "debate_opened").count();
    assert_eq!(opened, 1);
    let dups = s
        .events
        .iter()
        .filter(|e| e["event"] == "debate_duplicate")
        .count();
    assert_eq!(dups, 3);
    assert_eq!(s.tick(), ["ask"]);
    assert_eq!(s.tick(), Vec::<&str>::new(), "round 1 is asked once");
    assert_eq!(s.asked("dp").len(), 1);
    assert!(s.to("director", message::MESSAGE_BLOCKED).is_empty());

    // Another agent proposing the same decision would wait forever: refused.
    let mut theirs = lighting(json!({"contrast": "low"}));
    theirs["agent"] = json!("dp");
    s.inbox(&[request(theirs)]);
    let reason = s.to("dp", message::MESSAGE_BLOCKED)[0].body["reason"].clone();
    assert!(
        reason.as_str().unwrap().contains("already debated in case")
            && reason.as_str().unwrap().contains("proposed by director"),
        "{reason}"
    );
    // Once the debate is over, asking again is refused too (the result was sent).
    s.answer("dp", json!({"contrast": "high"}));
    assert_eq!(s.tick(), ["agree"]);
    s.inbox(&[request(lighting(json!({"contrast": "high"})))]);
    let blocked = s.to("director", message::MESSAGE_BLOCKED);
    assert_eq!(blocked.len(), 1);
    let reason = blocked[0].body["reason"].as_str().unwrap();
    assert!(reason.contains("was already debated"), "{reason}");
    assert_eq!(
        s.story().iter().filter(|e| *e == "debate_opened").count(),
        1
    );
}

#[test]
fn bad_requests_are_refused_with_the_field_named() {
    let cases = [
        ("decision", json!(null), "decision is missing"),
        ("decision", json!(7), "decision must be a string"),
        ("plan", json!(3), "plan must be an object or a string"),
        ("position", json!("low"), "position must be an object"),
        ("participants", json!("dp"), "participants must be a list"),
        (
            "participants",
            json!(["../x"]),
            "neither an agent id nor role",
        ),
        (
            "time_limit_ms",
            json!(0),
            "time_limit_ms must be a whole number",
        ),
        (
            "time_limit_ms",
            json!(-5),
            "time_limit_ms must be a whole number",
        ),
        (
            "threshold",
            json!(1.5),
            "threshold must be a number in (0, 1]",
        ),
        ("threshold", json!(null), "threshold is missing"),
        ("min_interval_ms", json!(null), "min_interval_ms is missing"),
        ("revision", json!("1"), "revision must be a whole number"),
        ("alternatives", json!("x"), "alternatives must be a list"),
    ];
    for (field, value, want) in cases {
        let mut body = lighting(json!({"contrast": "high"}));
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value;
        }
        let err = DebateRequest::parse(&body).unwrap_err();
        assert!(err.contains(want), "{field}: {err:?} lacks {want:?}");
    }
    // Refused to the sender, nothing opened.
    let mut s = film_crew();
    let mut body = lighting(json!({"contrast": "high"}));
    body["threshold"] = json!(2);
    s.inbox(&[request(body)]);
    let blocked = s.to("director", message::MESSAGE_BLOCKED);
    assert!(blocked[0].body["reason"]
        .as_str()
        .unwrap()
        .starts_with("debate request refused: threshold"));
    assert!(s.log.is_empty());
    // The body's agent must be the sender.
    let mut env = request(lighting(json!({"contrast": "high"})));
    env.from = "dp".parse().unwrap();
    s.inbox(&[env]);
    let reason = s.to("dp", message::MESSAGE_BLOCKED)[0].body["reason"].clone();
    assert!(
        reason.as_str().unwrap().contains("is not the sender dp"),
        "{reason}"
    );
    assert!(s.log.is_empty());
}

#[test]
fn case_ids_are_valid_and_stable() {
    let a = case_of("ep11-lighting");
    assert!(a.as_str().starts_with("debate-ep11-lighting-"), "{a}");
    assert_eq!(a, case_of("ep11-lighting"));
    assert_ne!(a, case_of("EP11-lighting"), "the hash keeps case apart");
    let long = "Ünïcode/../decision with spaces and a very long name indeed, longer than any id";
    let b = case_of(long);
    assert!(b.as_str().len() <= 63, "{b}");
    assert!(case_of("***").as_str().starts_with("debate-"));
    assert_eq!(case_log::DEBATE_OPENED, "debate_opened");
}

/// A batch re-planned after a crash (some of its records landed) plans the
/// whole opening again, and the commit skips what landed: the replay is not
/// taken for a duplicate of itself.
#[test]
fn a_batch_replayed_after_a_crash_plans_its_opening_again() {
    let mut s = film_crew();
    let req = request(lighting(json!({"contrast": "high"})));
    // The first attempt landed its `created` record, then the process died.
    let mut first = Plan::at(s.now);
    s.planner().request(&mut first, req.clone());
    let created = first.deliveries[0].clone();
    assert!(created.key.ends_with("/created"), "{}", created.key);
    let rec: Value = serde_json::from_slice(&created.record).unwrap();
    s.cases.apply(&case(), &rec);
    // The re-plan knows what landed.
    let mut again = Plan::at(s.now);
    again.present = Some(HashSet::from([(created.dest.clone(), created.key.clone())]));
    s.planner().request(&mut again, req.clone());
    let keys: Vec<&str> = again.deliveries.iter().map(|d| d.key.as_str()).collect();
    let first_keys: Vec<&str> = first.deliveries.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, first_keys, "the same records, under the same keys");
    // Without that knowledge, the case's existence means a duplicate: it
    // opens nothing.
    let mut fresh = Plan::at(s.now);
    s.planner().request(&mut fresh, req);
    let keys: Vec<&str> = fresh.deliveries.iter().map(|d| d.key.as_str()).collect();
    assert!(
        !keys
            .iter()
            .any(|k| k.ends_with("/created") || k.ends_with("/debate_opened")),
        "{keys:?}"
    );
}

/// The orchestrator answers a debate whose proposer was removed meanwhile:
/// the answer has no one to go to, and says so.
#[test]
fn an_answer_for_a_removed_proposer_is_rejected() {
    let mut s = film_crew();
    let mut body = lighting(json!({"contrast": "high"}));
    body["participants"] = json!([]);
    s.inbox(&[request(body)]);
    assert_eq!(s.tick(), ["expire"]);
    let ask = s.to("orchestrator", message::APPROVAL_REQUEST)[0].clone();
    s.agents.0.remove(&aid("director"));
    let decide = Envelope::new(
        Party::Orchestrator,
        Party::Supervisor,
        message::CONTROL,
        json!({"op": "decide", "request": ask.id, "approve": false, "note": "no"}),
    );
    s.inbox(&[decide]);
    assert!(s.to("director", message::APPROVAL_RESPONSE).is_empty());
    let rejected: Vec<&Value> = s
        .events
        .iter()
        .filter(|e| e["event"] == "control_rejected")
        .collect();
    assert_eq!(rejected.len(), 1, "{:?}", s.events);
    let reason = rejected[0]["reason"].as_str().unwrap();
    assert!(reason.contains("has no one to answer"), "{reason}");
}
