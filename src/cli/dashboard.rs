//! `society dashboard [--listen ADDR] [--open]`: a web page over the
//! society's files. It reads what `status`, `describe`, `case`, `approvals`,
//! `costs` and `metrics` read and writes what `approve`, `reject`, `send`,
//! `case new|close`, `stop`, `restart` and `unblock` write, through the same
//! client functions — no second source of truth, no database. It works with
//! the supervisor up or down, and across its restarts.
//!
//! Live updates are server-sent events driven by file watching (`live.rs`);
//! the page (`assets/`, compiled in) fetches a view's JSON once and then
//! changes only what an event names. Security (`auth.rs`): loopback only by
//! default, a token for any other address, a CSRF token on every action.

use super::exit::{coded_hint, Code};
use anyhow::Context;
use society_core::Layout;
use std::net::SocketAddr;

mod actions;
mod api;
mod auth;
mod live;
mod server;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on. Anything but a loopback address requires the
    /// token (generated into .society-agent/dashboard/token, mode 0600).
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    listen: SocketAddr,
    /// Open the page in the default browser (xdg-open) once it listens.
    #[arg(long)]
    open: bool,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let token = if args.listen.ip().is_loopback() {
        None
    } else {
        Some(auth::Token::load_or_create(layout)?)
    };
    let listener = std::net::TcpListener::bind(args.listen).map_err(|e| {
        coded_hint(
            Code::Error,
            format!("cannot listen on {}: {e}", args.listen),
            "choose another address with --listen (port 0 picks a free one)",
        )
    })?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let mut url = format!("http://{addr}/");
    match &token {
        Some(t) if t.created => url.push_str(&format!("?token={}", t.value)),
        _ => {}
    }
    outln!("society dashboard: {url}");
    if let Some(t) = &token {
        if t.created {
            outln!(
                "token: created in {} (shown once; every request needs it)",
                t.path.display()
            );
        } else {
            outln!("token: in {}", t.path.display());
        }
    }
    if args.open {
        open_browser(&url);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the dashboard's runtime")?;
    runtime.block_on(server::serve(
        layout.clone(),
        listener,
        token.map(|t| t.value),
    ))?;
    Ok(Code::Ok)
}

/// `--open`: the desktop's browser, if there is one to ask.
fn open_browser(url: &str) {
    let opened = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = opened {
        super::render::warn(&[format!(
            "--open: could not run xdg-open ({e}); open {url} yourself"
        )]);
    }
}
