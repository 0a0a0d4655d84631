//! The event sources of the supervisor loop: signals and the one watcher.
//! Both only *wake* the loop; the loop re-reads the files, which are the truth.

use notify::{RecursiveMode, Watcher};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use society_core::IoError;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

#[derive(Debug)]
pub(crate) enum Event {
    /// Files changed (a hint: re-read them).
    Fs(Vec<PathBuf>),
    /// A child exited (reap with waitpid).
    Child,
    /// SIGTERM/SIGINT/SIGHUP: stop everything and exit.
    Shutdown,
}

pub(crate) fn signals(tx: Sender<Event>) -> Result<(), IoError> {
    let mut signals = Signals::new([SIGCHLD, SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| IoError::new("install signal handlers for", "supervisor", e))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let ev = if sig == SIGCHLD {
                    Event::Child
                } else {
                    tracing::info!(
                        signal = %signal_hook::low_level::signal_name(sig).unwrap_or("?"),
                        "shutdown signal received"
                    );
                    Event::Shutdown
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| IoError::new("spawn signal thread for", "supervisor", e))?;
    Ok(())
}

/// The single inotify instance of the whole society. Watches individual files
/// (inboxes, outboxes, registry, the supervisor's inbox), never whole trees, so
/// heartbeat rewrites of `status.json` cost nothing.
pub(crate) struct FileWatch {
    watcher: Option<notify::RecommendedWatcher>,
    /// The inode each watch is on: inotify watches an inode, not a name, so
    /// a file rotated into `archive/` takes its watch with it and the new
    /// live file must be watched anew (see [`FileWatch::refresh`]).
    watched: std::collections::HashMap<PathBuf, Option<u64>>,
}

fn inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

impl FileWatch {
    pub(crate) fn new(tx: Sender<Event>) -> FileWatch {
        let watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(ev) if crate::watch::changes_data(&ev.kind) => {
                    let _ = tx.send(Event::Fs(ev.paths));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "file watcher error; the periodic scan covers it")
                }
            });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "no file watcher; falling back to the periodic scan");
                None
            }
        };
        FileWatch {
            watcher,
            watched: std::collections::HashMap::new(),
        }
    }

    pub(crate) fn add(&mut self, path: &Path) {
        self.watched.insert(path.to_path_buf(), inode(path));
        if let Some(w) = self.watcher.as_mut() {
            if let Err(e) = w.watch(path, RecursiveMode::NonRecursive) {
                tracing::warn!(path = %path.display(), error = %e, "cannot watch file; the periodic scan covers it");
            }
        }
    }

    /// Stops watching a file (its agent was removed).
    pub(crate) fn remove(&mut self, path: &Path) {
        self.watched.remove(path);
        if let Some(w) = self.watcher.as_mut() {
            let _ = w.unwatch(path);
        }
    }

    /// Watches anew every file that is no longer the one watched (rotated
    /// into `archive/`, or created since). Called from the periodic scan.
    pub(crate) fn refresh(&mut self) {
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|(p, ino)| inode(p) != **ino)
            .map(|(p, _)| p.clone())
            .collect();
        for path in stale {
            if let Some(w) = self.watcher.as_mut() {
                let _ = w.unwatch(&path);
            }
            self.add(&path);
        }
    }
}
