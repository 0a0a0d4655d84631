//! Log records (`activity.jsonl`, `system-events.jsonl`): one JSON object per
//! line with `ts`, `event`, `agent`, `gen` and the event's own fields. Field
//! names are an interface: people grep them.

use serde_json::{Map, Value};
use society_core::jsonl::{Appender, Durability};
use society_core::{FormatError, IoError};
use std::path::Path;

/// Builds one log record.
pub fn record(event: &str, agent: &str, gen: u64, fields: Value) -> Vec<u8> {
    let mut obj = Map::new();
    obj.insert(
        "ts".into(),
        Value::String(society_core::time::now_rfc3339()),
    );
    obj.insert("event".into(), Value::String(event.into()));
    obj.insert("agent".into(), Value::String(agent.into()));
    obj.insert("gen".into(), Value::from(gen));
    if let Value::Object(extra) = fields {
        obj.extend(extra);
    }
    serde_json::to_vec(&Value::Object(obj)).expect("a JSON map always serialises")
}

/// An append-only log owned by one process.
pub struct Log {
    appender: Appender,
    agent: String,
    gen: u64,
}

impl Log {
    pub fn open(path: &Path, agent: &str, gen: u64) -> Result<Log, IoError> {
        Ok(Log {
            appender: Appender::open(path, Durability::Flushed, society_core::DEFAULT_MAX_RECORD)?,
            agent: agent.to_string(),
            gen,
        })
    }

    pub fn set_gen(&mut self, gen: u64) {
        self.gen = gen;
    }

    /// Appends an event. Logging must never take the process down, so a
    /// failure is reported through tracing and otherwise ignored — but an
    /// event over `max_record` leaves a short `record_refused` in its place.
    pub fn event(&mut self, event: &str, fields: Value) {
        if let Err(e) = self.try_event(event, fields) {
            tracing::error!(error = %e, event, "failed to write log record");
            self.refused(event, &e);
        }
    }

    /// Says in the log that the record of `event` was refused as too large.
    fn refused(&mut self, event: &str, err: &FormatError) {
        if let FormatError::RecordTooLarge { size, max, .. } = err {
            let fields = serde_json::json!({"refused": event, "bytes": size, "max": max});
            let _ = self.try_event(society_core::kinds::event::RECORD_REFUSED, fields);
        }
    }

    /// Appends several events with one write (a group-committed batch's).
    pub fn events(&mut self, events: Vec<(&str, Value)>) {
        if events.is_empty() {
            return;
        }
        let names: Vec<&str> = events.iter().map(|(e, _)| *e).collect();
        let records: Vec<Vec<u8>> = events
            .into_iter()
            .map(|(event, fields)| record(event, &self.agent, self.gen, fields))
            .collect();
        if let Err(e) = self.appender.append_batch(&records) {
            tracing::error!(error = %e, records = records.len(), "failed to write log records");
            if let FormatError::RecordTooLarge { .. } = e {
                // One record spoilt the batch: write the others one by one.
                for (event, rec) in names.iter().zip(&records) {
                    if let Err(e) = self.appender.append(rec) {
                        self.refused(event, &e);
                    }
                }
            }
        }
    }

    pub fn try_event(&mut self, event: &str, fields: Value) -> Result<(), FormatError> {
        let rec = record(event, &self.agent, self.gen, fields);
        self.appender.append(&rec).map(drop)
    }
}
