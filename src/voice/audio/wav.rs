//! WAV: the header (hound), a check that the data chunk is all there, and
//! decoding with the channels averaged into mono on the way to the resampler.

use std::io::Cursor;
use std::time::Duration;

use super::resample::To16k;
use super::{check_length, AudioError, Format, Pcm, MAX_WAV_RATE, MIN_WAV_RATE};

pub(super) struct WavInfo<'a> {
    reader: hound::WavReader<Cursor<&'a [u8]>>,
    pub(super) rate: u32,
    channels: u16,
    pub(super) frames: u64,
}

fn wav_error(e: hound::Error) -> AudioError {
    match e {
        // Reading from memory fails only at the end of the input.
        hound::Error::IoError(_) => AudioError::Truncated,
        hound::Error::FormatError(what) => AudioError::Corrupt(format!("WAV: {what}")),
        hound::Error::Unsupported => {
            AudioError::Unsupported("WAV encoding other than PCM or float".into())
        }
        hound::Error::TooWide | hound::Error::InvalidSampleFormat => {
            AudioError::Unsupported("WAV sample format".into())
        }
        hound::Error::UnfinishedSample => AudioError::Corrupt("WAV: unfinished sample".into()),
    }
}

/// Parses the header and checks the data chunk is all there.
pub(super) fn wav_info(b: &[u8]) -> Result<WavInfo<'_>, AudioError> {
    let reader = hound::WavReader::new(Cursor::new(b)).map_err(wav_error)?;
    let spec = reader.spec();
    if !(MIN_WAV_RATE..=MAX_WAV_RATE).contains(&spec.sample_rate) {
        return Err(AudioError::Unsupported(format!(
            "WAV at {} Hz",
            spec.sample_rate
        )));
    }
    // The reader stands at the first data byte: that many bytes must follow
    // (counted with the smallest container size the bit depth allows).
    let data_start = hound::WavReader::new(Cursor::new(b))
        .map_err(wav_error)?
        .into_inner()
        .position();
    let needed = u64::from(reader.len()) * u64::from(spec.bits_per_sample).div_ceil(8);
    if (b.len() as u64).saturating_sub(data_start) < needed {
        return Err(AudioError::Truncated);
    }
    Ok(WavInfo {
        rate: spec.sample_rate,
        channels: spec.channels,
        frames: u64::from(reader.duration()),
        reader,
    })
}

pub(super) fn decode_wav(b: &[u8], max: Duration) -> Result<Pcm, AudioError> {
    let WavInfo {
        mut reader,
        rate,
        channels,
        frames,
    } = wav_info(b)?;
    check_length(frames, rate, max)?;
    if frames == 0 {
        return Err(AudioError::Empty);
    }
    let spec = reader.spec();
    let mut resampler = To16k::new(rate, frames)?;
    let mut sink = Downmix::new(usize::from(channels), &mut resampler);
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            for s in reader.samples::<i32>() {
                sink.push(s.map_err(wav_error)? as f32 * scale)?;
            }
        }
        (hound::SampleFormat::Float, 32) => {
            for s in reader.samples::<f32>() {
                let s = s.map_err(wav_error)?;
                if !s.is_finite() {
                    return Err(AudioError::Corrupt(
                        "WAV holds a non-finite float sample".into(),
                    ));
                }
                sink.push(s)?;
            }
        }
        (format, bits) => {
            return Err(AudioError::Unsupported(format!(
                "{bits}-bit {format:?} WAV"
            )))
        }
    }
    sink.flush()?;
    let samples = resampler.finish()?;
    Ok(Pcm {
        samples,
        source_rate: rate,
        channels,
        format: Format::Wav,
    })
}

/// Averages interleaved channels into mono, handing the resampler blocks.
struct Downmix<'r> {
    channels: usize,
    acc: f32,
    in_frame: usize,
    block: Vec<f32>,
    out: &'r mut To16k,
}

impl<'r> Downmix<'r> {
    fn new(channels: usize, out: &'r mut To16k) -> Self {
        Downmix {
            channels: channels.max(1),
            acc: 0.0,
            in_frame: 0,
            block: Vec::with_capacity(4096),
            out,
        }
    }

    fn push(&mut self, s: f32) -> Result<(), AudioError> {
        self.acc += s;
        self.in_frame += 1;
        if self.in_frame == self.channels {
            self.block.push(self.acc / self.channels as f32);
            self.acc = 0.0;
            self.in_frame = 0;
            if self.block.len() == self.block.capacity() {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), AudioError> {
        self.out.push(&self.block)?;
        self.block.clear();
        Ok(())
    }
}
