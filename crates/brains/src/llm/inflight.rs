//! `agent-<id>/llm-call.json`: the model call in flight, written (atomically)
//! before the request goes out and removed when it ends, whatever the outcome.
//!
//! A process killed mid-call leaves the file behind. The next process
//! handling a message finds it and records the call as an `unknown_cost`
//! (the provider may have billed it: nobody will see the answer), once:
//! the record carries the marker's `call` id, and a marker whose id is
//! already in the ledger is only removed.

use super::error::LlmError;
use super::ledger::{self, Ledger};
use serde_json::{json, Value};
use society_core::kinds::ledger::UNKNOWN_COST;
use std::path::{Path, PathBuf};

const FILE: &str = "llm-call.json";

fn path(folder: &Path) -> PathBuf {
    folder.join(FILE)
}

/// Marks a call as in flight: `fields` are what its `unknown_cost` record
/// would say (`provider, model, request_bytes, case, id, step`); a fresh
/// `call` id is added. Not fsynced: what it guards against is a killed
/// process, not a lost machine.
pub fn begin(folder: &Path, mut fields: Value) -> Result<Value, LlmError> {
    fields["call"] = json!(society_core::MsgId::generate().to_string());
    society_core::atomic::write_json(&path(folder), &fields, false).map_err(|source| {
        LlmError::Ledger {
            path: path(folder),
            source,
        }
    })?;
    Ok(fields)
}

/// The call ended (answered, failed, or given up and recorded already).
pub fn end(folder: &Path) {
    if let Err(e) = std::fs::remove_file(path(folder)) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(error = %e, "failed to remove {FILE}");
        }
    }
}

/// Records a call left in flight by a process that died, then forgets it.
/// True if a record was written.
pub fn recover(folder: &Path, ledger: &Ledger) -> Result<bool, LlmError> {
    let p = path(folder);
    let Ok(bytes) = std::fs::read(&p) else {
        return Ok(false);
    };
    let written = match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut fields) if fields.is_object() => {
            let call = fields["call"].clone();
            let known = ledger::records(ledger.path())?
                .iter()
                .any(|r| r["event"] == UNKNOWN_COST && r["call"] == call);
            if !known {
                fields["reason"] =
                    json!("the agent process ended while the call was in flight (killed?)");
                ledger.append(UNKNOWN_COST, fields)?;
            }
            !known
        }
        // Torn or foreign: nothing reliable to record.
        _ => false,
    };
    end(folder);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_left_marker_is_recorded_once_even_if_recovery_is_interrupted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::new(dir.path(), "a", 2);
        assert!(!recover(dir.path(), &ledger).expect("nothing to recover"));
        let marker = begin(dir.path(), json!({"request_bytes": 42, "step": 1})).expect("begin");
        let left = std::fs::read(path(dir.path())).expect("marker");
        assert!(recover(dir.path(), &ledger).expect("recover"));
        assert!(!path(dir.path()).exists());
        // Killed after the record, before the marker was removed.
        std::fs::write(path(dir.path()), &left).expect("put it back");
        assert!(!recover(dir.path(), &ledger).expect("recover again"));
        let recs = ledger::records(ledger.path()).expect("records");
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0]["call"], marker["call"]);
        assert_eq!(recs[0]["request_bytes"], 42);
        // A torn marker is dropped, not recorded.
        std::fs::write(path(dir.path()), b"{\"call\":").expect("torn");
        assert!(!recover(dir.path(), &ledger).expect("torn"));
        assert!(!path(dir.path()).exists());
        // A call that ends normally leaves nothing.
        begin(dir.path(), json!({})).expect("begin");
        end(dir.path());
        assert!(!recover(dir.path(), &ledger).expect("ended"));
    }
}
