//! `{{...}}` placeholders in script bodies: `{{body.<field>}}`, `{{from}}`,
//! `{{id}}`, `{{case}}`, `{{type}}`, `{{agent}}`, `{{role}}`, `{{attempt}}`,
//! and after a `recall` step `{{recall}}` (the hits, best first) and
//! `{{recall.<n>.<field>}}` (`text`, `tags`, `id`, `score`, ...). A number in
//! a path indexes an array.
//! A string that is exactly one placeholder takes the value's JSON type.

use serde_json::Value;
use society_core::Envelope;

pub struct Vars<'a> {
    pub msg: &'a Envelope,
    pub ctx_agent: &'a str,
    pub role: &'a str,
    pub attempt: u32,
    /// The hits of the last `recall` step, once one ran.
    pub recall: Option<Value>,
}

impl Vars<'_> {
    pub fn render(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => {
                if let Some(name) = s.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
                    if !name.contains("{{") {
                        if let Some(val) = self.lookup(name.trim()) {
                            return val;
                        }
                    }
                }
                Value::String(self.render_str(s))
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.render(x)).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, x)| (k.clone(), self.render(x))).collect())
            }
            other => other.clone(),
        }
    }

    pub fn render_str(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find("}}") {
                Some(end) => {
                    let name = after[..end].trim();
                    match self.lookup(name) {
                        Some(Value::String(v)) => out.push_str(&v),
                        Some(v) => out.push_str(&v.to_string()),
                        None => out.push_str(&rest[start..start + 2 + end + 2]),
                    }
                    rest = &after[end + 2..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn lookup(&self, name: &str) -> Option<Value> {
        let m = self.msg;
        Some(match name {
            "from" => Value::String(m.from.to_string()),
            "id" => Value::String(m.id.to_string()),
            "case" => m
                .case
                .as_ref()
                .map(|c| Value::String(c.to_string()))
                .unwrap_or(Value::Null),
            "type" => Value::String(m.kind.clone()),
            "agent" => Value::String(self.ctx_agent.to_string()),
            "role" => Value::String(self.role.to_string()),
            "attempt" => Value::from(self.attempt),
            "body" => m.body.clone(),
            "recall" => self.recall.clone()?,
            _ => {
                let (root, path) = match name.split_once('.')? {
                    ("body", path) => (&m.body, path),
                    ("recall", path) => (self.recall.as_ref()?, path),
                    _ => return None,
                };
                path.split('.')
                    .try_fold(root, |v, k| match v {
                        Value::Array(a) => a.get(k.parse::<usize>().ok()?),
                        _ => v.get(k),
                    })?
                    .clone()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use society_core::Party;

    #[test]
    fn renders_placeholders() {
        let msg = Envelope::new(
            Party::Orchestrator,
            Party::Supervisor,
            "task",
            json!({"topic": "bees", "n": 3}),
        );
        let vars = Vars {
            msg: &msg,
            ctx_agent: "a1",
            role: "r",
            attempt: 2,
            recall: Some(json!([{"text": "bees sting", "tags": ["bees"]}])),
        };
        assert_eq!(vars.render_str("{{recall.0.text}}!"), "bees sting!");
        assert_eq!(vars.render(&json!("{{recall.0.tags}}")), json!(["bees"]));
        assert_eq!(vars.render_str("{{recall.1.text}}"), "{{recall.1.text}}");
        assert_eq!(vars.render(&json!("{{body.n}}")), json!(3));
        assert_eq!(
            vars.render(
                &json!({"t": "notes on {{body.topic}} by {{agent}} try {{attempt}} {{nope}}"})
            ),
            json!({"t": "notes on bees by a1 try 2 {{nope}}"})
        );
    }
}
