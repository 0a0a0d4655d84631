//! s6-supervise restarting a SIGKILLed `sleep` service, for B3's peer column.

use super::sandbox::temp_dir;
use crate::stats::{summarize, Summary};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// s6-supervise restarting a SIGKILLed `sleep` service: time from the kill to
/// the new process, `kills` times.
pub fn s6_restart(kills: usize) -> Option<Summary> {
    let dir = temp_dir("s6").ok()?;
    let svc = dir.path().join("svc");
    std::fs::create_dir_all(&svc).ok()?;
    std::fs::write(svc.join("run"), "#!/bin/sh\nexec sleep 100000\n").ok()?;
    Command::new("chmod")
        .arg("755")
        .arg(svc.join("run"))
        .status()
        .ok()?;
    let mut sup = Command::new("s6-supervise")
        .arg(&svc)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let pid_of = || -> Option<i32> {
        let out = Command::new("s6-svstat")
            .args(["-o", "pid"])
            .arg(&svc)
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .ok()
            .filter(|p: &i32| *p > 0)
    };
    let mut samples = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pid = loop {
        if let Some(p) = pid_of() {
            break p;
        }
        if Instant::now() > deadline {
            let _ = sup.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    for _ in 0..kills {
        let t = Instant::now();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let next = loop {
            if let Some(p) = pid_of().filter(|p| *p != pid) {
                break p;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        samples.push(t.elapsed());
        pid = next;
    }
    let _ = Command::new("s6-svc").arg("-xd").arg(&svc).status();
    let _ = sup.wait();
    Some(summarize(samples))
}
