//! The ggml side: the header's [`Hparams`] read from the model's shapes, the
//! plan of output tensors (fused projections cut into row ranges, types
//! chosen), and [`convert`] / [`convert_files`], which write the file.

use std::io::Write;
use std::path::Path;

use half::f16;

use super::{
    bytes_to_unicode, map_name, mel_filters, parse_ct2, token_bytes, Ct2Model, DType, GgmlError,
    Target, Variable, END_OF_TEXT, GGML_MAGIC, N_FFT, N_MELS, SAMPLE_RATE,
};

/// Whisper's dimensions as the ggml header stores them, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    /// 1 = mostly f16.
    pub ftype: i32,
}

impl Hparams {
    fn as_array(&self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }
}

/// What a conversion wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertReport {
    pub hparams: Hparams,
    pub tokens: usize,
    pub tensors: usize,
    pub bytes: u64,
}

/// One tensor of the ggml file: a row range of a CT2 variable.
pub(super) struct OutTensor<'m, 'a> {
    name: String,
    var: &'m Variable<'a>,
    /// Row-major shape as written (before reversing).
    shape: Vec<usize>,
    first_row: usize,
    f32_out: bool,
}

pub(super) fn plan<'m, 'a>(model: &'m Ct2Model<'a>) -> Result<Vec<OutTensor<'m, 'a>>, GgmlError> {
    let mut out = Vec::new();
    for var in &model.variables {
        let target = map_name(&var.name)?;
        if target == Target::Skip {
            continue;
        }
        if var.shape.is_empty() {
            return Err(GgmlError::Layout(format!(
                "{} is a scalar, expected an array",
                var.name
            )));
        }
        if !matches!(var.dtype, DType::F32 | DType::F16) {
            return Err(GgmlError::UnsupportedDtype {
                name: var.name.clone(),
                dtype: var.dtype,
            });
        }
        let parts = match target {
            Target::One(name) => vec![Some(name)],
            Target::Split(names) => names,
            Target::Skip => unreachable!("skipped above"),
        };
        let rows = var.shape[0];
        if rows % parts.len() != 0 {
            return Err(GgmlError::Layout(format!(
                "{} has {rows} rows, not divisible by {}",
                var.name,
                parts.len()
            )));
        }
        let per = rows / parts.len();
        for (i, name) in parts.into_iter().enumerate() {
            let Some(name) = name else { continue };
            let mut shape = var.shape.clone();
            shape[0] = per;
            let conv_bias = name.starts_with("encoder.conv") && name.ends_with(".bias");
            if conv_bias {
                shape.push(1);
            }
            let f32_out =
                var.shape.len() == 1 || conv_bias || name.ends_with("positional_embedding");
            out.push(OutTensor {
                name,
                var,
                shape,
                first_row: i * per,
                f32_out,
            });
        }
    }
    Ok(out)
}

fn layer_count(model: &Ct2Model<'_>, side: &str) -> i32 {
    let prefix = format!("{side}/layer_");
    let mut n = 0;
    for v in &model.variables {
        if let Some(i) = v
            .name
            .strip_prefix(&prefix)
            .and_then(|r| r.split('/').next())
            .and_then(|i| i.parse::<i32>().ok())
        {
            n = n.max(i + 1);
        }
    }
    n
}

fn hparams(model: &Ct2Model<'_>) -> Result<Hparams, GgmlError> {
    let need = |name: &str| {
        model
            .get(name)
            .ok_or_else(|| GgmlError::Layout(format!("{name} is missing")))
    };
    let dims2 = |name: &str| -> Result<(i32, i32), GgmlError> {
        let v = need(name)?;
        match v.shape[..] {
            [a, b] => Ok((
                i32::try_from(a).unwrap_or(i32::MAX),
                i32::try_from(b).unwrap_or(i32::MAX),
            )),
            _ => Err(GgmlError::Layout(format!(
                "{name} has shape {:?}, expected 2-D",
                v.shape
            ))),
        }
    };
    let heads = |name: &str| -> Result<i32, GgmlError> {
        need(name)?
            .scalar_int()
            .and_then(|h| i32::try_from(h).ok())
            .filter(|&h| h > 0)
            .ok_or_else(|| GgmlError::Layout(format!("{name} is not a positive integer")))
    };
    let (n_vocab, _) = dims2("decoder/embeddings/weight")?;
    let (n_audio_ctx, n_audio_state) = dims2("encoder/position_encodings/encodings")?;
    let (n_text_ctx, n_text_state) = dims2("decoder/position_encodings/encodings")?;
    let conv1 = need("encoder/conv1/weight")?;
    let n_mels = match conv1.shape[..] {
        [_, mels, _] => i32::try_from(mels).unwrap_or(i32::MAX),
        _ => return Err(GgmlError::Layout("encoder/conv1/weight is not 3-D".into())),
    };
    Ok(Hparams {
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        n_audio_head: heads("encoder/num_heads")?,
        n_audio_layer: layer_count(model, "encoder"),
        n_text_ctx,
        n_text_state,
        n_text_head: heads("decoder/num_heads")?,
        n_text_layer: layer_count(model, "decoder"),
        n_mels,
        ftype: 1,
    })
}

fn write_all<W: Write>(w: &mut W, b: &[u8]) -> Result<(), GgmlError> {
    w.write_all(b).map_err(|source| GgmlError::Io {
        path: "output".into(),
        source,
    })
}

fn len_i32(n: usize, what: &str) -> Result<i32, GgmlError> {
    i32::try_from(n)
        .map_err(|_| GgmlError::Layout(format!("{what} {n} does not fit the ggml header")))
}

/// Converts a CT2 Whisper model (the bytes of `model.bin` and the text of
/// `vocabulary.txt`) to a ggml file written to `w`.
pub fn convert<W: Write>(
    model_bin: &[u8],
    vocabulary: &str,
    mut w: W,
) -> Result<ConvertReport, GgmlError> {
    let model = parse_ct2(model_bin)?;
    if model.spec != "WhisperSpec" {
        return Err(GgmlError::Layout(format!(
            "spec {:?}, expected WhisperSpec",
            model.spec
        )));
    }
    let hp = hparams(&model)?;
    if hp.n_mels as usize != N_MELS {
        return Err(GgmlError::Layout(format!(
            "{} mel bands; this converter computes filters for {N_MELS}",
            hp.n_mels
        )));
    }
    let tensors = plan(&model)?;

    let tokens: Vec<&str> = vocabulary.lines().collect();
    if tokens.len() != hp.n_vocab as usize {
        return Err(GgmlError::Vocabulary(format!(
            "{} entries, the model has {} token embeddings",
            tokens.len(),
            hp.n_vocab
        )));
    }
    let text_tokens = tokens
        .iter()
        .position(|&t| t == END_OF_TEXT)
        .ok_or_else(|| GgmlError::Vocabulary(format!("no {END_OF_TEXT} entry")))?;
    let table = bytes_to_unicode();

    let mut written: u64 = 0;
    let mut put = |w: &mut W, b: &[u8]| -> Result<(), GgmlError> {
        written += b.len() as u64;
        write_all(w, b)
    };
    put(&mut w, &GGML_MAGIC.to_le_bytes())?;
    for v in hp.as_array() {
        put(&mut w, &v.to_le_bytes())?;
    }
    let filters = mel_filters(N_MELS, N_FFT, SAMPLE_RATE);
    put(&mut w, &len_i32(N_MELS, "n_mels")?.to_le_bytes())?;
    put(&mut w, &len_i32(N_FFT / 2 + 1, "fft bins")?.to_le_bytes())?;
    let mut buf = Vec::with_capacity(filters.len() * 4);
    for f in &filters {
        buf.extend_from_slice(&f.to_le_bytes());
    }
    put(&mut w, &buf)?;

    put(&mut w, &len_i32(text_tokens, "token count")?.to_le_bytes())?;
    for t in &tokens[..text_tokens] {
        let b = token_bytes(t, &table)?;
        put(&mut w, &len_i32(b.len(), "token length")?.to_le_bytes())?;
        put(&mut w, &b)?;
    }

    for t in &tensors {
        put(&mut w, &len_i32(t.shape.len(), "rank")?.to_le_bytes())?;
        put(&mut w, &len_i32(t.name.len(), "name length")?.to_le_bytes())?;
        put(&mut w, &i32::from(!t.f32_out).to_le_bytes())?;
        for &d in t.shape.iter().rev() {
            put(&mut w, &len_i32(d, "dimension")?.to_le_bytes())?;
        }
        put(&mut w, t.name.as_bytes())?;
        let row = t.var.shape[1..].iter().product::<usize>() * t.var.dtype.size();
        let n = t.shape[0] * row;
        let src = &t.var.data[t.first_row * row..t.first_row * row + n];
        buf.clear();
        match (t.var.dtype, t.f32_out) {
            (DType::F16, false) | (DType::F32, true) => buf.extend_from_slice(src),
            (DType::F16, true) => {
                for c in src.chunks_exact(2) {
                    buf.extend_from_slice(&f16::from_le_bytes([c[0], c[1]]).to_f32().to_le_bytes());
                }
            }
            (DType::F32, false) => {
                for c in src.chunks_exact(4) {
                    buf.extend_from_slice(
                        &f16::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes(),
                    );
                }
            }
            (dtype, _) => {
                return Err(GgmlError::UnsupportedDtype {
                    name: t.var.name.clone(),
                    dtype,
                })
            }
        }
        put(&mut w, &buf)?;
    }
    w.flush().map_err(|source| GgmlError::Io {
        path: "output".into(),
        source,
    })?;
    Ok(ConvertReport {
        hparams: hp,
        tokens: text_tokens,
        tensors: tensors.len(),
        bytes: written,
    })
}

/// [`convert`] from files to a file. The output appears complete or not at
/// all (written to a temporary name, then renamed).
pub fn convert_files(
    model_bin: &Path,
    vocabulary: &Path,
    out: &Path,
) -> Result<ConvertReport, GgmlError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| GgmlError::Io { path, source }
    };
    let bytes = std::fs::read(model_bin).map_err(io(model_bin))?;
    let vocab = std::fs::read_to_string(vocabulary).map_err(io(vocabulary))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ggml".into());
    let tmp = out.with_file_name(format!(".{name}.tmp"));
    let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let report = match convert(
        &bytes,
        &vocab,
        std::io::BufWriter::with_capacity(1 << 20, file),
    ) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, out).map_err(io(out))?;
    Ok(report)
}
