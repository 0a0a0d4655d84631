//! NATS JetStream as a durable queue both ways, the way society keeps both a
//! request (the agent's inbox) and its reply (the orchestrator inbox) on disk:
//! requests on subject `req` stored in stream `REQ`, replies on `resp` stored
//! in stream `RESP`, both file storage, the server started with
//! `sync_interval: always` so that a publish is acknowledged only after its
//! fsync. The echo worker and the client each have their own connection and
//! share a two-thread tokio runtime.

use super::sandbox::{free_port, temp_dir, wait_ready};
use super::BATCH;
use crate::stats::{summarize, Summary};
use anyhow::{bail, Context as _};
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const REQ: &str = "req";
const RESP: &str = "resp";
const REQ_STREAM: &str = "REQ";
const RESP_STREAM: &str = "RESP";
/// How long the client waits for a reply or an acknowledgement before it
/// gives up (a stuck peer must not hang the whole run).
const WAIT: Duration = Duration::from_secs(60);

pub struct Nats {
    child: Child,
    url: String,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Nats {
    /// Starts `server` (a `nats-server` binary) with JetStream on, stores in a
    /// temp dir, and checks that it really syncs every write.
    pub fn start(server: &Path) -> anyhow::Result<Nats> {
        let dir = temp_dir("nats")?;
        let (port, monitor) = (free_port()?, free_port()?);
        let config = dir.path().join("nats.conf");
        std::fs::write(
            &config,
            format!(
                "listen: \"127.0.0.1:{port}\"\nhttp: \"127.0.0.1:{monitor}\"\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n",
                dir.path().join("store").display()
            ),
        )?;
        let child = Command::new(server)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("failed to start {}", server.display()))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let nats = Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            rt,
            _dir: dir,
        };
        wait_ready("nats-server", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok() && varz(monitor).is_ok()
        })?;
        // An older server would reject the key or read it as a duration; ask
        // the running one what it made of it rather than trust the file.
        let varz = varz(monitor)?;
        if varz["jetstream"]["config"]["sync_always"] != true {
            bail!(
                "nats-server {} does not report sync_always after `sync_interval: always`",
                varz["version"]
            );
        }
        Ok(nats)
    }

    /// The client URL (`nats://127.0.0.1:PORT`), for F1's societies.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Round trips one at a time: publish a request and await its ack; the
    /// worker fetches it, publishes the reply, awaits that ack and acks the
    /// request; the client receives the reply. The first 20 are warm-up.
    pub fn latency(&self, n: usize) -> anyhow::Result<Summary> {
        self.rt.block_on(async {
            let mut run = Run::open(&self.url, 1).await?;
            let mut samples = Vec::with_capacity(n);
            for i in 0..n + 20 {
                let t = Instant::now();
                run.js.publish(REQ, format!("m{i}").into()).await?.await?;
                run.next_reply().await?;
                if i >= 20 {
                    samples.push(t.elapsed());
                }
            }
            run.close().await?;
            Ok(summarize(samples))
        })
    }

    /// `n` requests published back to back (all `n` acks in flight), their
    /// acks awaited while the client consumes every reply.
    pub fn throughput(&self, n: usize) -> anyhow::Result<f64> {
        self.rt.block_on(async {
            let mut run = Run::open(&self.url, n).await?;
            let t = Instant::now();
            let mut acks = Vec::with_capacity(n);
            for i in 0..n {
                acks.push(run.js.publish(REQ, format!("m{i}").into()).await?);
            }
            let acked = tokio::spawn(async move {
                for ack in acks {
                    ack.await?;
                }
                anyhow::Ok(())
            });
            for _ in 0..n {
                run.next_reply().await?;
            }
            let elapsed = t.elapsed();
            acked.await??;
            run.close().await?;
            Ok(n as f64 / elapsed.as_secs_f64())
        })
    }
}

/// One measurement: fresh streams, the worker, and the client's reply
/// consumer.
struct Run {
    js: jetstream::Context,
    replies: consumer::pull::Ordered,
    worker: JoinHandle<anyhow::Result<()>>,
}

impl Run {
    /// `in_flight`: how many publish acks the client may await at once.
    async fn open(url: &str, in_flight: usize) -> anyhow::Result<Run> {
        let client = async_nats::connect(url)
            .await
            .context("failed to connect to nats-server")?;
        let js = jetstream::ContextBuilder::new()
            .timeout(WAIT)
            .max_ack_inflight(in_flight)
            .build(client);
        for (name, subject) in [(REQ_STREAM, REQ), (RESP_STREAM, RESP)] {
            js.create_stream(stream::Config {
                name: name.into(),
                subjects: vec![subject.into()],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .with_context(|| format!("failed to create stream {name}"))?;
        }
        let worker = tokio::spawn(worker(url.to_string()));
        // Ordered: an ephemeral consumer without acks, the fastest way to read
        // a stream; a reply is delivered only once it is stored.
        let replies = js
            .get_stream(RESP_STREAM)
            .await?
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: RESP.into(),
                ..Default::default()
            })
            .await?
            .messages()
            .await?;
        Ok(Run {
            js,
            replies,
            worker,
        })
    }

    async fn next_reply(&mut self) -> anyhow::Result<()> {
        match tokio::time::timeout(WAIT, self.replies.next()).await {
            Ok(Some(reply)) => {
                reply?;
                Ok(())
            }
            Ok(None) => bail!("the reply consumer ended"),
            Err(_) if self.worker.is_finished() => {
                (&mut self.worker).await??;
                bail!("the worker stopped")
            }
            Err(_) => bail!("no reply within {WAIT:?}"),
        }
    }

    /// Stops the worker and deletes both streams, so the next run starts empty.
    async fn close(self) -> anyhow::Result<()> {
        self.worker.abort();
        for name in [REQ_STREAM, RESP_STREAM] {
            self.js
                .delete_stream(name)
                .await
                .with_context(|| format!("failed to delete stream {name}"))?;
        }
        Ok(())
    }
}

/// The echo worker: a durable pull consumer on `REQ` (ack policy "all"),
/// pulling up to [`BATCH`] at a time; it takes what has arrived (blocking for
/// the first), publishes every reply to `resp`, awaits their acks, then acks
/// the last request of the batch, which acks the whole batch.
async fn worker(url: String) -> anyhow::Result<()> {
    let client = async_nats::connect(url).await?;
    let js = jetstream::new(client);
    let requests = js
        .get_stream(REQ_STREAM)
        .await?
        .create_consumer(consumer::pull::Config {
            durable_name: Some("worker".into()),
            ack_policy: consumer::AckPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut batches = requests
        .stream()
        .max_messages_per_batch(BATCH)
        .messages()
        .await?
        .ready_chunks(BATCH);
    while let Some(batch) = batches.next().await {
        let mut acks = Vec::with_capacity(batch.len());
        let mut last = None;
        for request in batch {
            let request = request?;
            acks.push(js.publish(RESP, request.payload.clone()).await?);
            last = Some(request);
        }
        for ack in acks {
            ack.await?;
        }
        if let Some(last) = last {
            last.ack().await.map_err(|e| anyhow::anyhow!(e))?;
        }
    }
    Ok(())
}

/// The server's `/varz` monitoring document (version, JetStream config).
fn varz(monitor: u16) -> anyhow::Result<serde_json::Value> {
    let mut http = TcpStream::connect(("127.0.0.1", monitor))?;
    http.write_all(b"GET /varz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    http.read_to_string(&mut response)?;
    let (_, body) = response
        .split_once("\r\n\r\n")
        .context("no body in the /varz response")?;
    serde_json::from_str(body).context("failed to parse /varz")
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
