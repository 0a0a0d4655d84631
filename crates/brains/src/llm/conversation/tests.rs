use super::*;
use serde_json::json;

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
