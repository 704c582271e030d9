//! The optional LLM step of a digest: the period's notes handed to
//! [`crate::llm`] (flagged as the extractive sections found them), and its
//! outcome written back into the digest. Whatever happens, the extractive
//! sections stay: the summary is added on top, or the digest says why
//! there is none (the service was unavailable, today's budget is used up).

use super::{Digest, Summary};
use crate::llm;
use crate::store::{Store, StoreError};

/// The request for `d`'s notes, in `lang`.
pub fn request(store: &Store, d: &Digest, lang: &str) -> Result<llm::Request, StoreError> {
    use std::collections::HashSet;
    let s = &d.sections;
    let ids = |v: &mut dyn Iterator<Item = u64>| v.collect::<HashSet<u64>>();
    let priorities = ids(&mut s.priorities.iter().map(|e| e.note_id));
    let decisions = ids(&mut s.decisions.iter().map(|e| e.note_id));
    let todos = ids(&mut s.todos.iter().map(|t| t.note_id));
    let mut notes = Vec::with_capacity(d.note_ids.len());
    for &id in &d.note_ids {
        let Some(n) = store.note(id)? else { continue };
        notes.push(llm::SourceNote {
            id,
            at_ms: n.created_at,
            text: n.text,
            priority: priorities.contains(&id),
            decision: decisions.contains(&id),
            todo: todos.contains(&id),
            score: 0,
        });
    }
    Ok(llm::Request {
        chat_id: d.chat_id,
        period: d.period.as_str().into(),
        from_ms: d.from,
        to_ms: d.to,
        lang: lang.into(),
        notes,
    })
}

/// Writes the LLM's outcome into `d`.
pub fn apply(d: &mut Digest, out: llm::Outcome) {
    match out {
        llm::Outcome::Summary(s) => {
            d.summary = Some(Summary::Text { text: s.text });
            d.source = s.source;
            d.tokens.input = s.tokens.input;
            d.tokens.output = s.tokens.output;
            d.cost_usd = s.cost_usd;
        }
        llm::Outcome::Unavailable { reason } => {
            tracing::warn!(chat_id = d.chat_id, %reason, "no LLM summary; the digest goes out extractive");
            d.summary = Some(Summary::Unavailable { reason });
        }
        llm::Outcome::LimitReached => d.summary = Some(Summary::LimitReached),
        llm::Outcome::Off => {}
    }
}
