//! `echo`: reply to the sender with the same body. For tests and benchmarks.

use crate::{Action, Brain, BrainError, Context};
use society_core::Envelope;

pub struct Echo;

impl Brain for Echo {
    fn handle(
        &mut self,
        _ctx: &mut Context<'_>,
        msg: &Envelope,
    ) -> Result<Vec<Action>, BrainError> {
        Ok(vec![Action::Reply {
            kind: society_core::kinds::message::REPLY.into(),
            body: msg.body.clone(),
        }])
    }
}
