//! What `/proc` says about other processes: used to find what a program
//! left running (here, after a run) and what a dead agent's program left
//! (the runtime's startup sweep).

/// The fields of `/proc/<pid>/stat` the sweeps need.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub state: char,
    pub pgrp: i32,
    pub session: i32,
}

impl Stat {
    /// Dead, only its exit status left to reap.
    pub fn zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Every pid in `/proc` now.
pub fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `comm` may hold spaces and parentheses, so fields are counted after its
/// closing parenthesis.
pub fn stat(pid: i32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let _ppid = rest.next()?;
    let pgrp = rest.next()?.parse().ok()?;
    let session = rest.next()?.parse().ok()?;
    Some(Stat {
        state,
        pgrp,
        session,
    })
}

/// Whether the process's environment holds `marker` (`NAME=value`).
pub fn carries(pid: i32, marker: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == marker))
}
