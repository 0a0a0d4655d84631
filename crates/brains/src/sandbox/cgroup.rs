//! A `pids` cgroup per program run, where the runtime may make one: it caps
//! the processes a program can have at once (a fork bomb stops there, root
//! included) and lists every process the run left, whatever session or
//! group it moved to. Without one, leftovers are found by the folder marker
//! in their environment ([`carrying`]).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Hierarchies where a `pids` cgroup could be made: cgroup v1 `pids`, or
/// v2 with the `pids` controller enabled for our cgroup's children.
fn candidates() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("/sys/fs/cgroup/pids")];
    if let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") {
        if let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::")) {
            for mount in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                let dir = Path::new(mount).join(path.trim_start_matches('/'));
                let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control"))
                    .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"));
                if enabled {
                    out.push(dir);
                }
            }
        }
    }
    out
}

/// Whether runs could get cgroups, without making any (for `status`).
pub(super) fn available() -> bool {
    candidates().iter().any(|dir| {
        dir.join("pids.max").exists() || dir.join("society/pids.max").exists()
    } && nix::unistd::access(dir.as_path(), nix::unistd::AccessFlags::W_OK).is_ok())
}

/// The directory under which runs get their cgroups (`society/` in the
/// first writable hierarchy), made on first use.
pub(super) fn base() -> Option<&'static Path> {
    static BASE: OnceLock<Option<PathBuf>> = OnceLock::new();
    BASE.get_or_init(|| {
        candidates().into_iter().find_map(|dir| {
            let base = dir.join("society");
            match std::fs::create_dir(&base) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(_) => return None,
            }
            if !base.join("pids.max").exists() {
                return None;
            }
            sweep_dead(&base);
            Some(base)
        })
    })
    .as_deref()
}

/// Kills and removes the run cgroups of agent processes that are gone (an
/// agent SIGKILLed while a program ran, or while its MCP servers lived).
fn sweep_dead(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("run-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let cg = Cgroup { dir: entry.path() };
            cg.kill_all();
            cg.remove();
        }
    }
}

pub(super) struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    /// A fresh cgroup for one run, at most `processes` processes.
    pub fn make(base: &Path, processes: u64) -> Option<Cgroup> {
        static RUN: AtomicU64 = AtomicU64::new(0);
        let n = RUN.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("run-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        let cg = Cgroup { dir };
        match std::fs::write(cg.dir.join("pids.max"), processes.to_string()) {
            Ok(()) => Some(cg),
            Err(_) => {
                cg.remove();
                None
            }
        }
    }

    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    fn members(&self) -> Vec<i32> {
        std::fs::read_to_string(self.procs())
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// SIGKILLs every member until none is left (2 s at most); returns
    /// the pids seen. A process forking meanwhile is caught on the next pass.
    pub fn kill_all(&self) -> Vec<i32> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let now = self.members();
            if now.is_empty() || Instant::now() >= deadline {
                return seen;
            }
            for pid in now {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                if !seen.contains(&pid) {
                    seen.push(pid);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// How often a fork was refused at `pids.max`.
    pub fn limit_hits(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("pids.events"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("max ").and_then(|n| n.trim().parse().ok()))
            })
            .unwrap_or(0)
    }

    /// Removes the (empty) cgroup; a member not yet gone keeps it, and the
    /// next probe's `society/` sweep does not matter: it is empty then.
    pub fn remove(&self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Live processes whose environment holds `marker` (`NAME=value`), except
/// those in the sessions led by `keep`.
pub(super) fn carrying(marker: &[u8], keep: &[i32]) -> Vec<i32> {
    use super::procfs;
    procfs::pids()
        .into_iter()
        .filter(|pid| procfs::carries(*pid, marker))
        .filter(|pid| procfs::stat(*pid).is_some_and(|s| !s.zombie() && !keep.contains(&s.session)))
        .collect()
}
