//! Recall: derived indexes over the notes in the store, and their fusion.
//!
//! - [`lexical`]: BM25 with stemming (English, German);
//! - [`embed`]: sentence embeddings (MiniLM on ONNX Runtime);
//! - [`dot`]: the vectorised dot product all comparisons use;
//! - [`vector`]: the in-memory vector index (exact, and ANN when large);
//! - [`recall`]: hybrid fusion of the two with recency;
//! - [`rerank`]: a cross-encoder telling how well a hit answers a question
//!   (the relevance floor of conversation turns);
//! - [`indexes`]: all the derived state the core holds, built and updated
//!   as one.
//!
//! Everything here is rebuilt from the store, and nothing here knows the
//! core (the background embedder that drives the model is the App's:
//! `app::embed_worker`).

pub mod ann;
pub mod dot;
pub mod embed;
pub mod indexes;
pub mod lexical;
pub mod recall;
pub mod rerank;
pub mod segment;
pub mod vector;
pub mod when;
pub mod window;

/// Which chats a search covers: all of them, or one chat — possibly with the
/// import space of the same id ([`crate::store::import_chat`]), which only
/// the owner's CLI and library callers ask for; a Telegram `/recall`
/// searches its own chat only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chats(Option<[i64; 2]>);

impl Chats {
    pub const ALL: Chats = Chats(None);

    /// Only `chat`.
    pub fn one(chat: i64) -> Chats {
        Chats(Some([chat, chat]))
    }

    /// `chat` and the history imported from an export whose chat id is `chat`.
    pub fn with_import(chat: i64) -> Chats {
        Chats(Some([chat, crate::store::import_chat(chat)]))
    }

    /// The chats covered (once each), `None` for all of them.
    pub fn ids(self) -> Option<Vec<i64>> {
        self.0
            .map(|[a, b]| if a == b { vec![a] } else { vec![a, b] })
    }

    pub fn admits(self, chat: i64) -> bool {
        self.0.is_none_or(|a| a[0] == chat || a[1] == chat)
    }
}

impl From<Option<i64>> for Chats {
    fn from(c: Option<i64>) -> Chats {
        c.map_or(Chats::ALL, Chats::one)
    }
}
