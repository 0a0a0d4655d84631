//! `-f`: wait for watched files to change, then let the caller print what is
//! new. The watcher makes it prompt; a timeout covers files created later.
//! Only data changes wake it: our own reads are watcher events too, and
//! waking on them would spin.

use crate::cli::exit::Code;
use notify::{RecursiveMode, Watcher};
use std::path::PathBuf;
use std::time::Duration;

/// Calls `print_new` whenever one of `paths` may have grown; never returns
/// unless `print_new` fails.
pub fn follow(
    paths: &[PathBuf],
    mut print_new: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Code> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok_and(|ev| society_runtime::watch::changes_data(&ev.kind)) {
            let _ = tx.send(());
        }
    })?;
    for p in paths {
        // A file that does not exist yet is picked up by the timeout.
        let _ = watcher.watch(p, RecursiveMode::NonRecursive);
    }
    loop {
        let _ = rx.recv_timeout(Duration::from_millis(500));
        while rx.try_recv().is_ok() {}
        print_new()?;
    }
}
