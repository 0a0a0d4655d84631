#![allow(clippy::unwrap_used)]
use super::*;
use nix::fcntl::OFlag;
use std::fs::File;
use std::os::unix::fs::symlink;

/// A society's state directory in a temp dir, and a place outside it.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(crate::layout::STATE_DIR);
    std::fs::create_dir_all(state.join("agent-a")).unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    (dir, state, outside)
}

fn refusal(e: std::io::Error) -> Symlinked {
    Symlinked::of(&e)
        .unwrap_or_else(|| panic!("not a refusal: {e}"))
        .clone()
}

#[test]
fn a_link_anywhere_below_the_state_directory_is_refused() {
    let (_dir, state, outside) = setup();
    std::fs::write(outside.join("inbox.jsonl"), "keep\n").unwrap();
    let append = OFlag::O_RDWR | OFlag::O_APPEND | OFlag::O_CREAT;
    // The folder on the way.
    symlink(&outside, state.join("agent-ghost")).unwrap();
    let e = refusal(open(&state.join("agent-ghost/inbox.jsonl"), append, 0o600).unwrap_err());
    assert_eq!(e.link, state.join("agent-ghost"));
    assert_eq!(e.target, outside);
    assert_eq!(e.leads, Leads::Outside);
    // The file itself, even pointing inside.
    std::fs::write(state.join("agent-a/real.jsonl"), "").unwrap();
    symlink(
        state.join("agent-a/real.jsonl"),
        state.join("agent-a/inbox.jsonl"),
    )
    .unwrap();
    let e = refusal(open(&state.join("agent-a/inbox.jsonl"), append, 0o600).unwrap_err());
    assert_eq!(e.leads, Leads::Inside);
    // A dangling one: not created at its target.
    symlink(outside.join("new"), state.join("agent-a/outbox.jsonl")).unwrap();
    let e = refusal(open(&state.join("agent-a/outbox.jsonl"), append, 0o600).unwrap_err());
    assert_eq!(e.leads, Leads::Nowhere);
    assert!(!outside.join("new").exists());
    assert_eq!(
        std::fs::read(outside.join("inbox.jsonl")).unwrap(),
        b"keep\n"
    );
    // Creating folders does not go through one either.
    let e = refusal(create_dir_all(&state.join("agent-ghost/workspace/code"), 0o700).unwrap_err());
    assert_eq!(e.link, state.join("agent-ghost"));
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    // What is not a link opens and is created as usual.
    open(&state.join("agent-a/activity.jsonl"), append, 0o600).unwrap();
    create_dir_all(&state.join("agent-a/workspace/code"), 0o700).unwrap();
    assert!(state.join("agent-a/workspace/code").is_dir());
    assert!(check(&state.join("agent-a/workspace/code")).is_ok());
    assert_eq!(
        check(&state.join("agent-ghost/inbox.jsonl"))
            .unwrap_err()
            .link,
        state.join("agent-ghost")
    );
}

#[test]
fn the_state_directory_itself_may_be_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("elsewhere");
    std::fs::create_dir_all(real.join("agent-a")).unwrap();
    let state = dir.path().join(crate::layout::STATE_DIR);
    symlink(&real, &state).unwrap();
    let f = state.join("agent-a/inbox.jsonl");
    open(&f, OFlag::O_RDWR | OFlag::O_CREAT, 0o600).unwrap();
    assert!(real.join("agent-a/inbox.jsonl").is_file());
}

#[test]
fn an_agent_folder_is_checked_entry_by_entry() {
    let (_dir, state, outside) = setup();
    let paths = crate::AgentPaths::new(state.join("agent-a"));
    paths.create().unwrap();
    check_folder(&paths).unwrap();
    std::fs::remove_dir_all(paths.workspace()).unwrap();
    symlink(&outside, paths.workspace()).unwrap();
    let e = check_folder(&paths).unwrap_err();
    assert_eq!(e.link, paths.workspace());
    assert!(e.to_string().contains("outside .society-agent/"), "{e}");
}

#[test]
fn beneath_follows_links_only_while_they_stay_inside() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("workspace");
    std::fs::create_dir_all(ws.join("output")).unwrap();
    std::fs::write(ws.join("output/a.md"), "a").unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "s").unwrap();
    symlink("output", ws.join("rel")).unwrap();
    symlink(ws.join("output"), ws.join("abs")).unwrap();
    symlink(&outside, ws.join("out")).unwrap();
    symlink("../outside/secret", ws.join("up")).unwrap();
    let base = File::open(&ws).unwrap();
    let read = |rel: &str| read_beneath(&base, &ws, Path::new(rel), 1 << 20, Path::new(rel));
    assert_eq!(read("output/a.md").unwrap(), b"a");
    assert_eq!(read("rel/a.md").unwrap(), b"a");
    assert_eq!(
        read("abs/a.md").unwrap(),
        b"a",
        "an absolute link back inside"
    );
    for bad in ["out/secret", "up", "../outside/secret", "/etc/hostname"] {
        assert!(
            matches!(read(bad), Err(BeneathError::Outside { .. })),
            "{bad}: {:?}",
            read(bad)
        );
    }
    assert!(matches!(read("none"), Err(BeneathError::Missing { .. })));
    assert!(matches!(
        read("output"),
        Err(BeneathError::IsADirectory { .. })
    ));
    let write = |rel: &str| write_beneath(&base, &ws, Path::new(rel), b"w", Path::new(rel));
    write("new/deep/x.md").unwrap();
    write("abs/y.md").unwrap();
    assert_eq!(std::fs::read(ws.join("output/y.md")).unwrap(), b"w");
    assert!(matches!(write("out/z"), Err(BeneathError::Outside { .. })));
    assert!(matches!(
        write("out/new/z"),
        Err(BeneathError::Outside { .. })
    ));
    // A link at the last component is replaced, not written through.
    write("up").unwrap();
    assert!(!ws.join("up").is_symlink());
    assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"s");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
}
