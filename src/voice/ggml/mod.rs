//! CTranslate2 Whisper → ggml: the converter that makes the speech model.
//!
//! The only Whisper weights on the package registries come as a CTranslate2
//! (CT2) model: `model.bin` plus `vocabulary.txt`. whisper.cpp reads its own
//! ggml file instead. Both hold the same numbers under different names and
//! layouts, so the conversion is a re-labelling with three real changes:
//!
//! 1. **Fused projections are split.** CT2 stores self-attention's query, key
//!    and value as one `[3·d, d]` matrix (`linear_0`), and cross-attention's
//!    key and value as one `[2·d, d]` matrix (`linear_1`); whisper.cpp wants
//!    separate tensors, so the rows are cut into equal parts. Whisper's key
//!    projection has no bias. CT2 stores zeros there; even if it did not,
//!    dropping it is exact: a key bias adds `q·b` to every score of one query,
//!    the same constant for every key, and softmax ignores constants.
//! 2. **Types follow whisper.cpp's loader.** Every 1-D tensor, both
//!    positional embeddings and the conv biases are f32; other 2-D/3-D
//!    tensors are f16. The conv biases become `(n, 1)` matrices.
//! 3. **Extras are computed.** The ggml file carries the 80×201 mel filter
//!    bank ([`mel_filters`]) and the vocabulary as raw bytes ([`token_bytes`]
//!    undoes GPT-2's printable byte encoding).
//!
//! The ggml layout (little-endian): magic `0x67676d6c`; 11 i32 hparams
//! [`Hparams`]; i32 n_mel, i32 n_fft_bins, then the filters as f32; i32
//! token count and each token as i32 length + bytes; then each tensor as i32
//! n_dims, i32 name length, i32 type (0 f32, 1 f16), the dims innermost first
//! (the reverse of the row-major shape), the name, the data.
//!
//! The output is a pure function of the input bytes — no time stamps, no hash
//! maps in the output order — so its sha256 can be pinned ([`crate::models`]).
//!
//! Parsing never trusts a length from the file: every count is checked
//! against the bytes that remain before anything is sliced or allocated.
//!
//! The files follow those steps: `ct2.rs` parses `model.bin`, `names.rs`
//! maps its variable names, `mel.rs` computes the filter bank, `vocab.rs`
//! turns the vocabulary into bytes, and `writer.rs` plans the tensors and
//! writes the file.

mod ct2;
mod mel;
mod names;
mod vocab;
mod writer;

pub use ct2::{parse_ct2, Ct2Model, DType, Variable};
pub use mel::mel_filters;
pub use names::{map_name, Target};
pub use vocab::{bytes_to_unicode, token_bytes};
pub use writer::{convert, convert_files, ConvertReport, Hparams};

/// `ggml` in ASCII, read as a little-endian u32.
pub const GGML_MAGIC: u32 = 0x6767_6d6c;
/// Whisper's audio front end: 16 kHz, 25 ms windows, 80 mel bands.
pub const SAMPLE_RATE: u32 = 16_000;
pub const N_FFT: usize = 400;
pub const N_MELS: usize = 80;
/// The first special token; everything below it is ordinary text.
const END_OF_TEXT: &str = "<|endoftext|>";

/// Why a conversion failed. Every variant names what was wrong with the input.
#[derive(Debug, thiserror::Error)]
pub enum GgmlError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not a CTranslate2 model: {0}")]
    BadHeader(String),
    #[error("truncated CTranslate2 model: {0}")]
    Truncated(String),
    #[error("variable {name}: unknown CTranslate2 dtype code {code}")]
    UnknownDtype { name: String, code: u8 },
    #[error("variable {name}: dtype {dtype:?} cannot be converted (only f32 and f16 weights can)")]
    UnsupportedDtype { name: String, dtype: DType },
    #[error("not a Whisper model this converter knows: {0}")]
    Layout(String),
    #[error("vocabulary: {0}")]
    Vocabulary(String),
}

#[cfg(test)]
mod tests;
