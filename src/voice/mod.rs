//! Voice notes: from the bytes Telegram hands over to text.
//!
//! [`audio`] turns an OGG/Opus voice note (or a WAV file) into 16 kHz mono
//! samples in process — no ffmpeg, no temporary files — refusing audio that is
//! too long before spending time on it. The transcription engine consumes
//! [`audio::Pcm`].

pub mod audio;
