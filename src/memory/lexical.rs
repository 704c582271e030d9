//! An in-memory BM25 index over note texts.
//!
//! Derived data: built from the store at start ([`LexicalIndex::rebuild`]) and
//! kept current by the core after each committed write. Nothing here is ever
//! the only copy of anything.
//!
//! Scoring is Okapi BM25; `k1` and `b` are given per query ([`Bm25`], from
//! the recall weights). Ties are broken by newer note
//! first, then by id, so results are deterministic.
//!
//! Analysis: Unicode words, lower-cased; English and German stop words
//! dropped; Snowball stemming. A note is stemmed in the language its stop
//! words suggest (German when it has more German than English stop words);
//! a query is stemmed both ways, so "Zahnärzte" finds "Zahnarzt" and "moved"
//! finds "moving" whichever language the user wrote in.

use std::borrow::Cow;
use std::sync::LazyLock;

// foldhash, not the standard SipHash: the tables below are hashed for every
// word of every note at start (SipHash was 15% of building the index).
// Seeded per process, and only allowlisted users' words reach them.
use foldhash::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

/// BM25's parameters: term-frequency saturation `k1` and length
/// normalisation `b`. Both apply at query time (a note's length is kept, the
/// norm is computed per query), so they are recall weights, not index state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bm25 {
    pub k1: f32,
    pub b: f32,
}

impl Default for Bm25 {
    fn default() -> Self {
        Bm25 { k1: 1.2, b: 0.4 }
    }
}

impl Bm25 {
    /// Saturation of a (length-normalised) term frequency `x`.
    pub(crate) fn saturate(self, x: f32) -> f32 {
        x * (self.k1 + 1.0) / (x + self.k1)
    }

    /// A note's length norm, `1 - b + b·len/avg`.
    fn norm(self, len: u32, avg: f32) -> f32 {
        1.0 - self.b + self.b * len as f32 / avg
    }
}

/// A note in the index. Notes live in slots (reused after removal);
/// postings name slots, so scoring reads a note's chat and length by index.
#[derive(Debug, Clone)]
struct Doc {
    id: u64,
    chat_id: i64,
    len: u32,
    /// The note's distinct term ids, so removing it touches only their
    /// postings (4 bytes a term, not a string).
    terms: Box<[u32]>,
}

/// Storage: one string per distinct term (the dictionary), postings as
/// plain arrays of (slot, term frequency) by term id, notes in slots — about
/// 8 bytes per posting and 40 per note, against ~40 per term and note for
/// per-note term strings and a map by note id (2.3× less at 1M notes, see
/// docs/BENCHMARKS.md).
#[derive(Default)]
pub struct LexicalIndex {
    /// Slot → note (`None`: free).
    docs: Vec<Option<Doc>>,
    free: Vec<u32>,
    /// Note id → slot.
    slot_of: HashMap<u64, u32>,
    /// Term → term id.
    dict: HashMap<Box<str>, u32>,
    /// A note's word → its term id, one table per stemmer (English,
    /// German): a word seen before is neither stemmed nor looked up as a
    /// term again (stemming was a quarter of building the index). Term ids
    /// are never reused, so an entry never goes stale.
    seen: [HashMap<Box<str>, u32>; 2],
    /// Term id → (slot, term frequency).
    postings: Vec<Vec<(u32, u32)>>,
    total_len: u64,
}

/// Lower-cased alphanumeric words of at least two characters (digits count,
/// so "3pm" and "2026" are searchable).
pub fn tokenize(text: &str) -> impl Iterator<Item = String> + '_ {
    raw_words(text).map(str::to_lowercase)
}

/// The words [`tokenize`] keeps, as written.
fn raw_words(text: &str) -> impl Iterator<Item = &str> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| {
        w.chars().count() >= 2 || w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty()
    })
}

// Snowball's English and German stop lists (English without the
// contractions' fragments; German with a few question words: wann, warum,
// wer, ja, mal, schon), as sets: they are looked up for every word indexed.
static STOP_EN: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    "\
    a about above after again against all am an and any are as at be because \
    been before being below between both but by can could did do does doing down \
    during each few for from further had has have having he her here hers \
    herself him himself his how i if in into is it its itself just me more most \
    my myself no nor not now of off on once only or other our ours ourselves out \
    over own same she should so some such than that the their theirs them \
    themselves then there these they this those through to too under until up \
    very was we were what when where which while who whom why will with would \
    you your yours yourself yourselves"
        .split_whitespace()
        .collect()
});
static STOP_DE: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    "\
    aber alle allem allen aller alles als also am an ander andere anderem \
    anderen anderer anderes anderm andern anderr anders auch auf aus bei bin bis \
    bist da damit dann das dass dasselbe dazu daß dein deine deinem deinen \
    deiner deines dem demselben den denn denselben der derer derselbe derselben \
    des desselben dessen dich die dies diese dieselbe dieselben diesem diesen \
    dieser dieses dir doch dort du durch ein eine einem einen einer eines einig \
    einige einigem einigen einiger einiges einmal er es etwas euch euer eure \
    eurem euren eurer eures für gegen gewesen hab habe haben hat hatte hatten \
    hier hin hinter ich ihm ihn ihnen ihr ihre ihrem ihren ihrer ihres im in \
    indem ins ist ja jede jedem jeden jeder jedes jene jenem jenen jener jenes \
    jetzt kann kein keine keinem keinen keiner keines können könnte mal man \
    manche manchem manchen mancher manches mein meine meinem meinen meiner \
    meines mich mir mit muss musste nach nicht nichts noch nun nur ob oder ohne \
    schon sehr sein seine seinem seinen seiner seines selbst sich sie sind so \
    solche solchem solchen solcher solches soll sollte sondern sonst um und uns \
    unser unsere unserem unseren unseres unter viel vom von vor wann war waren \
    warst warum was weg weil weiter welche welchem welchen welcher welches wenn \
    wer werde werden wie wieder will wir wird wirst wo wollen wollte während \
    würde würden zu zum zur zwar zwischen über"
        .split_whitespace()
        .collect()
});

static EN: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));
static DE: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::German));

static STEMMERS: [&LazyLock<Stemmer>; 2] = [&EN, &DE];

fn is_stop(w: &str) -> bool {
    STOP_EN.contains(w) || STOP_DE.contains(w)
}

/// [`tokenize`] without a new string for a word already in lower case.
fn doc_words(text: &str) -> Vec<Cow<'_, str>> {
    raw_words(text)
        .map(|w| {
            if w.chars().any(char::is_uppercase) {
                Cow::Owned(w.to_lowercase())
            } else {
                Cow::Borrowed(w)
            }
        })
        .collect()
}

/// The stemmer of a note's words ([`STEMMERS`]): German (1) when it has
/// more German than English stop words, else English (0).
fn doc_language(words: &[Cow<'_, str>]) -> usize {
    let en = words
        .iter()
        .filter(|w| STOP_EN.contains(w.as_ref()))
        .count();
    let de = words
        .iter()
        .filter(|w| STOP_DE.contains(w.as_ref()))
        .count();
    usize::from(de > en)
}

/// Index terms of a note.
pub fn analyze_doc(text: &str) -> Vec<String> {
    let words = doc_words(text);
    let stemmer = STEMMERS[doc_language(&words)];
    words
        .iter()
        .filter(|w| !is_stop(w))
        .map(|w| stemmer.stem(w).into_owned())
        .collect()
}

/// Query terms: each word stemmed as English and as German.
pub fn analyze_query(text: &str) -> Vec<String> {
    let mut out: Vec<String> = tokenize(text)
        .filter(|w| !is_stop(w))
        .flat_map(|w| [EN.stem(&w).into_owned(), DE.stem(&w).into_owned()])
        .collect();
    out.sort();
    out.dedup();
    out
}

impl LexicalIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the index from every note in the store.
    pub fn rebuild(store: &Store) -> Result<Self, StoreError> {
        let mut idx = Self::new();
        store.for_each_memory(|n| idx.insert(n.id, n.chat_id, &n.indexed_text()))?;
        Ok(idx)
    }

    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    fn postings_of(&self, term: &str) -> &[(u32, u32)] {
        self.dict
            .get(term)
            .map_or(&[][..], |&t| &self.postings[t as usize])
    }

    fn doc(&self, slot: u32) -> Option<&Doc> {
        self.docs[slot as usize].as_ref()
    }

    /// Adds or replaces the text of note `id`.
    pub fn insert(&mut self, id: u64, chat_id: i64, text: &str) {
        self.remove(id);
        let words = doc_words(text);
        let lang = doc_language(&words);
        // The note's term ids, sorted: runs of one id are its frequency.
        let mut ids: Vec<u32> = words
            .iter()
            .filter(|w| !is_stop(w))
            .map(|w| self.term_id(lang, w))
            .collect();
        let len = ids.len() as u32;
        ids.sort_unstable();
        let slot = self.free.pop().unwrap_or_else(|| {
            self.docs.push(None);
            (self.docs.len() - 1) as u32
        });
        let mut terms = Vec::new();
        for run in ids.chunk_by(|a, b| a == b) {
            let t = run[0];
            self.postings[t as usize].push((slot, run.len() as u32));
            terms.push(t);
        }
        self.docs[slot as usize] = Some(Doc {
            id,
            chat_id,
            len,
            terms: terms.into_boxed_slice(),
        });
        self.slot_of.insert(id, slot);
        self.total_len += u64::from(len);
    }

    /// The term id of a note's `word` stemmed by `STEMMERS[lang]`, made
    /// when new.
    fn term_id(&mut self, lang: usize, word: &str) -> u32 {
        if let Some(&t) = self.seen[lang].get(word) {
            return t;
        }
        let term = STEMMERS[lang].stem(word);
        let t = match self.dict.get(&*term) {
            Some(&t) => t,
            None => {
                let t = self.postings.len() as u32;
                self.dict.insert(term.into_owned().into_boxed_str(), t);
                self.postings.push(Vec::new());
                t
            }
        };
        self.seen[lang].insert(word.into(), t);
        t
    }

    pub fn remove(&mut self, id: u64) {
        let Some(slot) = self.slot_of.remove(&id) else {
            return;
        };
        let Some(doc) = self.docs[slot as usize].take() else {
            return;
        };
        self.free.push(slot);
        self.total_len -= u64::from(doc.len);
        for &t in doc.terms.iter() {
            let list = &mut self.postings[t as usize];
            list.retain(|(s, _)| *s != slot);
            if list.is_empty() {
                // The term id stays in the dictionary (df 0), for reuse.
                *list = Vec::new();
            }
        }
    }

    /// Bytes held on the heap (capacities; hash tables and strings
    /// estimated), for the memory breakdown in the benches.
    pub fn heap_bytes(&self) -> usize {
        let docs: usize = self.docs.iter().flatten().map(|d| d.terms.len() * 4).sum();
        let dict: usize = self.dict.keys().map(|k| k.len() + 16).sum();
        let seen: usize = self
            .seen
            .iter()
            .map(|m| m.capacity() * (16 + 4 + 1) + m.keys().map(|k| k.len()).sum::<usize>())
            .sum();
        let postings: usize = self.postings.iter().map(|p| p.capacity() * 8 + 24).sum();
        self.docs.capacity() * std::mem::size_of::<Option<Doc>>()
            + docs
            + self.free.capacity() * 4
            + self.slot_of.capacity() * (8 + 4 + 1)
            + self.dict.capacity() * (16 + 4 + 1)
            + dict
            + seen
            + postings
    }

    /// How much a note could score for `query`: the sum of the query terms'
    /// idf (terms absent from the index count with the highest idf). A note's
    /// BM25 divided by this is the share of the query it matches, in [0, ~1]
    /// — unlike min-max over candidates, a lone weak match stays small.
    pub fn query_weight(&self, query: &str) -> f32 {
        let n = self.len() as f32;
        analyze_query(query)
            .iter()
            .map(|t| {
                let df = self.postings_of(t).len() as f32;
                ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
            })
            .sum::<f32>()
            // A query is stemmed two ways, so each word contributes up to two terms.
            .max(1e-6)
    }

    /// The query's terms found in the index (term ids), with their idf.
    pub fn query_terms(&self, query: &str) -> Vec<(u32, f32)> {
        let n = self.len() as f32;
        analyze_query(query)
            .into_iter()
            .filter_map(|t| {
                let id = *self.dict.get(t.as_str())?;
                let df = self.postings[id as usize].len() as f32;
                (df > 0.0).then(|| (id, ((n - df + 0.5) / (df + 0.5) + 1.0).ln()))
            })
            .collect()
    }

    /// Whether note `id` has the term `term` (an id from [`Self::query_terms`]).
    pub fn has_term(&self, id: u64, term: u32) -> bool {
        self.slot_of
            .get(&id)
            .and_then(|&slot| self.doc(slot))
            .is_some_and(|d| d.terms.contains(&term))
    }

    /// Each query term's postings, for scorers built on this index (the
    /// turn windows of [`super::window`]): the term's idf and, for every
    /// note that has it (in `chat` when given), its term frequency over the
    /// note's length norm, `tf / (1 - b + b·len/avg)` — BM25's saturation
    /// `x·(k1 + 1) / (x + k1)` of that value is the note's score for the term.
    pub fn term_postings(
        &self,
        query: &str,
        chat: impl Into<super::Chats>,
        p: Bm25,
    ) -> Vec<(f32, Vec<(u64, f32)>)> {
        let chat: super::Chats = chat.into();
        if self.is_empty() {
            return Vec::new();
        }
        let n = self.len() as f32;
        let avg = (self.total_len as f32 / n).max(1.0);
        analyze_query(query)
            .iter()
            .filter_map(|term| {
                let list = self.postings_of(term);
                if list.is_empty() {
                    return None;
                }
                let df = list.len() as f32;
                let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                let docs = list
                    .iter()
                    .filter_map(|&(slot, tf)| {
                        let doc = self.doc(slot)?;
                        if !chat.admits(doc.chat_id) {
                            return None;
                        }
                        Some((doc.id, tf as f32 / p.norm(doc.len, avg)))
                    })
                    .collect();
                Some((idf, docs))
            })
            .collect()
    }

    /// The best `k` notes for `query`, restricted to `chat` when given, as
    /// (note id, score) with the highest score first.
    pub fn search(
        &self,
        query: &str,
        chat: impl Into<super::Chats>,
        k: usize,
        p: Bm25,
    ) -> Vec<(u64, f32)> {
        let chat: super::Chats = chat.into();
        if self.is_empty() || k == 0 {
            return Vec::new();
        }
        let n = self.len() as f32;
        let avg = (self.total_len as f32 / n).max(1.0);
        let terms = analyze_query(query);
        // Scores by slot: a dense array (zeroed pages cost nothing until
        // touched) instead of a hash map entry per matching note.
        let mut scores = vec![0f32; self.docs.len()];
        let mut touched: Vec<u32> = Vec::new();
        for term in &terms {
            let list = self.postings_of(term);
            if list.is_empty() {
                continue;
            }
            let df = list.len() as f32;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for &(slot, tf) in list {
                let Some(doc) = self.doc(slot) else {
                    continue;
                };
                if !chat.admits(doc.chat_id) {
                    continue;
                }
                let s = &mut scores[slot as usize];
                if *s == 0.0 {
                    touched.push(slot);
                }
                *s += idf * p.saturate(tf as f32 / p.norm(doc.len, avg));
            }
        }
        let mut hits: Vec<(u64, f32)> = touched
            .into_iter()
            .filter_map(|slot| Some((self.doc(slot)?.id, scores[slot as usize])))
            .collect();
        let by = |a: &(u64, f32), b: &(u64, f32)| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0));
        if hits.len() > k {
            hits.select_nth_unstable_by(k - 1, by);
            hits.truncate(k);
        }
        hits.sort_by(by);
        hits
    }
}

/// The `k` best of `scores`, highest first; ties by newer (higher) id.
pub(crate) fn top_k(scores: impl IntoIterator<Item = (u64, f32)>, k: usize) -> Vec<(u64, f32)> {
    let mut hits: Vec<(u64, f32)> = scores.into_iter().collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
    hits.truncate(k);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index's terms (through the per-word cache, repeated words,
    /// mixed case, both languages) are the terms and counts `analyze_doc`
    /// gives.
    #[test]
    fn cached_terms_are_the_analysed_terms() {
        let texts = [
            "Moving the Moving boxes; moved them to the garage",
            "Ich habe die Zahnärzte angerufen, der Zahnarzt kommt morgen",
            "MOVING again: 3pm, 2026, moving",
            "die Kisten und die Umzüge, moving und moved",
        ];
        let mut idx = LexicalIndex::new();
        for (i, t) in texts.iter().enumerate() {
            idx.insert(i as u64 + 1, 1, t);
        }
        for (i, t) in texts.iter().enumerate() {
            let slot = idx.slot_of[&(i as u64 + 1)];
            let mut want: Vec<String> = analyze_doc(t);
            assert_eq!(idx.doc(slot).unwrap().len as usize, want.len(), "{t}");
            want.sort();
            for run in want.chunk_by(|a, b| a == b) {
                let tf = idx
                    .postings_of(&run[0])
                    .iter()
                    .find(|(s, _)| *s == slot)
                    .map(|p| p.1);
                assert_eq!(tf, Some(run.len() as u32), "{t}: {}", run[0]);
            }
            assert_eq!(
                idx.doc(slot).unwrap().terms.len(),
                want.chunk_by(|a, b| a == b).count()
            );
        }
    }

    #[test]
    fn finds_by_words_and_respects_chat() {
        let mut idx = LexicalIndex::new();
        idx.insert(1, 10, "Dentist appointment moved to Friday 3pm");
        idx.insert(2, 10, "Buy milk and eggs");
        idx.insert(3, 20, "dentist bill paid");
        let hits = idx.search("when is the DENTIST", Some(10), 5, Bm25::default());
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1]);
        let all = idx.search("dentist", None, 5, Bm25::default());
        assert_eq!(all.len(), 2);
        idx.remove(1);
        assert!(idx
            .search("dentist", Some(10), 5, Bm25::default())
            .is_empty());
        idx.insert(2, 10, "buy bread");
        assert!(idx.search("milk", None, 5, Bm25::default()).is_empty());
        assert_eq!(idx.search("bread", None, 5, Bm25::default())[0].0, 2);
    }

    #[test]
    fn rarer_terms_weigh_more_and_ties_are_deterministic() {
        let mut idx = LexicalIndex::new();
        for id in 1..=10 {
            idx.insert(id, 1, "common words here");
        }
        idx.insert(11, 1, "common rare");
        let hits = idx.search("common rare", None, 3, Bm25::default());
        assert_eq!(hits[0].0, 11);
        // Equal scores: newer (higher id) first.
        assert_eq!(hits[1].0, 10);
        assert_eq!(hits[2].0, 9);
    }

    #[test]
    fn stemming_and_stop_words_in_both_languages() {
        let mut idx = LexicalIndex::new();
        idx.insert(1, 1, "Der Zahnarzt hat den Termin verschoben");
        idx.insert(2, 1, "The meeting was moved to Thursday");
        idx.insert(3, 1, "the and of");
        assert_eq!(
            idx.search("Zahnarztes Termine", None, 5, Bm25::default())[0].0,
            1
        );
        assert_eq!(
            idx.search("meetings moving", None, 5, Bm25::default())[0].0,
            2
        );
        assert!(
            idx.search("the", None, 5, Bm25::default()).is_empty(),
            "stop words alone match nothing"
        );
    }

    #[test]
    fn reused_slots_score_as_a_fresh_index() {
        let words = [
            "dentist", "milk", "friday", "trip", "berlin", "course", "bread",
        ];
        let text = |i: u64| -> String {
            (0..3 + i % 4)
                .map(|j| words[((i * 7 + j * 3) % words.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut churned = LexicalIndex::new();
        for id in 1..=60 {
            churned.insert(id, (id % 3) as i64, &text(id));
        }
        for id in (1..=60).step_by(4) {
            churned.remove(id);
        }
        for id in (2..=60).step_by(5) {
            churned.insert(id, (id % 3) as i64, &text(id + 100));
        }
        let mut fresh = LexicalIndex::new();
        for id in 1..=60u64 {
            let replaced = id % 5 == 2;
            if id % 4 == 1 && !replaced {
                continue;
            }
            let t = if replaced { text(id + 100) } else { text(id) };
            fresh.insert(id, (id % 3) as i64, &t);
        }
        assert_eq!(churned.len(), fresh.len());
        for q in ["dentist trip", "milk", "berlin course bread", "nothing"] {
            for chat in [None, Some(1)] {
                assert_eq!(
                    churned.search(q, chat, 10, Bm25::default()),
                    fresh.search(q, chat, 10, Bm25::default()),
                    "{q}"
                );
                assert_eq!(churned.query_weight(q), fresh.query_weight(q));
                let sorted = |mut p: Vec<(f32, Vec<(u64, f32)>)>| {
                    p.iter_mut().for_each(|(_, d)| d.sort_by_key(|x| x.0));
                    p
                };
                assert_eq!(
                    sorted(churned.term_postings(q, chat, Bm25::default())),
                    sorted(fresh.term_postings(q, chat, Bm25::default())),
                    "{q}"
                );
            }
        }
    }

    #[test]
    fn tokenizer_handles_unicode_and_numbers() {
        let t: Vec<String> = tokenize("Größe: 3 Äpfel, e-mail 2026!").collect();
        assert_eq!(t, vec!["größe", "3", "äpfel", "mail", "2026"]);
    }
}
