//! Recall: derived indexes over the notes in the store.
//!
//! Today a lexical BM25 index; local embeddings and a vector index join it in
//! the semantic-memory work. Everything here is rebuilt from the store.

pub mod lexical;
