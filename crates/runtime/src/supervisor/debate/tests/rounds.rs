//! Rounds, consensus and expiry, step by step.

use super::*;

#[test]
fn consensus_after_round_one() {
    let mut s = film_crew();
    s.inbox(&[request(lighting(json!({"contrast": "high"})))]);
    assert_eq!(
        s.story(),
        ["created", "debate_opened", "perspective director r1i0"]
    );
    let d = s.debates.get(&case()).unwrap();
    assert_eq!(d.opened.participants, [aid("director"), aid("dp")]);
    assert_eq!(d.opened.deadline, T0 + 1000);

    assert_eq!(s.tick(), ["ask"]);
    let rr = s.asked("dp");
    assert_eq!(rr.len(), 1);
    assert_eq!(rr[0].case, Some(case()));
    assert_eq!(rr[0].body["round"], 1);
    assert_eq!(rr[0].body["iteration"], 0);
    assert_eq!(
        rr[0].body["perspectives"],
        json!({"director": {"contrast": "high"}})
    );
    assert_eq!(rr[0].body["debate"], case().as_str());
    assert!(s.asked("director").is_empty(), "round 1 asks the others");
    // Waiting for dp: until the end of the iteration at the latest.
    assert_eq!(s.tick(), Vec::<&str>::new());
    assert_eq!(s.wait(), Some(T0 + 100));

    s.now += 10;
    s.answer("dp", json!({"contrast": "high"}));
    assert_eq!(s.tick(), ["agree"]);
    assert_eq!(
        s.story(),
        [
            "created",
            "debate_opened",
            "perspective director r1i0",
            "round_request dp r1i0",
            "perspective dp r1i0",
            "consensus",
            "completed"
        ]
    );
    let consensus = &s.log[5];
    assert_eq!(
        consensus["agreed_plan"],
        json!({"contrast": "high", "haze": "no"})
    );
    assert_eq!(consensus["agreement"], 1.0);
    assert_eq!(consensus["iterations"], 0);
    assert_eq!(consensus["duration_ms"], 10);
    let result = s.to("director", message::DEBATE_RESULT);
    assert_eq!(result.len(), 1);
    let body = &result[0].body;
    assert_eq!(body["consensus"], true);
    assert_eq!(body["decision"], "ep11-lighting");
    assert_eq!(body["debate"], case().as_str());
    assert_eq!(body["proposal"], json!({"p": 1}));
    assert_eq!(body["parked"], json!({"id": "x"}));
    assert_eq!(body["then"], json!([{"to": "editor"}]));
    assert_eq!(body["revision"], 1);
    assert_eq!(result[0].case, Some(CaseId::new("ep-11").unwrap()));
    // Ended: no more steps, no more timers.
    assert!(s.debates.is_empty());
    assert_eq!(s.tick(), Vec::<&str>::new());
}

/// SOCIETY.md §4, Episode 11: `{contrast: high}` vs `{contrast: high, haze:
/// yes}` is 0.5; in iteration 1 the proposer adopts haze → 1.0.
#[test]
fn consensus_in_round_two_iteration_one() {
    let mut s = film_crew();
    s.inbox(&[request(lighting(json!({"contrast": "high"})))]);
    s.assert_refolds();
    s.tick();
    s.assert_refolds();
    s.now += 20;
    s.answer("dp", json!({"contrast": "high", "haze": "yes"}));
    s.assert_refolds();
    // The iteration is over (everyone answered) without consensus; round 2
    // waits for the pacing interval.
    assert_eq!(s.tick(), Vec::<&str>::new());
    assert_eq!(s.wait(), Some(T0 + 100));
    s.now = T0 + 100;
    assert_eq!(s.tick(), ["ask"]);
    let to_director = s.asked("director");
    let to_dp = s.asked("dp");
    assert_eq!((to_director.len(), to_dp.len()), (1, 2));
    let rr = &to_director[0];
    assert_eq!(
        (rr.body["round"].clone(), rr.body["iteration"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(
        rr.body["perspectives"],
        json!({"director": {"contrast": "high"}, "dp": {"contrast": "high", "haze": "yes"}})
    );
    s.assert_refolds();
    s.now += 30;
    s.answer("director", json!({"contrast": "high", "haze": "yes"}));
    s.assert_refolds();
    assert_eq!(s.tick(), Vec::<&str>::new(), "dp has not answered yet");
    s.answer("dp", json!({"contrast": "high", "haze": "yes"}));
    assert_eq!(s.tick(), ["agree"]);
    let consensus = s.log.iter().find(|r| r["event"] == "consensus").unwrap();
    assert_eq!(consensus["agreement"], 1.0);
    assert_eq!(consensus["iterations"], 1);
    assert_eq!(
        consensus["agreed_plan"],
        json!({"contrast": "high", "haze": "yes"})
    );
    assert_eq!(
        s.to("director", message::DEBATE_RESULT)[0].body["iterations"],
        1
    );
}

/// The film-crew fixture of Episode 1: split on contrast until the deadline.
#[test]
fn expiry_escalates_with_the_areas_of_disagreement() {
    let mut s = film_crew();
    s.inbox(&[request(lighting(
        json!({"contrast": "low", "palette": "blue"}),
    ))]);
    s.tick();
    let mut rounds = 0;
    loop {
        let rr = s.asked("dp").pop().unwrap();
        if rr.body["iteration"] == rounds {
            s.answer("dp", json!({"contrast": "high", "palette": "blue"}));
        }
        // The director never answers a round 2 request: it keeps its position.
        // Next due time: never past the deadline.
        let at = s.wait().unwrap();
        assert!(at <= T0 + 1000, "a step due at {at} is past the deadline");
        s.now = at.max(s.now + 1);
        let steps = s.tick();
        if steps.contains(&"expire") {
            break;
        }
        rounds += 1;
        assert!(rounds < 50, "the debate never expired");
    }
    assert_eq!(s.now, T0 + 1000, "expired exactly at the deadline");
    let expired = s
        .log
        .iter()
        .find(|r| r["event"] == "debate_expired")
        .unwrap();
    assert_eq!(expired["areas_of_disagreement"], json!(["contrast"]));
    assert_eq!(expired["areas_of_agreement"], json!({"palette": "blue"}));
    assert_eq!(
        expired["recommendation"],
        "Escalate to higher authority for resolution"
    );
    assert_eq!(expired["duration_ms"], 1000);
    assert_eq!(
        expired["final_perspectives"],
        json!({"director": {"contrast": "low", "palette": "blue"},
               "dp": {"contrast": "high", "palette": "blue"}})
    );
    assert!(expired["iterations"].as_u64().unwrap() >= 1);
    let asks = s.to("orchestrator", message::APPROVAL_REQUEST);
    assert_eq!(asks.len(), 1);
    let ask = &asks[0];
    assert_eq!(ask.from, Party::Supervisor);
    assert_eq!(ask.case, Some(case()));
    assert_eq!(ask.body["kind"], "debate");
    assert_eq!(ask.body["agent"], "director");
    assert_eq!(ask.body["areas_of_disagreement"], json!(["contrast"]));
    assert_eq!(ask.body["then"], json!([{"to": "editor"}]));
    assert!(s.approvals.contains_key(&ask.id));
    let result = &s.to("director", message::DEBATE_RESULT)[0];
    assert_eq!(result.body["consensus"], false);
    assert_eq!(result.body["escalated"], json!(ask.id));
    assert_eq!(s.story().last().unwrap(), "approval_requested");
    assert!(s.debates.is_empty());
    // Pacing: every iteration started at least min_interval after the last.
    let starts: Vec<u64> = s
        .log
        .iter()
        .filter(|r| r["event"] == "round_request" && r["to"] == "dp")
        .map(|r| r["t_ms"].as_u64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[1] - w[0] >= 100), "{starts:?}");

    // The orchestrator approves: the answer goes to the proposer.
    let decide = Envelope::new(
        Party::Orchestrator,
        Party::Supervisor,
        message::CONTROL,
        json!({"op": "decide", "request": ask.id, "approve": true, "note": "go dark"}),
    );
    s.inbox(&[decide]);
    let answers = s.to("director", message::APPROVAL_RESPONSE);
    assert_eq!(answers.len(), 1, "{:?}", s.events);
    let a = &answers[0];
    assert_eq!(a.reply_to, Some(ask.id));
    assert_eq!(a.body["approved"], true);
    assert_eq!(a.body["decision"], "approved");
    assert_eq!(a.body["note"], "go dark");
    assert_eq!(a.body["proposal"], json!({"p": 1}));
    assert_eq!(a.body["then"], json!([{"to": "editor"}]));
    assert_eq!(a.body["parked"], json!({"id": "x"}));
    assert_eq!(a.case, Some(CaseId::new("ep-11").unwrap()));
    assert_eq!(s.cases.get(&case()).unwrap().status.as_str(), "resolved");
}

#[test]
fn a_participant_that_does_not_answer_keeps_its_perspective() {
    let mut s = film_crew();
    let mut body = lighting(json!({"contrast": "high"}));
    body["participants"] = json!(["role:dp", "editor"]);
    body["threshold"] = json!(1.0);
    s.inbox(&[request(body)]);
    s.tick();
    s.answer("dp", json!({"contrast": "low"}));
    s.answer("editor", json!({"contrast": "high"}));
    s.now = T0 + 100;
    assert_eq!(s.tick(), ["ask"], "iteration 1");
    s.answer("director", json!({"contrast": "high"}));
    s.answer("dp", json!({"contrast": "high"}));
    // The editor stays silent: its iteration does not end until the pacing
    // interval, and then its round-1 position still counts.
    assert_eq!(s.tick(), Vec::<&str>::new());
    s.now = T0 + 199;
    assert_eq!(s.tick(), Vec::<&str>::new());
    s.now = T0 + 200;
    assert_eq!(s.tick(), ["agree"]);
    let consensus = s.log.iter().find(|r| r["event"] == "consensus").unwrap();
    assert_eq!(
        consensus["final_perspectives"]["editor"],
        json!({"contrast": "high"})
    );
    // An answer to a round that is over, a repeat, or one that is not an
    // object changes nothing: the debate has ended.
    assert!(s.debates.is_empty());
}

#[test]
fn no_one_to_debate_with_expires_at_once() {
    let mut s = film_crew();
    let mut body = lighting(json!({"contrast": "high"}));
    body["participants"] = json!(["ghost", "role:nobody"]);
    s.inbox(&[request(body)]);
    let d = s.debates.get(&case()).unwrap();
    assert_eq!(d.opened.participants, [aid("director")]);
    assert_eq!(d.opened.skipped, ["ghost", "role:nobody"]);
    assert_eq!(s.tick(), ["expire"]);
    let expired = s
        .log
        .iter()
        .find(|r| r["event"] == "debate_expired")
        .unwrap();
    assert_eq!(
        expired["reason"],
        "no participant besides the proposer could be resolved"
    );
    assert_eq!(s.to("orchestrator", message::APPROVAL_REQUEST).len(), 1);

    // Participants removed meanwhile: expires at the next step.
    let mut s = film_crew();
    s.inbox(&[request(lighting(json!({"contrast": "high"})))]);
    s.tick();
    s.agents.0.remove(&aid("dp"));
    assert_eq!(s.tick(), ["expire"]);
    let expired = s
        .log
        .iter()
        .find(|r| r["event"] == "debate_expired")
        .unwrap();
    assert_eq!(
        expired["reason"],
        "every participant besides the proposer is gone"
    );
}
