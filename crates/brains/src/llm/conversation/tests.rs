use super::*;
use serde_json::json;
use std::collections::HashSet;

fn call(id: &str, name: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        args: json!({}),
    }
}

#[test]
fn tail_says_what_is_due_and_survives_reload_and_torn_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = MsgId::generate();
    let mut c = Conversation::load(dir.path(), "k").expect("load");
    assert_eq!(c.next(), Next::Call);
    c.push(
        Turn::User {
            msg: m,
            text: "hi".into(),
        },
        1,
    )
    .expect("push");
    assert_eq!(c.next(), Next::Call);
    let calls = vec![call("a", "write_file"), call("b", "reply")];
    c.push(
        Turn::Assistant {
            msg: m,
            step: 1,
            text: None,
            calls: calls.clone(),
            usage: Usage {
                input: 3,
                output: 4,
            },
            thinking: vec![],
        },
        1,
    )
    .expect("push");
    assert_eq!(c.next(), Next::Execute(calls.clone()));
    c.push(
        Turn::Tool {
            msg: m,
            step: 1,
            call: "a".into(),
            name: "write_file".into(),
            args: json!({}),
            result: "ok".into(),
            ok: true,
        },
        1,
    )
    .expect("push");
    // A writer killed mid-line leaves a fragment: the next load skips it.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(c.path())
        .expect("open");
    std::io::Write::write_all(&mut f, b"{\"ts\":\"x\",\"tu").expect("write");
    let mut c = Conversation::load(dir.path(), "k").expect("reload");
    assert_eq!(c.next(), Next::Execute(vec![calls[1].clone()]));
    c.push(
        Turn::Tool {
            msg: m,
            step: 1,
            call: "b".into(),
            name: "reply".into(),
            args: json!({}),
            result: "ok".into(),
            ok: true,
        },
        2,
    )
    .expect("push after torn line");
    let c = Conversation::load(dir.path(), "k").expect("reload");
    assert_eq!(c.turns.len(), 4);
    assert_eq!(c.next(), Next::Call);
    assert_eq!(c.steps(m), 1);
    assert_eq!(
        c.last_usage(),
        Some(Usage {
            input: 3,
            output: 4
        })
    );
}

#[test]
fn finish_and_text_answers_end_the_exchange() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = MsgId::generate();
    let mut c = Conversation::load(dir.path(), "k").expect("load");
    c.push(
        Turn::User {
            msg: m,
            text: "hi".into(),
        },
        1,
    )
    .expect("push");
    c.push(
        Turn::Assistant {
            msg: m,
            step: 1,
            text: Some("hello".into()),
            calls: vec![],
            usage: Usage::default(),
            thinking: vec![],
        },
        1,
    )
    .expect("push");
    assert_eq!(c.next(), Next::Done);
    c.push(
        Turn::User {
            msg: MsgId::generate(),
            text: "more".into(),
        },
        1,
    )
    .expect("push");
    assert_eq!(c.next(), Next::Call);
    c.push(
        Turn::Assistant {
            msg: m,
            step: 2,
            text: None,
            calls: vec![call("f", "finish")],
            usage: Usage::default(),
            thinking: vec![],
        },
        1,
    )
    .expect("push");
    assert!(matches!(c.next(), Next::Execute(_)));
    c.push(
        Turn::Tool {
            msg: m,
            step: 2,
            call: "f".into(),
            name: "finish".into(),
            args: json!({}),
            result: "ok".into(),
            ok: true,
        },
        1,
    )
    .expect("push");
    assert_eq!(c.next(), Next::Done);
}

#[test]
fn thinking_blocks_survive_a_reload_and_older_lines_have_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = MsgId::generate();
    let signed = json!({"type": "thinking", "thinking": "hmm", "signature": "c2ln"});
    let mut c = Conversation::load(dir.path(), "k").expect("load");
    c.push(
        Turn::Assistant {
            msg: m,
            step: 1,
            text: Some("hi".into()),
            calls: vec![],
            usage: Usage::default(),
            thinking: vec![signed.clone()],
        },
        1,
    )
    .expect("push");
    let old = format!(
        r#"{{"ts":"2025-01-01T00:00:00Z","gen":1,"turn":"assistant","msg":"{m}","step":2,"text":"x","calls":[],"usage":{{"input":1,"output":1}}}}"#
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(c.path())
        .expect("open");
    std::io::Write::write_all(&mut f, format!("{old}\n").as_bytes()).expect("write");
    let c = Conversation::load(dir.path(), "k").expect("reload");
    let thinking: Vec<_> = c
        .turns
        .iter()
        .map(|t| match t {
            Turn::Assistant { thinking, .. } => thinking.clone(),
            _ => panic!("{t:?}"),
        })
        .collect();
    assert_eq!(thinking, vec![vec![signed], vec![]]);
}

fn user(m: MsgId) -> Turn {
    Turn::User {
        msg: m,
        text: format!("message {m}"),
    }
}

fn asked(m: MsgId, step: u32, calls: &[&str]) -> Turn {
    Turn::Assistant {
        msg: m,
        step,
        text: calls.is_empty().then(|| "done".to_string()),
        calls: calls.iter().map(|c| call(c, "write_file")).collect(),
        usage: Usage {
            input: 100,
            output: 10,
        },
        thinking: vec![],
    }
}

fn result(m: MsgId, step: u32, id: &str) -> Turn {
    Turn::Tool {
        msg: m,
        step,
        call: id.into(),
        name: "write_file".into(),
        args: json!({}),
        result: "ok".into(),
        ok: true,
    }
}

fn conversation(dir: &Path, turns: Vec<Turn>) -> Conversation {
    let mut c = Conversation::load(dir, "k").expect("load");
    for t in turns {
        c.push(t, 1).expect("push");
    }
    c
}

/// No message has turns on both sides of `cut`.
fn whole(c: &Conversation, cut: usize) -> bool {
    let before: HashSet<MsgId> = c.turns[..cut].iter().map(Turn::msg).collect();
    c.turns[cut..]
        .iter()
        .filter(|t| !matches!(t, Turn::Summary { .. }))
        .all(|t| !before.contains(&t.msg()))
}

#[test]
fn a_cut_falls_before_a_message_never_between_calls_and_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, cur) = (MsgId::generate(), MsgId::generate(), MsgId::generate());
    let c = conversation(
        dir.path(),
        vec![
            user(a),                    // 0
            asked(a, 1, &["a1", "a2"]), // 1
            result(a, 1, "a1"),         // 2
            result(a, 1, "a2"),         // 3
            asked(a, 2, &[]),           // 4
            user(b),                    // 5
            asked(b, 1, &["b1"]),       // 6
            result(b, 1, "b1"),         // 7
            asked(b, 2, &[]),           // 8
            user(cur),                  // 9
            asked(cur, 1, &["c1"]),     // 10
            result(cur, 1, "c1"),       // 11
        ],
    );
    assert_eq!(c.cut(1), Some(9), "everything before the current message");
    assert_eq!(c.cut(2), Some(5), "the last two messages kept");
    assert_eq!(c.cut(3), None, "nothing older than three messages");
    assert_eq!(c.cut(0), Some(9), "the current message is always kept");
    for keep in 1..3 {
        let cut = c.cut(keep).expect("a cut");
        assert!(matches!(c.turns[cut], Turn::User { .. }));
        assert!(whole(&c, cut), "keep {keep}: cut {cut} splits a message");
    }
    // The summary call sees what it replaces, calls paired with results.
    let (prev, older) = c.older(5);
    assert_eq!(prev, None);
    assert_eq!(older, c.turns[..5].to_vec());
}

#[test]
fn interleaved_messages_are_not_cut_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, cur) = (MsgId::generate(), MsgId::generate(), MsgId::generate());
    // A parked message (a) continues after b arrived: no cut between them.
    let c = conversation(
        dir.path(),
        vec![
            user(a),
            user(b),
            asked(a, 1, &["a1"]),
            result(a, 1, "a1"),
            asked(b, 1, &[]),
            user(cur),
        ],
    );
    assert_eq!(c.cut(1), Some(5));
    assert_eq!(c.cut(2), None, "b's user turn is inside a's turns");
    // A message whose calls are still pending is not cut off its results.
    let dir = tempfile::tempdir().expect("tempdir");
    let c = conversation(
        dir.path(),
        vec![user(a), asked(a, 1, &["a1"]), user(b), result(a, 1, "a1")],
    );
    assert_eq!(c.cut(1), None);
}

#[test]
fn a_summary_replaces_the_turns_before_its_cut_in_requests_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, cur, next) = (
        MsgId::generate(),
        MsgId::generate(),
        MsgId::generate(),
        MsgId::generate(),
    );
    let mut c = conversation(
        dir.path(),
        vec![
            user(a),
            asked(a, 1, &["a1"]),
            result(a, 1, "a1"),
            asked(a, 2, &[]),
            user(b),
            asked(b, 1, &[]),
            user(cur),
        ],
    );
    let cut = c.cut(2).expect("a cut");
    assert_eq!(cut, 4);
    let summary = Turn::Summary {
        msg: cur,
        upto: cut,
        text: "a asked for a file; written".into(),
        model: "small".into(),
        usage: Usage {
            input: 50,
            output: 8,
        },
    };
    c.push(summary.clone(), 1).expect("push summary");
    // A replacement process killed right after the summary line reads the
    // same state: the current message still needs its model call.
    let mut c = Conversation::load(dir.path(), "k").expect("reload");
    assert_eq!(c.turns.len(), 8, "every turn stays in the file");
    assert_eq!(c.next(), Next::Call);
    assert_eq!(
        c.last_usage(),
        None,
        "older answers saw what is now summarised"
    );
    let mut expected = vec![summary.clone()];
    expected.extend(c.turns[4..7].iter().cloned());
    assert_eq!(c.for_request(), expected);
    assert_eq!(c.cut(1), Some(6), "only what lies after the summary's cut");
    assert_eq!(c.cut(2), None, "the same cut is never summarised twice");
    // Later turns follow the summary; a second summary starts from the first.
    c.push(asked(cur, 1, &[]), 1).expect("push");
    c.push(user(next), 1).expect("push");
    assert!(c.last_usage().is_some());
    assert_eq!(c.cut(2), Some(6));
    let (prev, older) = c.older(6);
    assert_eq!(prev, Some("a asked for a file; written"));
    assert_eq!(older, c.turns[4..6].to_vec());
    c.push(
        Turn::Summary {
            msg: next,
            upto: 6,
            text: "second".into(),
            model: "small".into(),
            usage: Usage::default(),
        },
        1,
    )
    .expect("push");
    let req = c.for_request();
    assert!(matches!(&req[0], Turn::Summary { text, .. } if text == "second"));
    assert_eq!(
        req[1..],
        [c.turns[6].clone(), c.turns[8].clone(), c.turns[9].clone()],
        "cur's user turn and answer, next's user turn; no summary line"
    );
}

#[test]
fn started_lines_are_kept_apart_from_the_turns_and_survive_a_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = MsgId::generate();
    let mut c = Conversation::load(dir.path(), "k").expect("load");
    c.push(
        Turn::User {
            msg: m,
            text: "hi".into(),
        },
        1,
    )
    .expect("push");
    let calls = vec![call("a", "word_count"), call("b", "finish")];
    c.push(
        Turn::Assistant {
            msg: m,
            step: 1,
            text: None,
            calls: calls.clone(),
            usage: Usage::default(),
            thinking: vec![],
        },
        1,
    )
    .expect("push");
    let started = |run| Started {
        msg: m,
        step: 1,
        call: "a".into(),
        name: "word_count".into(),
        run,
    };
    c.push_started(started(1), 1).expect("started");
    // Killed here: the reload still has the call pending, and knows it began.
    let mut c = Conversation::load(dir.path(), "k").expect("reload");
    assert_eq!(c.turns.len(), 2);
    assert_eq!(c.next(), Next::Execute(calls.clone()));
    assert_eq!(c.runs(m, 1, "a"), 1);
    assert_eq!(c.runs(m, 1, "b"), 0);
    assert_eq!(c.runs(m, 2, "a"), 0);
    c.push_started(started(2), 2).expect("started again");
    c.push(
        Turn::Tool {
            msg: m,
            step: 1,
            call: "a".into(),
            name: "word_count".into(),
            args: json!({}),
            result: "3".into(),
            ok: true,
        },
        2,
    )
    .expect("push");
    let c = Conversation::load(dir.path(), "k").expect("reload");
    assert_eq!(c.started, vec![started(1), started(2)]);
    assert_eq!(c.next(), Next::Execute(vec![calls[1].clone()]));
    let request = c.for_request();
    assert_eq!(request.len(), 4, "{request:?}");
    assert!(matches!(&request[2], Turn::Tool { call, result, .. } if call == "a" && result == "3"));
}
