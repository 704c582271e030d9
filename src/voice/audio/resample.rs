//! Resampling to 16 kHz: a streaming rubato FFT resampler with its delay
//! removed and an exact output length.

use rubato::{FftFixedInOut, Resampler};

use super::{AudioError, RESAMPLE_CHUNK, SAMPLE_RATE};

/// A streaming resampler to [`SAMPLE_RATE`] whose output is aligned with its
/// input and exactly `round(n · 16000 / rate)` long.
///
/// rubato's `FftFixedInOut` takes fixed chunks and answers with fixed chunks,
/// `output_delay()` samples late (half a chunk: the low-pass filter is
/// centred). So: drop the first `delay` output samples, and at the end feed
/// zeros until the output reaches the exact length.
pub(super) struct To16k {
    rate: u32,
    /// `None` at 16 kHz: samples pass through.
    fft: Option<FftFixedInOut<f32>>,
    chunk_in: usize,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    delay: usize,
    consumed: u64,
    out: Vec<f32>,
}

impl To16k {
    /// `expected_in`: input length if known, to size the output once.
    pub(super) fn new(rate: u32, expected_in: u64) -> Result<Self, AudioError> {
        let expected_out = exact_len(expected_in, rate);
        let mut out = Vec::new();
        out.try_reserve_exact(usize::try_from(expected_out).unwrap_or(usize::MAX))
            .map_err(|_| AudioError::Unsupported("audio too large for memory".into()))?;
        if rate == SAMPLE_RATE {
            return Ok(To16k {
                rate,
                fft: None,
                chunk_in: 0,
                pending: Vec::new(),
                scratch: Vec::new(),
                delay: 0,
                consumed: 0,
                out,
            });
        }
        // rubato's chunk is k × (rate / gcd) input frames for k × (16000 /
        // gcd) output frames, and its filter is centred on sample chunk/2: with
        // k even both halves are whole samples, so the delay it reports is
        // exact (an odd k leaves a half-sample shift, 0.2 samples at 44.1k).
        let min_in = (rate / gcd(rate, SAMPLE_RATE)) as usize;
        let k = RESAMPLE_CHUNK.div_ceil(min_in).next_multiple_of(2);
        let fft = FftFixedInOut::<f32>::new(rate as usize, SAMPLE_RATE as usize, k * min_in, 1)
            .map_err(|e| AudioError::Unsupported(format!("resampling from {rate} Hz: {e}")))?;
        let chunk_in = fft.input_frames_next();
        Ok(To16k {
            rate,
            chunk_in,
            pending: Vec::with_capacity(chunk_in),
            scratch: vec![0.0; fft.output_frames_max()],
            delay: fft.output_delay(),
            fft: Some(fft),
            consumed: 0,
            out,
        })
    }

    pub(super) fn push(&mut self, mut x: &[f32]) -> Result<(), AudioError> {
        self.consumed += x.len() as u64;
        if self.fft.is_none() {
            self.out.extend_from_slice(x);
            return Ok(());
        }
        if !self.pending.is_empty() {
            let take = (self.chunk_in - self.pending.len()).min(x.len());
            self.pending.extend_from_slice(&x[..take]);
            x = &x[take..];
            if self.pending.len() < self.chunk_in {
                return Ok(());
            }
            let chunk = std::mem::take(&mut self.pending);
            self.run(&chunk)?;
            self.pending = chunk;
            self.pending.clear();
        }
        while x.len() >= self.chunk_in {
            let (chunk, rest) = x.split_at(self.chunk_in);
            self.run(chunk)?;
            x = rest;
        }
        self.pending.extend_from_slice(x);
        Ok(())
    }

    /// Resamples one whole chunk, dropping what is still owed to the delay.
    fn run(&mut self, chunk: &[f32]) -> Result<(), AudioError> {
        let Some(fft) = self.fft.as_mut() else {
            return Ok(());
        };
        let (_, n) = fft
            .process_into_buffer(&[chunk], &mut [&mut self.scratch[..]], None)
            .map_err(|e| AudioError::Corrupt(format!("resampler: {e}")))?;
        let drop = self.delay.min(n);
        self.delay -= drop;
        self.out.extend_from_slice(&self.scratch[drop..n]);
        Ok(())
    }

    /// Flushes the filter and returns exactly `round(consumed · 16000 /
    /// rate)` samples, clamped to −1..1.
    pub(super) fn finish(mut self) -> Result<Vec<f32>, AudioError> {
        let want = usize::try_from(exact_len(self.consumed, self.rate)).unwrap_or(usize::MAX);
        if self.fft.is_some() {
            let zeros = vec![0.0; self.chunk_in];
            let mut last = std::mem::take(&mut self.pending);
            if !last.is_empty() {
                last.resize(self.chunk_in, 0.0);
                self.run(&last)?;
            }
            // Each chunk yields output once the delay is paid: this ends.
            while self.out.len() < want {
                self.run(&zeros)?;
            }
        }
        self.out.truncate(want);
        self.out.iter_mut().for_each(|s| *s = s.clamp(-1.0, 1.0));
        Ok(self.out)
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// `round(n · 16000 / rate)`, halves up.
pub(super) fn exact_len(n: u64, rate: u32) -> u64 {
    let rate = u128::from(rate.max(1));
    ((u128::from(n) * u128::from(SAMPLE_RATE) + rate / 2) / rate) as u64
}
