//! Signals as events: SIGUSR1 is a wake-up ("your inbox grew"), SIGTERM,
//! SIGINT and SIGHUP ask for a clean stop. A thread turns them into a flag and
//! a channel message, so the main loop can sleep with a timeout.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use society_core::IoError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;

pub(crate) struct Installed {
    pub stop: Arc<AtomicBool>,
    pub wake: Receiver<()>,
}

pub(crate) fn install() -> Result<Installed, IoError> {
    let mut signals = Signals::new([SIGUSR1, SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| IoError::new("install signal handlers for", "agent", e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, wake) = mpsc::channel();
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            for sig in signals.forever() {
                if sig != SIGUSR1 {
                    flag.store(true, Ordering::SeqCst);
                }
                if tx.send(()).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| IoError::new("spawn signal thread for", "agent", e))?;
    Ok(Installed { stop, wake })
}
