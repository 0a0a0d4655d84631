//! Validated identifiers. Anything that crosses a crate boundary or comes from a
//! user is one of these newtypes, checked at construction, so a path built from
//! an id can never escape its folder.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a string was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("invalid agent id {0:?}: ids match [a-z0-9][a-z0-9-]{{0,62}} (lowercase letters, digits, '-'; no '/', '..' or spaces)")]
    Agent(String),
    #[error("invalid case id {0:?}: case ids match [a-z0-9][a-z0-9-]{{0,62}}")]
    Case(String),
    #[error("invalid message id {0:?}: message ids are 26-character ULIDs")]
    Msg(String),
    #[error("invalid party {0:?}: expected an agent id, role:<role>, supervisor or orchestrator, optionally followed by @<society>")]
    Party(String),
    #[error("invalid society name {0:?}: names match [a-z0-9][a-z0-9-]{{0,31}}")]
    Society(String),
}

fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

macro_rules! slug_id {
    ($name:ident, $err:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                if is_slug(&s) {
                    Ok(Self(s))
                } else {
                    Err(IdError::$err(s))
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_id!(AgentId, Agent, "An agent id: `[a-z0-9][a-z0-9-]{0,62}`.");
slug_id!(CaseId, Case, "A case id: `[a-z0-9][a-z0-9-]{0,62}`.");

impl CaseId {
    /// A fresh, time-ordered case id (`c-` + lowercase ULID).
    pub fn generate() -> CaseId {
        CaseId(format!(
            "c-{}",
            ulid::Ulid::new().to_string().to_ascii_lowercase()
        ))
    }
}

/// A message id: a ULID, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MsgId(ulid::Ulid);

impl MsgId {
    pub fn generate() -> MsgId {
        MsgId(ulid::Ulid::new())
    }

    /// The id of output number `index` produced while handling `input`.
    ///
    /// Deterministic: handling the same input again (after a crash) yields the
    /// same ids, which is what lets every reader drop the repeat. The timestamp
    /// part is the input's, so outputs sort next to their cause.
    pub fn derive(input: &MsgId, index: u32) -> MsgId {
        let mut seed = input.0 .0.to_le_bytes().to_vec();
        seed.extend_from_slice(&index.to_le_bytes());
        let hi = fnv1a64(&seed, 0xcbf2_9ce4_8422_2325);
        let lo = fnv1a64(&seed, 0x8422_2325_cbf2_9ce4);
        let random = ((u128::from(hi) << 64) | u128::from(lo)) & ((1u128 << 80) - 1);
        MsgId(ulid::Ulid::from_parts(input.0.timestamp_ms(), random))
    }

    pub fn timestamp_ms(&self) -> u64 {
        self.0.timestamp_ms()
    }
}

/// A hash that is stable across processes and Rust versions (FNV-1a), for
/// choices that must repeat identically after a restart (e.g. role routing).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    fnv1a64(bytes, 0xcbf2_9ce4_8422_2325)
}

/// FNV-1a: stable across Rust versions and processes, unlike `DefaultHasher`.
fn fnv1a64(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl TryFrom<String> for MsgId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}
impl From<MsgId> for String {
    fn from(id: MsgId) -> String {
        id.0.to_string()
    }
}
impl FromStr for MsgId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.len() != 26 {
            return Err(IdError::Msg(s.to_string()));
        }
        ulid::Ulid::from_string(s)
            .map(MsgId)
            .map_err(|_| IdError::Msg(s.to_string()))
    }
}
impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who sends or receives a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Party {
    Agent(AgentId),
    /// `role:<role>`: routed to one agent of that role.
    Role(String),
    Supervisor,
    Orchestrator,
    /// `<party>@<society>`: a party of another society, reached through the
    /// federation bridge. `party` is never itself remote.
    Remote {
        party: Box<Party>,
        society: SocietyName,
    },
}

impl Party {
    /// `self` in `society`, unless it names another society already.
    pub fn at(self, society: &SocietyName) -> Party {
        match self {
            Party::Remote { .. } => self,
            local => Party::Remote {
                party: Box::new(local),
                society: society.clone(),
            },
        }
    }

    /// The society a remote party lives in.
    pub fn society(&self) -> Option<&SocietyName> {
        match self {
            Party::Remote { society, .. } => Some(society),
            _ => None,
        }
    }

    /// The party within its own society (`agent-1@north` → `agent-1`).
    pub fn local(&self) -> &Party {
        match self {
            Party::Remote { party, .. } => party,
            local => local,
        }
    }
}

/// A society's name (`[society] name` in `society.toml`): the `@<name>` of
/// its parties as other societies address them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SocietyName(String);

impl SocietyName {
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        if is_slug(&s) && s.len() <= 32 {
            Ok(SocietyName(s))
        } else {
            Err(IdError::Society(s))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for SocietyName {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        SocietyName::new(s)
    }
}
impl From<SocietyName> for String {
    fn from(n: SocietyName) -> String {
        n.0
    }
}
impl fmt::Display for SocietyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Party {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if let Some((local, society)) = s.rsplit_once('@') {
            let party: Party = local.parse().map_err(|_| IdError::Party(s.to_string()))?;
            if matches!(party, Party::Remote { .. }) {
                return Err(IdError::Party(s.to_string()));
            }
            let society = SocietyName::new(society).map_err(|_| IdError::Party(s.to_string()))?;
            return Ok(party.at(&society));
        }
        match s {
            "supervisor" => Ok(Party::Supervisor),
            "orchestrator" => Ok(Party::Orchestrator),
            _ => {
                if let Some(role) = s.strip_prefix("role:") {
                    if is_slug(role) {
                        return Ok(Party::Role(role.to_string()));
                    }
                    return Err(IdError::Party(s.to_string()));
                }
                AgentId::new(s)
                    .map(Party::Agent)
                    .map_err(|_| IdError::Party(s.to_string()))
            }
        }
    }
}
impl TryFrom<String> for Party {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}
impl From<Party> for String {
    fn from(p: Party) -> String {
        p.to_string()
    }
}
impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Party::Agent(a) => write!(f, "{a}"),
            Party::Role(r) => write!(f, "role:{r}"),
            Party::Supervisor => f.write_str("supervisor"),
            Party::Orchestrator => f.write_str("orchestrator"),
            Party::Remote { party, society } => write!(f, "{party}@{society}"),
        }
    }
}

/// Role names follow the agent-id rule.
pub fn validate_role(role: &str) -> Result<(), IdError> {
    if is_slug(role) {
        Ok(())
    } else {
        Err(IdError::Party(format!("role:{role}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_are_validated() {
        for ok in ["a", "research-1", "0x", &"a".repeat(63)] {
            assert!(AgentId::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "A",
            "a/b",
            "..",
            "a b",
            "a.b",
            &"a".repeat(64),
            "é",
        ] {
            assert!(AgentId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_ids_are_deterministic_and_distinct() {
        let input = MsgId::generate();
        assert_eq!(MsgId::derive(&input, 0), MsgId::derive(&input, 0));
        assert_ne!(MsgId::derive(&input, 0), MsgId::derive(&input, 1));
        assert_ne!(MsgId::derive(&input, 0), input);
        assert_eq!(
            MsgId::derive(&input, 3).timestamp_ms(),
            input.timestamp_ms()
        );
    }

    #[test]
    fn parties_round_trip() {
        for s in ["supervisor", "orchestrator", "role:audio", "research-1"] {
            let p: Party = s.parse().expect("valid party");
            assert_eq!(p.to_string(), s);
        }
        assert!("role:".parse::<Party>().is_err());
        assert!("Bob".parse::<Party>().is_err());
    }

    #[test]
    fn remote_parties_round_trip() {
        for s in [
            "agent-1@north",
            "role:review@north",
            "orchestrator@south-2",
            "supervisor@a",
        ] {
            let p: Party = s.parse().expect("valid remote party");
            assert_eq!(p.to_string(), s);
            assert!(p.society().is_some(), "{s}");
        }
        let p: Party = "agent-1@north".parse().expect("valid");
        assert_eq!(
            p.local(),
            &Party::Agent(AgentId::new("agent-1").expect("id"))
        );
        for bad in [
            "a@",
            "@north",
            "a@North",
            "a@b@c",
            "role:@north",
            &format!("a@{}", "n".repeat(33)),
            "a@no rth",
        ] {
            assert!(bad.parse::<Party>().is_err(), "{bad}");
        }
    }
}
