//! Redis as a durable queue: requests on the list `req`, replies on `resp`,
//! an echo worker thread on its own connection.

use super::sandbox::{free_port, temp_dir, wait_ready};
use super::BATCH;
use crate::stats::{summarize, Summary};
use anyhow::{bail, Context};
use redis::Commands;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Instant;

/// Sent after the measured requests; the worker returns when it pops it.
const QUIT: &str = "quit";
/// How long a blocking pop waits before the caller gives up (seconds).
const POP_TIMEOUT: f64 = 30.0;

/// How the echo worker takes requests.
#[derive(Clone, Copy)]
pub enum Worker {
    /// BRPOP one request, LPUSH its reply, repeat.
    OneAtATime,
    /// BLMPOP up to [`BATCH`] requests (blocking for the first), then LPUSH
    /// every reply in one pipeline.
    Batching,
}

pub struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// With the append-only file on and `appendfsync` set to `appendfsync`:
    /// `always` (fsync before replying, once per pass of the event loop, so a
    /// pipeline shares one) or `everysec` (Redis's default policy for the
    /// AOF, itself off out of the box).
    pub fn start(appendfsync: &str) -> anyhow::Result<Redis> {
        let port = free_port()?;
        let dir = temp_dir(&format!("redis-{appendfsync}"))?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(dir.path())
            .args(["--appendonly", "yes", "--appendfsync", appendfsync])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("failed to start redis-server")?;
        let redis = Redis {
            child,
            port,
            _dir: dir,
        };
        wait_ready("redis-server", || redis.conn().is_ok())?;
        Ok(redis)
    }

    fn conn(&self) -> anyhow::Result<redis::Connection> {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?
            .get_connection()
            .context("failed to connect to redis-server")?;
        redis::cmd("PING").query::<String>(&mut c)?;
        Ok(c)
    }

    fn spawn_worker(&self, kind: Worker) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
        let mut c = self.conn()?;
        Ok(std::thread::spawn(move || loop {
            let requests = match kind {
                Worker::OneAtATime => {
                    let got: Option<(String, String)> = c.brpop("req", POP_TIMEOUT)?;
                    got.map(|(_, v)| vec![v])
                }
                Worker::Batching => pop_batch(&mut c, "req")?,
            };
            let Some(requests) = requests else { continue };
            let quit = requests.iter().any(|r| r == QUIT);
            let mut replies = redis::pipe();
            for r in requests.into_iter().filter(|r| r != QUIT) {
                replies.lpush("resp", r).ignore();
            }
            replies.query::<()>(&mut c).context("worker replies")?;
            if quit {
                return Ok(());
            }
        }))
    }

    /// Round trips one at a time with the one-at-a-time worker: LPUSH a
    /// request, BRPOP its reply. The first 20 are warm-up.
    pub fn latency(&self, n: usize) -> anyhow::Result<Summary> {
        let worker = self.spawn_worker(Worker::OneAtATime)?;
        let mut c = self.conn()?;
        let mut samples = Vec::with_capacity(n);
        for i in 0..n + 20 {
            let t = Instant::now();
            c.lpush::<_, _, ()>("req", format!("m{i}"))?;
            let reply: Option<(String, String)> = c.brpop("resp", POP_TIMEOUT)?;
            if reply.is_none() {
                bail!("no reply from the redis worker within {POP_TIMEOUT} s");
            }
            if i >= 20 {
                samples.push(t.elapsed());
            }
        }
        stop(&mut c, worker)?;
        Ok(summarize(samples))
    }

    /// `n` requests in one pipeline of LPUSHes, then every reply consumed:
    /// one BRPOP at a time with the one-at-a-time worker (the harness as it
    /// was), BLMPOP up to [`BATCH`] at a time with the batching worker.
    pub fn throughput(&self, n: usize, kind: Worker) -> anyhow::Result<f64> {
        let worker = self.spawn_worker(kind)?;
        let mut c = self.conn()?;
        let t = Instant::now();
        let mut requests = redis::pipe();
        for i in 0..n {
            requests.lpush("req", format!("m{i}")).ignore();
        }
        requests.query::<()>(&mut c).context("request pipeline")?;
        let mut received = 0;
        while received < n {
            let got = match kind {
                Worker::OneAtATime => {
                    let one: Option<(String, String)> = c.brpop("resp", POP_TIMEOUT)?;
                    one.map(|_| 1)
                }
                Worker::Batching => pop_batch(&mut c, "resp")?.map(|b| b.len()),
            };
            received += got.with_context(|| {
                format!("{received} of {n} replies, then none for {POP_TIMEOUT} s")
            })?;
        }
        let rate = n as f64 / t.elapsed().as_secs_f64();
        stop(&mut c, worker)?;
        Ok(rate)
    }
}

/// BLMPOP: blocks until `key` holds something, then pops up to [`BATCH`]
/// from its tail (the oldest, as LPUSH adds at the head). None on timeout.
fn pop_batch(c: &mut redis::Connection, key: &str) -> anyhow::Result<Option<Vec<String>>> {
    let got: Option<(String, Vec<String>)> = redis::cmd("BLMPOP")
        .arg(POP_TIMEOUT)
        .arg(1)
        .arg(key)
        .arg("RIGHT")
        .arg("COUNT")
        .arg(BATCH)
        .query(c)
        .with_context(|| format!("BLMPOP {key}"))?;
    Ok(got.map(|(_, items)| items))
}

fn stop(c: &mut redis::Connection, worker: JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    c.lpush::<_, _, ()>("req", QUIT)?;
    worker
        .join()
        .map_err(|_| anyhow::anyhow!("the redis worker thread panicked"))?
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
