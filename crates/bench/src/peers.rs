//! Peers measured in the same run: Redis (lists, one echo worker) with
//! `appendfsync always` and with its defaults, and s6-supervise restarting a
//! SIGKILLed service. Both are started here on loopback / in a temp dir and
//! stopped when done.

use crate::stats::{summarize, Summary};
use redis::Commands;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile_dir::Dir,
}

/// A tiny owned temp dir (std only).
mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p =
                std::env::temp_dir().join(format!("society-bench-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Redis {
    /// `fsync_always`: AOF on with `appendfsync always`; else Redis's defaults.
    pub fn start(fsync_always: bool) -> Option<Redis> {
        let port = free_port();
        let dir = tempfile_dir::Dir::new(if fsync_always {
            "redis-always"
        } else {
            "redis-default"
        });
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(&dir.0);
        if fsync_always {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let r = Redis {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.conn().is_none() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(r)
    }

    fn conn(&self) -> Option<redis::Connection> {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .ok()?
            .get_connection()
            .ok()?;
        redis::cmd("PING").query::<String>(&mut c).ok()?;
        Some(c)
    }

    /// The echo worker: BRPOP a request, LPUSH it to the reply list.
    fn worker(&self) -> std::thread::JoinHandle<()> {
        let mut c = self.conn().expect("worker connection");
        std::thread::spawn(move || loop {
            let got: Option<(String, String)> = c.brpop("req", 1.0).unwrap_or(None);
            if let Some((_, v)) = got {
                if v == "quit" {
                    return;
                }
                let _: () = c.lpush("resp", v).expect("lpush");
            }
        })
    }

    pub fn latency(&self, n: usize) -> Summary {
        let w = self.worker();
        let mut c = self.conn().expect("client");
        let mut samples = Vec::new();
        for i in 0..n + 20 {
            let t = Instant::now();
            let _: () = c.lpush("req", format!("m{i}")).expect("lpush");
            let _: Option<(String, String)> = c.brpop("resp", 10.0).expect("brpop");
            if i >= 20 {
                samples.push(t.elapsed());
            }
        }
        let _: () = c.lpush("req", "quit").expect("quit");
        let _ = w.join();
        summarize(samples)
    }

    pub fn throughput(&self, n: usize) -> f64 {
        let w = self.worker();
        let mut c = self.conn().expect("client");
        let t = Instant::now();
        let mut pipe = redis::pipe();
        for i in 0..n {
            pipe.lpush("req", format!("m{i}")).ignore();
        }
        let _: () = pipe.query(&mut c).expect("pipeline");
        for _ in 0..n {
            let _: Option<(String, String)> = c.brpop("resp", 30.0).expect("brpop");
        }
        let rate = n as f64 / t.elapsed().as_secs_f64();
        let _: () = c.lpush("req", "quit").expect("quit");
        let _ = w.join();
        rate
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(16379)
}

/// s6-supervise restarting a SIGKILLed `sleep` service: time from the kill to
/// the new process, `kills` times.
pub fn s6_restart(kills: usize) -> Option<Summary> {
    let dir = tempfile_dir::Dir::new("s6");
    let svc = dir.0.join("svc");
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
