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

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

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

#[derive(Debug, Clone)]
struct Doc {
    chat_id: i64,
    len: u32,
    /// The note's distinct terms, so removing it touches only their postings.
    terms: Vec<String>,
}

#[derive(Default)]
pub struct LexicalIndex {
    docs: HashMap<u64, Doc>,
    /// term → (note id, term frequency)
    postings: HashMap<String, Vec<(u64, u32)>>,
    total_len: u64,
}

/// Lower-cased alphanumeric words of at least two characters (digits count,
/// so "3pm" and "2026" are searchable).
pub fn tokenize(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| {
            w.chars().count() >= 2 || w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty()
        })
        .map(str::to_lowercase)
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

fn is_stop(w: &str) -> bool {
    STOP_EN.contains(w) || STOP_DE.contains(w)
}

/// Index terms of a note.
pub fn analyze_doc(text: &str) -> Vec<String> {
    let words: Vec<String> = tokenize(text).collect();
    let en = words
        .iter()
        .filter(|w| STOP_EN.contains(w.as_str()))
        .count();
    let de = words
        .iter()
        .filter(|w| STOP_DE.contains(w.as_str()))
        .count();
    let stemmer: &Stemmer = if de > en { &DE } else { &EN };
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
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Adds or replaces the text of note `id`.
    pub fn insert(&mut self, id: u64, chat_id: i64, text: &str) {
        self.remove(id);
        let mut tf: HashMap<String, u32> = HashMap::new();
        let mut len = 0u32;
        for t in analyze_doc(text) {
            *tf.entry(t).or_default() += 1;
            len += 1;
        }
        let mut terms = Vec::with_capacity(tf.len());
        for (term, n) in tf {
            self.postings.entry(term.clone()).or_default().push((id, n));
            terms.push(term);
        }
        self.docs.insert(
            id,
            Doc {
                chat_id,
                len,
                terms,
            },
        );
        self.total_len += u64::from(len);
    }

    pub fn remove(&mut self, id: u64) {
        let Some(doc) = self.docs.remove(&id) else {
            return;
        };
        self.total_len -= u64::from(doc.len);
        for term in &doc.terms {
            if let Some(list) = self.postings.get_mut(term) {
                list.retain(|(d, _)| *d != id);
                if list.is_empty() {
                    self.postings.remove(term);
                }
            }
        }
    }

    /// How much a note could score for `query`: the sum of the query terms'
    /// idf (terms absent from the index count with the highest idf). A note's
    /// BM25 divided by this is the share of the query it matches, in [0, ~1]
    /// — unlike min-max over candidates, a lone weak match stays small.
    pub fn query_weight(&self, query: &str) -> f32 {
        let n = self.docs.len() as f32;
        analyze_query(query)
            .iter()
            .map(|t| {
                let df = self.postings.get(t).map_or(0, Vec::len) as f32;
                ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
            })
            .sum::<f32>()
            // A query is stemmed two ways, so each word contributes up to two terms.
            .max(1e-6)
    }

    /// The query's terms found in the index, with their idf.
    pub fn query_terms(&self, query: &str) -> Vec<(String, f32)> {
        let n = self.docs.len() as f32;
        analyze_query(query)
            .into_iter()
            .filter_map(|t| {
                let df = self.postings.get(&t)?.len() as f32;
                Some((t, ((n - df + 0.5) / (df + 0.5) + 1.0).ln()))
            })
            .collect()
    }

    /// Whether note `id` has the (analysed) term `term`.
    pub fn has_term(&self, id: u64, term: &str) -> bool {
        self.docs
            .get(&id)
            .is_some_and(|d| d.terms.iter().any(|t| t == term))
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
        if self.docs.is_empty() {
            return Vec::new();
        }
        let n = self.docs.len() as f32;
        let avg = (self.total_len as f32 / n).max(1.0);
        analyze_query(query)
            .iter()
            .filter_map(|term| {
                let list = self.postings.get(term)?;
                let df = list.len() as f32;
                let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                let docs = list
                    .iter()
                    .filter_map(|&(id, tf)| {
                        let doc = &self.docs[&id];
                        if !chat.admits(doc.chat_id) {
                            return None;
                        }
                        Some((id, tf as f32 / p.norm(doc.len, avg)))
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
        if self.docs.is_empty() || k == 0 {
            return Vec::new();
        }
        let n = self.docs.len() as f32;
        let avg = (self.total_len as f32 / n).max(1.0);
        let terms = analyze_query(query);
        let mut scores: HashMap<u64, f32> = HashMap::new();
        for term in &terms {
            let Some(list) = self.postings.get(term) else {
                continue;
            };
            let df = list.len() as f32;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for &(id, tf) in list {
                let doc = &self.docs[&id];
                if !chat.admits(doc.chat_id) {
                    continue;
                }
                *scores.entry(id).or_default() +=
                    idf * p.saturate(tf as f32 / p.norm(doc.len, avg));
            }
        }
        top_k(scores, k)
    }
}

/// The `k` best of `scores`, highest first; ties by newer (higher) id.
pub(crate) fn top_k(scores: HashMap<u64, f32>, k: usize) -> Vec<(u64, f32)> {
    let mut hits: Vec<(u64, f32)> = scores.into_iter().collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
    hits.truncate(k);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn tokenizer_handles_unicode_and_numbers() {
        let t: Vec<String> = tokenize("Größe: 3 Äpfel, e-mail 2026!").collect();
        assert_eq!(t, vec!["größe", "3", "äpfel", "mail", "2026"]);
    }
}
