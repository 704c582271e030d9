//! Turns of a conversation scored with their neighbourhood.
//!
//! In an imported chat an answer is often split over a question and its
//! reply, or over several short turns ("Nope, Thursdays"). [`Sittings`]
//! knows, for every turn with an author (imported dialogue; notes typed to
//! mnemo have none and stand alone), its chat, date and speaker, and which
//! turns around it belong to the same sitting (consecutive turns at most
//! [`SITTING_GAP_MS`] apart). [`search`] scores a turn like BM25F over two
//! fields: its own words, and a window of up to [`RADIUS`] turns of its
//! sitting on **each** side (preceding and following), the window at a lower
//! weight (`window` ≤ 1, falling with the distance), so a turn's own words
//! count most. A reply that arrives later is part of the earlier turn's
//! window at once: the window is read at query time from this derived state.
//!
//! Speakers: a question naming a person of the chat ("What did Hannah say
//! about the boiler?") prefers turns *by* that person, see
//! [`Sittings::named_speakers`].

use std::collections::{BTreeMap, HashMap};

use super::lexical::{tokenize, top_k, LexicalIndex};
use super::recall::Weights;

/// Turns on each side of a turn that form its window.
pub const RADIUS: usize = 3;
/// Consecutive turns further apart than this belong to different sittings.
pub const SITTING_GAP_MS: i64 = 30 * 60_000;

#[derive(Debug, Clone, Copy)]
struct Turn {
    at: i64,
    speaker: u32,
}

/// The derived turn order of every conversation (notes with an author).
#[derive(Default)]
pub struct Sittings {
    chats: HashMap<i64, BTreeMap<u64, Turn>>,
    chat_of: HashMap<u64, i64>,
    /// Interned speakers: lower-cased name words.
    names: Vec<Vec<String>>,
    name_ids: HashMap<String, u32>,
    /// Speakers of each chat.
    speakers: HashMap<i64, Vec<u32>>,
}

impl Sittings {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.chat_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chat_of.is_empty()
    }

    /// Adds or replaces note `id`; a note without an author is no turn (and
    /// is dropped if it was one).
    pub fn insert(&mut self, id: u64, chat: i64, at: i64, author: Option<&str>) {
        self.remove(id);
        let Some(author) = author.map(str::trim).filter(|a| !a.is_empty()) else {
            return;
        };
        let key = author.to_lowercase();
        let speaker = match self.name_ids.get(&key) {
            Some(&s) => s,
            None => {
                let s = self.names.len() as u32;
                self.names.push(tokenize(&key).collect());
                self.name_ids.insert(key, s);
                s
            }
        };
        let of_chat = self.speakers.entry(chat).or_default();
        if !of_chat.contains(&speaker) {
            of_chat.push(speaker);
        }
        self.chats
            .entry(chat)
            .or_default()
            .insert(id, Turn { at, speaker });
        self.chat_of.insert(id, chat);
    }

    pub fn remove(&mut self, id: u64) {
        if let Some(chat) = self.chat_of.remove(&id) {
            if let Some(turns) = self.chats.get_mut(&chat) {
                turns.remove(&id);
            }
        }
    }

    /// The speaker of turn `id`.
    pub fn speaker_of(&self, id: u64) -> Option<u32> {
        let chat = self.chat_of.get(&id)?;
        Some(self.chats.get(chat)?.get(&id)?.speaker)
    }

    /// The speakers of `chat` (of every chat when `None`) that `query` names
    /// by one of their name words — but not when it names every speaker of
    /// the chat (then nobody is preferred).
    pub fn named_speakers(&self, chat: impl Into<super::Chats>, query: &str) -> Vec<u32> {
        let chat: super::Chats = chat.into();
        let words: Vec<String> = tokenize(query).collect();
        let names = |s: &u32| {
            self.names[*s as usize]
                .iter()
                .any(|n| n.chars().count() >= 2 && words.contains(n))
        };
        match chat.ids() {
            Some(cs) => {
                let mut all: Vec<u32> = cs
                    .iter()
                    .flat_map(|c| self.speakers.get(c).map_or(&[][..], Vec::as_slice))
                    .copied()
                    .collect();
                all.sort_unstable();
                all.dedup();
                let named: Vec<u32> = all.iter().copied().filter(names).collect();
                if named.len() == all.len() {
                    Vec::new()
                } else {
                    named
                }
            }
            None => (0..self.names.len() as u32).filter(names).collect(),
        }
    }

    /// The turns of `id`'s sitting within [`RADIUS`] of it on each side, with
    /// their distance in turns (1 = adjacent).
    pub fn neighbours(&self, id: u64) -> Vec<(u64, usize)> {
        self.neighbours_within(id, RADIUS)
    }

    /// The turns of `id`'s sitting within `radius` of it on each side, with
    /// their distance in turns.
    pub fn neighbours_within(&self, id: u64, radius: usize) -> Vec<(u64, usize)> {
        let mut out = Vec::new();
        let Some(turns) = self.chat_of.get(&id).and_then(|c| self.chats.get(c)) else {
            return out;
        };
        let Some(me) = turns.get(&id) else {
            return out;
        };
        // Ids are arrival order; a turn dated before the previous one (an
        // older export imported later) ends the sitting.
        let mut at = me.at;
        for (d, (&nid, t)) in turns.range(..id).rev().take(radius).enumerate() {
            if !(0..=SITTING_GAP_MS).contains(&(at - t.at)) {
                break;
            }
            at = t.at;
            out.push((nid, d + 1));
        }
        let mut at = me.at;
        for (d, (&nid, t)) in turns.range(id + 1..).take(radius).enumerate() {
            if !(0..=SITTING_GAP_MS).contains(&(t.at - at)) {
                break;
            }
            at = t.at;
            out.push((nid, d + 1));
        }
        out
    }
}

/// The best `k` notes for `query` (in `chat` when given), scored as BM25F
/// over the note's own words and its window (see the module doc): per query
/// term, `x = own + Σ weight·tf(neighbour)/distance` (each tf over its
/// note's length norm; weight `w.window` for the turns before, `w.window_after`
/// for those after), saturated as BM25 does. With both 0 — or for a note
/// that is no turn — it is the note's plain BM25.
pub fn search(
    lex: &LexicalIndex,
    turns: &Sittings,
    query: &str,
    chat: impl Into<super::Chats>,
    w: &Weights,
    k: usize,
) -> Vec<(u64, f32)> {
    let chat: super::Chats = chat.into();
    let p = w.bm25;
    let windowed = (w.window > 0.0 || w.window_after > 0.0) && !turns.is_empty();
    let mut scores: HashMap<u64, f32> = HashMap::new();
    for (idf, docs) in lex.term_postings(query, chat, p) {
        let mut x: HashMap<u64, f32> = HashMap::with_capacity(docs.len());
        for &(id, tf) in &docs {
            *x.entry(id).or_default() += tf;
            if windowed {
                for (nid, d) in turns.neighbours(id) {
                    // Ids are arrival order: `id` comes before `nid`, so it
                    // is in the part of `nid`'s window before it.
                    let weight = if nid > id { w.window } else { w.window_after };
                    if weight > 0.0 {
                        *x.entry(nid).or_default() += weight * tf / d as f32;
                    }
                }
            }
        }
        for (id, x) in x {
            *scores.entry(id).or_default() += idf * p.saturate(x);
        }
    }
    top_k(scores, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn win(window: f32) -> Weights {
        Weights {
            window,
            window_after: window,
            ..Weights::default()
        }
    }

    #[test]
    fn a_reply_is_found_through_the_question_before_it_and_own_words_win() {
        let mut lex = LexicalIndex::new();
        let mut s = Sittings::new();
        let turns = [
            (
                1,
                0,
                "Jana",
                "Ich hab mich für einen Spanischkurs angemeldet",
            ),
            (2, 1, "Malte", "Schön. Dienstags?"),
            (3, 2, "Jana", "Nope, Donnerstags"),
            // Another sitting, a day later.
            (4, 24 * 60, "Malte", "Wie war der Film?"),
        ];
        for (id, min, who, text) in turns {
            lex.insert(id, 7, &format!("{who}: {text}"));
            s.insert(id, 7, min * MIN, Some(who));
        }
        let plain = search(&lex, &s, "Spanischkurs", Some(7), &win(0.0), 10);
        assert_eq!(plain.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1]);
        let hits = search(&lex, &s, "Spanischkurs", Some(7), &win(0.5), 10);
        let ids: Vec<u64> = hits.iter().map(|h| h.0).collect();
        assert_eq!(ids, vec![1, 2, 3], "own words first, then by distance");
        assert!(hits[1].1 > hits[2].1);
        // Following turns count too: the question is found by its reply.
        let hits = search(&lex, &s, "Donnerstags", Some(7), &win(0.5), 10);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![3, 2, 1]);
        // Each side has its weight: without the following turns', the
        // question is not found by its reply's words.
        let before_only = Weights {
            window: 0.5,
            window_after: 0.0,
            ..Weights::default()
        };
        let hits = search(&lex, &s, "Donnerstags", Some(7), &before_only, 10);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![3]);
        let hits = search(&lex, &s, "Spanischkurs", Some(7), &before_only, 10);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(s.neighbours(4), vec![], "a pause ends the sitting");
        s.remove(2);
        assert_eq!(s.neighbours(1), vec![(3, 1)]);
    }

    #[test]
    fn named_speakers_only_when_not_everybody_is_named() {
        let mut s = Sittings::new();
        s.insert(1, 7, 0, Some("Hannah"));
        s.insert(2, 7, MIN, Some("Tom Baker"));
        s.insert(3, 8, MIN, Some("Ana"));
        let hannah = s.speaker_of(1).unwrap();
        assert_eq!(
            s.named_speakers(Some(7), "What did Hannah say?"),
            vec![hannah]
        );
        assert_eq!(
            s.named_speakers(Some(7), "did tom or hannah go"),
            Vec::<u32>::new()
        );
        assert_eq!(
            s.named_speakers(Some(7), "what about Ana"),
            Vec::<u32>::new()
        );
        s.insert(2, 7, MIN, None);
        assert_eq!(s.speaker_of(2), None, "no author, no turn");
    }
}
