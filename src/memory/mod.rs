//! Recall: derived indexes over the notes in the store, and their fusion.
//!
//! - [`lexical`]: BM25 with stemming (English, German);
//! - [`embed`]: sentence embeddings (MiniLM on ONNX Runtime);
//! - [`dot`]: the vectorised dot product all comparisons use;
//! - [`vector`]: the in-memory vector index (exact, and ANN when large);
//! - [`recall`]: hybrid fusion of the two with recency;
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
pub mod vector;
pub mod window;
