//! The body of a message from the orchestrator, for `send` and `broadcast`:
//! TEXT, `--json BODY`, or `--body-file FILE` (`-` for standard input) —
//! the last for bodies the kernel's argument limit would refuse.

use super::exit::{coded, Code};
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Body {
    /// Message text (becomes {"text": TEXT}).
    text: Option<String>,
    /// Message body as a JSON object instead of TEXT.
    #[arg(long, value_name = "BODY")]
    json: Option<String>,
    /// Read the JSON object body from FILE (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
}

impl Body {
    /// The body as a JSON object, from exactly one of the three sources.
    pub fn value(&self) -> anyhow::Result<Value> {
        let given = [
            self.text.is_some(),
            self.json.is_some(),
            self.body_file.is_some(),
        ];
        match given.iter().filter(|g| **g).count() {
            0 => {
                return Err(coded(
                    Code::Usage,
                    "nothing to send: give TEXT, --json BODY or --body-file FILE",
                ))
            }
            1 => {}
            _ => {
                return Err(coded(
                    Code::Usage,
                    "give one of TEXT, --json BODY and --body-file FILE, not several",
                ))
            }
        }
        if let Some(t) = &self.text {
            return Ok(serde_json::json!({ "text": t }));
        }
        let (what, text) = match (&self.json, &self.body_file) {
            (Some(j), _) => ("--json".to_string(), j.clone().into_bytes()),
            (None, Some(path)) => {
                // No agent takes a record over MAX_RECORD_LIMIT: read no
                // more than that (a body file of any size costs a bounded read).
                let limit = society_core::MAX_RECORD_LIMIT as u64;
                let mut text = Vec::new();
                let read = if path.as_os_str() == "-" {
                    std::io::stdin().take(limit + 1).read_to_end(&mut text)
                } else {
                    std::fs::File::open(path).and_then(|f| f.take(limit + 1).read_to_end(&mut text))
                };
                read.map_err(|e| {
                    coded(
                        Code::Invalid,
                        format!("cannot read --body-file {}: {e}", path.display()),
                    )
                })?;
                if text.len() as u64 > limit {
                    return Err(coded(
                        Code::Invalid,
                        format!(
                            "--body-file {} holds more than {limit} bytes, over any agent's max_record; nothing was sent (write the payload to a file in the agent's workspace/ and send its path)",
                            path.display()
                        ),
                    ));
                }
                (format!("--body-file {}", path.display()), text)
            }
            (None, None) => unreachable!("one source was given"),
        };
        let v: Value = serde_json::from_slice(&text)
            .map_err(|e| coded(Code::Invalid, format!("{what} is not valid JSON: {e}")))?;
        if !v.is_object() {
            return Err(coded(
                Code::Invalid,
                format!("{what} must hold a JSON object, e.g. {{\"text\":\"hi\"}}"),
            ));
        }
        Ok(v)
    }
}
