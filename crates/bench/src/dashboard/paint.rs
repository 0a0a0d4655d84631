//! D1 first paint: `/agents` loaded afresh, timed by the page itself.

use super::from_ms;
use crate::browser::Browser;
use crate::stats::{summarize, Summary};
use anyhow::Context;
use serde_json::json;

pub struct Paint {
    /// First-contentful-paint (the page's header and "loading…").
    pub fcp: Summary,
    /// The table with every row (`view-ready`).
    pub table: Summary,
    /// When the page asked for `/api/status` (its resource timing `startTime`).
    pub api_sent: Summary,
    /// How long `/api/status` took, request to last byte (`duration`).
    pub api_took: Summary,
}

/// Resolves once the view is ready, first-contentful-paint is reported and
/// the event stream is open. It looks every 10 ms, which delays only the
/// answer: the figures are the page's own marks.
const READY: &str = r#"
const done = arguments[arguments.length - 1];
const limit = performance.now() + arguments[0];
function check() {
  const ready = performance.getEntriesByName('view-ready')[0];
  const fcp = performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint');
  const live = document.getElementById('live');
  if (ready && fcp && document.body.dataset.ready === 'agents' && live.dataset.state === 'open') {
    const api = performance.getEntriesByType('resource').find((e) => new URL(e.name).pathname === '/api/status');
    return done({ready: ready.startTime, fcp: fcp.startTime, api_sent: api ? api.startTime : null, api_took: api ? api.duration : null,
      rows: document.querySelectorAll('table#agents tbody tr').length});
  }
  if (performance.now() > limit) {
    return done({error: `not ready: data-ready=${document.body.dataset.ready} mark=${!!ready} fcp=${!!fcp} live=${live.dataset.state}`});
  }
  setTimeout(check, 10);
}
check();
"#;

/// Loads `/agents` until it shows `agents` rows; fcp, view-ready and
/// `/api/status` asked for (ms from navigation start), `/api/status`'s
/// duration (ms).
pub async fn load(b: &Browser, base: &str, agents: usize) -> anyhow::Result<[f64; 4]> {
    b.client.goto("about:blank").await?;
    b.client.goto(&format!("{base}agents")).await?;
    let v = b.wait(READY, vec![json!(30_000)]).await?;
    if let Some(e) = v.get("error") {
        anyhow::bail!("{e}");
    }
    let rows = v["rows"].as_u64().unwrap_or(0);
    anyhow::ensure!(
        rows == agents as u64,
        "the table shows {rows} rows, not {agents}"
    );
    let at = |k: &str| v[k].as_f64().with_context(|| format!("no {k} time"));
    Ok([at("fcp")?, at("ready")?, at("api_sent")?, at("api_took")?])
}

pub async fn first_paint(
    b: &Browser,
    base: &str,
    agents: usize,
    loads: usize,
) -> anyhow::Result<Paint> {
    load(b, base, agents).await?; // warm-up: the browser's first page
    let mut fcp = Vec::new();
    let mut table = Vec::new();
    let mut sent = Vec::new();
    let mut took = Vec::new();
    for _ in 0..loads {
        let [f, t, s, d] = load(b, base, agents).await?;
        fcp.push(from_ms(f));
        table.push(from_ms(t));
        sent.push(from_ms(s));
        took.push(from_ms(d));
    }
    Ok(Paint {
        fcp: summarize(fcp),
        table: summarize(table),
        api_sent: summarize(sent),
        api_took: summarize(took),
    })
}
