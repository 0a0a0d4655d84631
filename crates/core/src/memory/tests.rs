#![allow(clippy::unwrap_used)]

use super::*;
use std::time::SystemTime;

fn note(text: &str, tags: &[&str]) -> Note {
    Note {
        text: text.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        case: None,
    }
}

fn ids(r: &Recall) -> Vec<&str> {
    r.hits.iter().map(|h| h.memory.id.as_str()).collect()
}

#[test]
fn remember_once_per_id_and_recall_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let msg = MsgId::generate();
    let a = derive_id(&msg, "0");
    assert_eq!(a, derive_id(&msg, "0"), "derived ids repeat");
    assert_ne!(a, derive_id(&msg, "1"));
    assert_eq!(
        store
            .remember(&a, &note("the dragon sleeps", &[]), Some(msg))
            .unwrap(),
        Remembered::Stored
    );
    assert_eq!(
        store
            .remember(&a, &note("the dragon sleeps", &[]), Some(msg))
            .unwrap(),
        Remembered::AlreadyStored
    );
    store
        .remember("b", &note("castle walls", &["dragon"]), None)
        .unwrap();
    store.remember("c", &note("bread", &[]), None).unwrap();
    let text = std::fs::read_to_string(dir.path().join("memory.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    let r = store.recall("dragon", 5, SystemTime::now(), true).unwrap();
    assert_eq!(ids(&r), vec!["b", a.as_str()]);
    assert_eq!(r.index, IndexState::Fresh, "remember kept the index fresh");
    assert_eq!(r.hits[1].memory.message, Some(msg));
}

#[test]
fn the_index_is_rebuilt_when_missing_stale_or_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let idx = dir.path().join("memory.idx.json");
    let src = dir.path().join("memory.jsonl");
    store
        .remember("a", &note("the dragon sleeps", &[]), None)
        .unwrap();
    let now = SystemTime::now();

    std::fs::remove_file(&idx).unwrap();
    let r = store.recall("dragon", 5, now, true).unwrap();
    assert_eq!((r.index, ids(&r)), (IndexState::Missing, vec!["a"]));
    assert_eq!(
        store.recall("dragon", 5, now, true).unwrap().index,
        IndexState::Fresh
    );

    // Another line appended behind the index's back (as by a process that
    // died before saving it): stale, and the new memory is found.
    let line = serde_json::to_string(&Memory {
        id: "b".into(),
        ts: crate::time::now_rfc3339(),
        text: "a red dragon".into(),
        tags: vec![],
        case: None,
        message: None,
    })
    .unwrap();
    jsonl::append_one(&src, line.as_bytes(), Durability::Flushed, 1 << 20).unwrap();
    let r = store.recall("red", 5, now, true).unwrap();
    assert_eq!((r.index, ids(&r)), (IndexState::Stale, vec!["b"]));
    assert_eq!(
        store.recall("red", 5, now, true).unwrap().index,
        IndexState::Fresh
    );

    // Garbage, and an index that parses but points past its source: rebuilt.
    std::fs::write(&idx, b"{not json").unwrap();
    let r = store.recall("dragon", 5, now, true).unwrap();
    assert_eq!((r.index, r.hits.len()), (IndexState::Corrupt, 2));
    let mut bad: Index = serde_json::from_slice(&std::fs::read(&idx).unwrap()).unwrap();
    bad.docs[0].offset = bad.source_len + 10;
    std::fs::write(&idx, serde_json::to_vec(&bad).unwrap()).unwrap();
    let r = store.recall("dragon", 5, now, true).unwrap();
    assert_eq!((r.index, r.hits.len()), (IndexState::Corrupt, 2));

    // A lying index with fresh stamps but wrong terms is only as good as its
    // stamps: what makes it stale is memory.jsonl changing, checked above.
    // Not saving (a reader outside the agent) leaves the file as it was.
    std::fs::remove_file(&idx).unwrap();
    store.recall("dragon", 5, now, false).unwrap();
    assert!(!idx.exists(), "a reader does not write the agent's folder");

    // A remember whose index is stale still dedupes against memory.jsonl.
    std::fs::write(&idx, b"[]").unwrap();
    assert_eq!(
        store
            .remember("b", &note("a red dragon", &[]), None)
            .unwrap(),
        Remembered::AlreadyStored
    );
}

#[test]
fn over_the_limits_is_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let big = "x".repeat(MAX_TEXT + 1);
    let e = store.remember("a", &note(&big, &[]), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "memory text is 16385 bytes, over the limit of 16384 bytes per memory; keep big content in workspace/ and remember its path"
    );
    assert!(e.is_refusal());
    store
        .remember("ok", &note(&"x".repeat(MAX_TEXT), &["t"; MAX_TAGS]), None)
        .unwrap();
    // At the limits and all escaped by JSON (6 bytes a character): still stored.
    let tag = "\u{1}".repeat(MAX_TAG);
    store
        .remember(
            "escaped",
            &note(&"\u{1}".repeat(MAX_TEXT), &[tag.as_str(); MAX_TAGS]),
            None,
        )
        .unwrap();
    let many = vec!["t"; MAX_TAGS + 1];
    let e = store.remember("b", &note("x", &many), None).unwrap_err();
    assert!(
        e.to_string().contains("17 tags, over the limit of 16"),
        "{e}"
    );
    let long = "t".repeat(MAX_TAG + 1);
    let e = store.remember("c", &note("x", &[&long]), None).unwrap_err();
    assert!(
        e.to_string()
            .contains("65 bytes, over the limit of 64 bytes per tag"),
        "{e}"
    );
    let e = store.remember("d", &note("  ", &[]), None).unwrap_err();
    assert_eq!(e.to_string(), "memory text is empty");
    let e = store.recall("x", 0, SystemTime::now(), true).unwrap_err();
    assert!(e.to_string().contains("between 1 and 100"), "{e}");
    assert_eq!(
        store.list().unwrap().len(),
        2,
        "nothing refused was written"
    );
}
