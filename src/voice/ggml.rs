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

use std::io::Write;
use std::path::Path;

use half::f16;

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

/// CTranslate2's storage types, by their code in `model.bin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
}

impl DType {
    pub fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One named array of a CT2 model; `data` borrows from the file's bytes.
#[derive(Debug, Clone)]
pub struct Variable<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: &'a [u8],
}

impl Variable<'_> {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// A rank-0 integer (e.g. `encoder/num_heads`).
    fn scalar_int(&self) -> Option<i64> {
        if !self.shape.is_empty() {
            return None;
        }
        let b = self.data;
        match self.dtype {
            DType::I8 => b.first().map(|&v| i64::from(v as i8)),
            DType::I16 => Some(i64::from(i16::from_le_bytes(b.get(..2)?.try_into().ok()?))),
            DType::I32 => Some(i64::from(i32::from_le_bytes(b.get(..4)?.try_into().ok()?))),
            _ => None,
        }
    }
}

/// A parsed CT2 `model.bin`.
#[derive(Debug)]
pub struct Ct2Model<'a> {
    pub version: u32,
    pub spec: String,
    pub revision: u32,
    pub variables: Vec<Variable<'a>>,
    /// `(alias, target)`: names that share another variable's data.
    pub aliases: Vec<(String, String)>,
}

impl<'a> Ct2Model<'a> {
    pub fn get(&self, name: &str) -> Option<&Variable<'a>> {
        self.variables.iter().find(|v| v.name == name)
    }
}

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

/// A little cursor that refuses to read past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], GgmlError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                GgmlError::Truncated(format!(
                    "{what} needs {n} bytes at offset {}, the file has {}",
                    self.pos,
                    self.bytes.len()
                ))
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, GgmlError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, GgmlError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgmlError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// CT2 strings: u16 length, then that many bytes ending in a NUL.
    fn string(&mut self, what: &str) -> Result<String, GgmlError> {
        let n = usize::from(self.u16(what)?);
        let b = self.take(n, what)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        String::from_utf8(b.to_vec())
            .map_err(|_| GgmlError::BadHeader(format!("{what} is not UTF-8")))
    }
}

/// Parses a CT2 `model.bin` (binary versions 4 to 6: the ones with dtype codes).
pub fn parse_ct2(bytes: &[u8]) -> Result<Ct2Model<'_>, GgmlError> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u32("binary version")?;
    if !(4..=6).contains(&version) {
        return Err(GgmlError::BadHeader(format!(
            "binary version {version}, expected 4 to 6"
        )));
    }
    let spec = r.string("spec name")?;
    let revision = r.u32("spec revision")?;
    let count = r.u32("variable count")? as usize;
    // Each variable needs at least 8 bytes (name length, rank, dtype, size):
    // a count the file cannot hold is rejected before the Vec is sized by it.
    if count > bytes.len() / 8 {
        return Err(GgmlError::Truncated(format!(
            "{count} variables cannot fit in {} bytes",
            bytes.len()
        )));
    }
    let mut variables = Vec::with_capacity(count);
    for _ in 0..count {
        let name = r.string("variable name")?;
        let rank = usize::from(r.u8("rank")?);
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(r.u32("dimension")? as usize);
        }
        let code = r.u8("dtype")?;
        let dtype = DType::from_code(code).ok_or_else(|| GgmlError::UnknownDtype {
            name: name.clone(),
            code,
        })?;
        let nbytes = r.u32("data size")? as usize;
        let expected = shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
        if expected != Some(nbytes) {
            return Err(GgmlError::BadHeader(format!(
                "{name}: shape {shape:?} of {dtype:?} does not match its {nbytes} data bytes"
            )));
        }
        let data = r.take(nbytes, &name)?;
        variables.push(Variable {
            name,
            shape,
            dtype,
            data,
        });
    }
    let mut aliases = Vec::new();
    if r.pos < bytes.len() {
        let n = r.u32("alias count")? as usize;
        if n > bytes.len() / 4 {
            return Err(GgmlError::Truncated(format!(
                "{n} aliases cannot fit in {} bytes",
                bytes.len()
            )));
        }
        for _ in 0..n {
            aliases.push((r.string("alias")?, r.string("alias target")?));
        }
    }
    Ok(Ct2Model {
        version,
        spec,
        revision,
        variables,
        aliases,
    })
}

/// GPT-2's byte → printable character table: byte `b` is written as
/// `table[b]` in the vocabulary, so a token is a string of such characters.
/// Printable Latin-1 bytes stand for themselves; the other 68 bytes are
/// shifted to U+0100 and up, in order.
pub fn bytes_to_unicode() -> [char; 256] {
    let printable = |b: u32| {
        (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    let mut table = ['\0'; 256];
    let mut shifted = 0u32;
    for b in 0..256u32 {
        let cp = if printable(b) {
            b
        } else {
            shifted += 1;
            255 + shifted
        };
        table[b as usize] = char::from_u32(cp).unwrap_or('\0');
    }
    table
}

/// The raw bytes of one vocabulary entry (the inverse of [`bytes_to_unicode`]).
pub fn token_bytes(token: &str, table: &[char; 256]) -> Result<Vec<u8>, GgmlError> {
    token
        .chars()
        .map(|c| {
            table
                .iter()
                .position(|&t| t == c)
                .map(|b| b as u8)
                .ok_or_else(|| {
                    GgmlError::Vocabulary(format!(
                        "token {token:?} has {c:?}, which is no byte's character"
                    ))
                })
        })
        .collect()
}

fn hz_to_mel(hz: f64) -> f64 {
    // Slaney: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        f_sp * mel
    }
}

/// The mel filter bank Whisper was trained with (librosa's default: Slaney
/// mel scale, Slaney area normalisation), `n_mels` rows of `n_fft/2 + 1`
/// FFT-bin weights, row-major. Each row is a triangle between two
/// neighbouring mel points, scaled so its area is constant (`2/width`).
pub fn mel_filters(n_mels: usize, n_fft: usize, sample_rate: u32) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let nyquist = f64::from(sample_rate) / 2.0;
    let fft_hz: Vec<f64> = (0..bins)
        .map(|i| nyquist * i as f64 / (bins - 1) as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(nyquist));
    let mel_hz: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut out = Vec::with_capacity(n_mels * bins);
    for m in 0..n_mels {
        let (left, centre, right) = (mel_hz[m], mel_hz[m + 1], mel_hz[m + 2]);
        let enorm = 2.0 / (right - left);
        for &f in &fft_hz {
            let rising = (f - left) / (centre - left);
            let falling = (right - f) / (right - centre);
            // librosa keeps the triangle in f32, then scales it in f64.
            let w = rising.min(falling).max(0.0) as f32;
            out.push((f64::from(w) * enorm) as f32);
        }
    }
    out
}

/// Where one CT2 variable goes in the ggml file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Not written (scalars, settings).
    Skip,
    /// Written under this name.
    One(String),
    /// Rows cut into equal parts, each written under its name or dropped (`None`).
    Split(Vec<Option<String>>),
}

/// The name mapping. `Err` for a name this converter does not know, so a
/// differently laid-out model fails loudly instead of converting to garbage.
pub fn map_name(ct2: &str) -> Result<Target, GgmlError> {
    let unknown = || GgmlError::Layout(format!("unexpected variable {ct2}"));
    let parts: Vec<&str> = ct2.split('/').collect();
    let (side, rest) = parts.split_first().ok_or_else(unknown)?;
    if !matches!(*side, "encoder" | "decoder") {
        return Err(unknown());
    }
    // Settings stored as variables.
    if rest.len() == 1
        && matches!(
            rest[0],
            "num_heads"
                | "activation"
                | "alibi"
                | "alignment_heads"
                | "alignment_layer"
                | "pre_norm"
                | "scale_embeddings"
                | "start_from_zero_embedding"
                | "scale_outputs"
                | "rotary_dim"
        )
    {
        return Ok(Target::Skip);
    }
    let param = |p: &str| match p {
        "gamma" | "weight" => Some("weight"),
        "beta" | "bias" => Some("bias"),
        _ => None,
    };
    let one = |s: String| Ok(Target::One(s));
    match rest {
        ["conv1" | "conv2", p @ ("weight" | "bias")] if *side == "encoder" => {
            one(format!("encoder.{}.{p}", rest[0]))
        }
        ["position_encodings", "encodings"] => one(format!("{side}.positional_embedding")),
        ["embeddings", "weight"] if *side == "decoder" => {
            one("decoder.token_embedding.weight".into())
        }
        ["layer_norm", p] => {
            let p = param(p).ok_or_else(unknown)?;
            one(if *side == "encoder" {
                format!("encoder.ln_post.{p}")
            } else {
                format!("decoder.ln.{p}")
            })
        }
        [layer, block, module, p] => {
            let n: usize = layer
                .strip_prefix("layer_")
                .and_then(|n| n.parse().ok())
                .ok_or_else(unknown)?;
            let p = param(p).ok_or_else(unknown)?;
            let pre = format!("{side}.blocks.{n}");
            let cross = *side == "decoder" && *block == "attention";
            match (*block, *module) {
                ("self_attention", "layer_norm") => one(format!("{pre}.attn_ln.{p}")),
                ("attention", "layer_norm") if cross => one(format!("{pre}.cross_attn_ln.{p}")),
                ("ffn", "layer_norm") => one(format!("{pre}.mlp_ln.{p}")),
                ("ffn", "linear_0") => one(format!("{pre}.mlp.0.{p}")),
                ("ffn", "linear_1") => one(format!("{pre}.mlp.2.{p}")),
                ("self_attention", "linear_0") => Ok(Target::Split(vec![
                    Some(format!("{pre}.attn.query.{p}")),
                    (p == "weight").then(|| format!("{pre}.attn.key.{p}")),
                    Some(format!("{pre}.attn.value.{p}")),
                ])),
                ("self_attention", "linear_1") => one(format!("{pre}.attn.out.{p}")),
                ("attention", "linear_0") if cross => one(format!("{pre}.cross_attn.query.{p}")),
                ("attention", "linear_1") if cross => Ok(Target::Split(vec![
                    (p == "weight").then(|| format!("{pre}.cross_attn.key.{p}")),
                    Some(format!("{pre}.cross_attn.value.{p}")),
                ])),
                ("attention", "linear_2") if cross => one(format!("{pre}.cross_attn.out.{p}")),
                _ => Err(unknown()),
            }
        }
        _ => Err(unknown()),
    }
}

/// One tensor of the ggml file: a row range of a CT2 variable.
struct OutTensor<'m, 'a> {
    name: String,
    var: &'m Variable<'a>,
    /// Row-major shape as written (before reversing).
    shape: Vec<usize>,
    first_row: usize,
    f32_out: bool,
}

fn plan<'m, 'a>(model: &'m Ct2Model<'a>) -> Result<Vec<OutTensor<'m, 'a>>, GgmlError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a CT2 model.bin in memory: (name, shape, dtype code, data).
    fn ct2(vars: &[(&str, Vec<u32>, u8, Vec<u8>)]) -> Vec<u8> {
        let mut b = Vec::new();
        let s = |b: &mut Vec<u8>, s: &str| {
            b.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
            b.push(0);
        };
        b.extend_from_slice(&6u32.to_le_bytes());
        s(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&(vars.len() as u32).to_le_bytes());
        for (name, shape, code, data) in vars {
            s(&mut b, name);
            b.push(shape.len() as u8);
            for d in shape {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.push(*code);
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(data);
        }
        b.extend_from_slice(&1u32.to_le_bytes());
        s(&mut b, "decoder/projection/weight");
        s(&mut b, "decoder/embeddings/weight");
        b
    }

    fn f16s(vals: impl IntoIterator<Item = f32>) -> Vec<u8> {
        vals.into_iter()
            .flat_map(|v| f16::from_f32(v).to_le_bytes())
            .collect()
    }

    fn f32s(vals: impl IntoIterator<Item = f32>) -> Vec<u8> {
        vals.into_iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// A whole (tiny) Whisper: d = 2, one layer each side, 4 tokens.
    fn tiny_model() -> (Vec<u8>, String) {
        let d = 2u32;
        let mut vars: Vec<(String, Vec<u32>, u8, Vec<u8>)> = vec![
            (
                "encoder/num_heads".into(),
                vec![],
                2,
                1i16.to_le_bytes().to_vec(),
            ),
            (
                "decoder/num_heads".into(),
                vec![],
                2,
                1i16.to_le_bytes().to_vec(),
            ),
            ("decoder/pre_norm".into(), vec![], 1, vec![1]),
            (
                "encoder/conv1/weight".into(),
                vec![d, 80, 3],
                4,
                f16s((0..d * 240).map(|i| i as f32 / 64.0)),
            ),
            ("encoder/conv1/bias".into(), vec![d], 4, f16s([0.5, -0.5])),
            (
                "encoder/conv2/weight".into(),
                vec![d, d, 3],
                0,
                f32s((0..12).map(|i| i as f32)),
            ),
            ("encoder/conv2/bias".into(), vec![d], 0, f32s([1.0, 2.0])),
            (
                "encoder/position_encodings/encodings".into(),
                vec![3, d],
                4,
                f16s([0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
            ),
            (
                "encoder/layer_norm/gamma".into(),
                vec![d],
                4,
                f16s([1.0, 1.0]),
            ),
            (
                "encoder/layer_norm/beta".into(),
                vec![d],
                4,
                f16s([0.0, 0.0]),
            ),
            (
                "decoder/embeddings/weight".into(),
                vec![4, d],
                4,
                f16s((0..8).map(|i| i as f32)),
            ),
            (
                "decoder/position_encodings/encodings".into(),
                vec![2, d],
                4,
                f16s([0.0; 4]),
            ),
            (
                "decoder/layer_norm/gamma".into(),
                vec![d],
                4,
                f16s([1.0, 1.0]),
            ),
            (
                "decoder/layer_norm/beta".into(),
                vec![d],
                4,
                f16s([0.0, 0.0]),
            ),
        ];
        for side in ["encoder", "decoder"] {
            let mut blocks = vec![("self_attention", 2), ("ffn", 2)];
            if side == "decoder" {
                blocks.push(("attention", 3));
            }
            for (block, linears) in blocks {
                let p = format!("{side}/layer_0/{block}");
                vars.push((
                    format!("{p}/layer_norm/gamma"),
                    vec![d],
                    4,
                    f16s([1.0, 1.0]),
                ));
                vars.push((format!("{p}/layer_norm/beta"), vec![d], 4, f16s([0.0, 0.0])));
                for l in 0..linears {
                    let rows = match (block, l) {
                        ("self_attention", 0) => 3 * d,
                        ("attention", 1) => 2 * d,
                        _ => d,
                    };
                    // Row r of the weight is [r, r]; the bias is r + 0.5.
                    let w = f16s((0..rows * d).map(|i| (i / d) as f32));
                    vars.push((format!("{p}/linear_{l}/weight"), vec![rows, d], 4, w));
                    vars.push((
                        format!("{p}/linear_{l}/bias"),
                        vec![rows],
                        4,
                        f16s((0..rows).map(|r| r as f32 + 0.5)),
                    ));
                }
            }
        }
        let borrowed: Vec<(&str, Vec<u32>, u8, Vec<u8>)> = vars
            .iter()
            .map(|(n, s, c, b)| (n.as_str(), s.clone(), *c, b.clone()))
            .collect();
        let vocab = "!\nĠthe\nĊ\n<|endoftext|>\n".to_string();
        (ct2(&borrowed), vocab)
    }

    /// Reads the tensors back out of a ggml file: name → (ne, type, data).
    /// A tensor read back: name, ne (innermost first), type, data.
    type ReadTensor = (String, Vec<i32>, i32, Vec<u8>);

    fn read_ggml(b: &[u8]) -> (Vec<i32>, Vec<Vec<u8>>, Vec<ReadTensor>) {
        let mut r = Reader { bytes: b, pos: 0 };
        let i = |r: &mut Reader| r.u32("").unwrap() as i32;
        assert_eq!(r.u32("").unwrap(), GGML_MAGIC);
        let hp: Vec<i32> = (0..11).map(|_| i(&mut r)).collect();
        let (m, n) = (i(&mut r), i(&mut r));
        r.take((m * n * 4) as usize, "").unwrap();
        let nt = i(&mut r);
        let toks = (0..nt)
            .map(|_| {
                let l = i(&mut r);
                r.take(l as usize, "").unwrap().to_vec()
            })
            .collect();
        let mut tensors = Vec::new();
        while r.pos < b.len() {
            let (nd, nl, ty) = (i(&mut r), i(&mut r), i(&mut r));
            let ne: Vec<i32> = (0..nd).map(|_| i(&mut r)).collect();
            let name = String::from_utf8(r.take(nl as usize, "").unwrap().to_vec()).unwrap();
            let size = ne.iter().product::<i32>() as usize * if ty == 0 { 4 } else { 2 };
            tensors.push((name, ne, ty, r.take(size, "").unwrap().to_vec()));
        }
        (hp, toks, tensors)
    }

    #[test]
    fn name_mapping_table() {
        let one = |s: &str| Target::One(s.into());
        let cases = [
            ("encoder/conv1/weight", one("encoder.conv1.weight")),
            ("encoder/conv2/bias", one("encoder.conv2.bias")),
            (
                "encoder/position_encodings/encodings",
                one("encoder.positional_embedding"),
            ),
            (
                "decoder/position_encodings/encodings",
                one("decoder.positional_embedding"),
            ),
            (
                "decoder/embeddings/weight",
                one("decoder.token_embedding.weight"),
            ),
            ("encoder/layer_norm/gamma", one("encoder.ln_post.weight")),
            ("decoder/layer_norm/beta", one("decoder.ln.bias")),
            (
                "encoder/layer_3/self_attention/layer_norm/gamma",
                one("encoder.blocks.3.attn_ln.weight"),
            ),
            (
                "encoder/layer_0/self_attention/linear_1/bias",
                one("encoder.blocks.0.attn.out.bias"),
            ),
            (
                "encoder/layer_1/ffn/layer_norm/beta",
                one("encoder.blocks.1.mlp_ln.bias"),
            ),
            (
                "decoder/layer_2/ffn/linear_0/weight",
                one("decoder.blocks.2.mlp.0.weight"),
            ),
            (
                "decoder/layer_2/ffn/linear_1/bias",
                one("decoder.blocks.2.mlp.2.bias"),
            ),
            (
                "decoder/layer_0/attention/layer_norm/gamma",
                one("decoder.blocks.0.cross_attn_ln.weight"),
            ),
            (
                "decoder/layer_0/attention/linear_0/weight",
                one("decoder.blocks.0.cross_attn.query.weight"),
            ),
            (
                "decoder/layer_0/attention/linear_2/bias",
                one("decoder.blocks.0.cross_attn.out.bias"),
            ),
            ("decoder/num_heads", Target::Skip),
            ("decoder/scale_embeddings", Target::Skip),
            (
                "decoder/layer_1/self_attention/linear_0/weight",
                Target::Split(vec![
                    Some("decoder.blocks.1.attn.query.weight".into()),
                    Some("decoder.blocks.1.attn.key.weight".into()),
                    Some("decoder.blocks.1.attn.value.weight".into()),
                ]),
            ),
            (
                "encoder/layer_0/self_attention/linear_0/bias",
                Target::Split(vec![
                    Some("encoder.blocks.0.attn.query.bias".into()),
                    None,
                    Some("encoder.blocks.0.attn.value.bias".into()),
                ]),
            ),
            (
                "decoder/layer_3/attention/linear_1/weight",
                Target::Split(vec![
                    Some("decoder.blocks.3.cross_attn.key.weight".into()),
                    Some("decoder.blocks.3.cross_attn.value.weight".into()),
                ]),
            ),
            (
                "decoder/layer_3/attention/linear_1/bias",
                Target::Split(vec![
                    None,
                    Some("decoder.blocks.3.cross_attn.value.bias".into()),
                ]),
            ),
        ];
        for (ct2, want) in cases {
            assert_eq!(map_name(ct2).unwrap(), want, "{ct2}");
        }
        for bad in [
            "encoder/attention/layer_0",
            "encoder/layer_x/ffn/linear_0/weight",
            "joiner/w",
            "encoder/layer_0/attention/linear_0/weight",
            "decoder/conv1/weight",
        ] {
            assert!(matches!(map_name(bad), Err(GgmlError::Layout(_))), "{bad}");
        }
    }

    #[test]
    fn converts_a_tiny_model_and_splits_fused_projections() {
        let (bin, vocab) = tiny_model();
        let mut out = Vec::new();
        let rep = convert(&bin, &vocab, &mut out).unwrap();
        assert_eq!(rep.bytes as usize, out.len());
        assert_eq!(rep.tokens, 3);
        let (hp, toks, tensors) = read_ggml(&out);
        assert_eq!(hp, vec![4, 3, 2, 1, 1, 2, 2, 1, 1, 80, 1]);
        assert_eq!(toks, vec![b"!".to_vec(), b" the".to_vec(), b"\n".to_vec()]);
        // Encoder 5 + 15 per layer + 2 (ln_post), decoder 2 + 24 per layer + 2 (ln).
        assert_eq!(rep.tensors, 50);
        assert_eq!(tensors.len(), 50);
        let get = |n: &str| {
            tensors
                .iter()
                .find(|t| t.0 == n)
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        let halves = |b: &[u8]| {
            b.chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect::<Vec<_>>()
        };
        let floats = |b: &[u8]| {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect::<Vec<_>>()
        };
        // Fused QKV rows 0-1 / 2-3 / 4-5.
        for (n, row) in [("query", 0.0), ("key", 2.0), ("value", 4.0)] {
            let t = get(&format!("encoder.blocks.0.attn.{n}.weight"));
            assert_eq!((t.1.clone(), t.2), (vec![2, 2], 1));
            assert_eq!(halves(&t.3), vec![row, row, row + 1.0, row + 1.0], "{n}");
        }
        assert_eq!(
            floats(&get("encoder.blocks.0.attn.query.bias").3),
            vec![0.5, 1.5]
        );
        assert_eq!(
            floats(&get("encoder.blocks.0.attn.value.bias").3),
            vec![4.5, 5.5]
        );
        assert!(tensors
            .iter()
            .all(|t| t.0 != "encoder.blocks.0.attn.key.bias"));
        // Cross-attention K/V.
        assert_eq!(
            halves(&get("decoder.blocks.0.cross_attn.key.weight").3),
            vec![0.0, 0.0, 1.0, 1.0]
        );
        assert_eq!(
            halves(&get("decoder.blocks.0.cross_attn.value.weight").3),
            vec![2.0, 2.0, 3.0, 3.0]
        );
        assert_eq!(
            floats(&get("decoder.blocks.0.cross_attn.value.bias").3),
            vec![2.5, 3.5]
        );
        // Conv bias (n, 1) f32; ne is reversed.
        let b = get("encoder.conv1.bias");
        assert_eq!(
            (b.1.clone(), b.2, floats(&b.3)),
            (vec![1, 2], 0, vec![0.5, -0.5])
        );
        assert_eq!(get("encoder.conv1.weight").1, vec![3, 80, 2]);
        // f32 source → f16 for a 3-D weight, f32 kept for the bias.
        let c2 = get("encoder.conv2.weight");
        assert_eq!((c2.2, halves(&c2.3)[5]), (1, 5.0));
        assert_eq!(floats(&get("encoder.conv2.bias").3), vec![1.0, 2.0]);
        let pe = get("encoder.positional_embedding");
        assert_eq!(
            (pe.1.clone(), pe.2, floats(&pe.3)),
            (vec![2, 3], 0, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
        );
        // Deterministic.
        let mut again = Vec::new();
        convert(&bin, &vocab, &mut again).unwrap();
        assert_eq!(out, again);
    }

    #[test]
    fn mel_filters_have_the_known_shape() {
        let f = mel_filters(N_MELS, N_FFT, SAMPLE_RATE);
        assert_eq!(f.len(), 80 * 201);
        assert!(f.iter().all(|&v| v >= 0.0 && v.is_finite()));
        for m in 0..80 {
            let row = &f[m * 201..(m + 1) * 201];
            assert!(row.iter().any(|&v| v > 0.0), "band {m} is empty");
            // Triangles: non-zero weights form one contiguous run.
            let nz: Vec<usize> = (0..201).filter(|&i| row[i] > 0.0).collect();
            assert_eq!(nz.last().unwrap() - nz[0] + 1, nz.len(), "band {m}");
        }
        // Bin 0 (DC) belongs to no band; the lowest band peaks at bin 1.
        assert!((0..80).all(|m| f[m * 201] == 0.0));
        // Slaney normalisation: each triangle's area in Hz is 1, so the weights
        // times the 40 Hz bin width sum to about 1 (a band only a few bins wide
        // is off by up to ~7%, depending on where the bins fall).
        let area = |m: usize| {
            f[m * 201..(m + 1) * 201]
                .iter()
                .map(|&v| f64::from(v))
                .sum::<f64>()
                * 40.0
        };
        for m in 0..80 {
            assert!((area(m) - 1.0).abs() < 0.1, "band {m} area {}", area(m));
        }
        let mean = (0..80).map(area).sum::<f64>() / 80.0;
        assert!((mean - 1.0).abs() < 0.01, "mean area {mean}");
        // Values from an independent (Python) evaluation of librosa's formula.
        assert!((f[1] - 0.024_862_594).abs() < 1e-8, "{}", f[1]);
        let peak40 = f[40 * 201..41 * 201].iter().cloned().fold(0f32, f32::max);
        assert!((peak40 - 0.014_735_566).abs() < 1e-8, "{peak40}");
        assert!((f[79 * 201 + 200]).abs() < 1e-9);
    }

    #[test]
    fn bytes_to_unicode_round_trips() {
        let t = bytes_to_unicode();
        let mut seen = std::collections::HashSet::new();
        for (b, &c) in t.iter().enumerate() {
            assert!(seen.insert(c), "duplicate char for byte {b}");
            assert!(!c.is_control() && !c.is_whitespace(), "byte {b} → {c:?}");
            assert_eq!(token_bytes(&c.to_string(), &t).unwrap(), vec![b as u8]);
        }
        assert_eq!(t[b'A' as usize], 'A');
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        let all: String = t.iter().collect();
        assert_eq!(
            token_bytes(&all, &t).unwrap(),
            (0..=255u8).collect::<Vec<_>>()
        );
        assert!(matches!(
            token_bytes("€", &t),
            Err(GgmlError::Vocabulary(_))
        ));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let (bin, vocab) = tiny_model();
        // Every truncation point fails cleanly.
        for cut in [0, 3, 4, 10, 20, 40, 100, bin.len() / 2, bin.len() - 40] {
            let e = convert(&bin[..cut], &vocab, std::io::sink()).unwrap_err();
            assert!(
                matches!(e, GgmlError::Truncated(_) | GgmlError::BadHeader(_)),
                "cut {cut}: {e}"
            );
        }
        // Garbage and a wrong version.
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(convert(&garbage, &vocab, std::io::sink()).is_err());
        let mut v9 = bin.clone();
        v9[0] = 9;
        assert!(matches!(
            convert(&v9, &vocab, std::io::sink()),
            Err(GgmlError::BadHeader(_))
        ));
        // A huge variable count must not be allocated.
        let mut huge = bin[..4 + 2 + 12 + 4].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(parse_ct2(&huge), Err(GgmlError::Truncated(_))));
        // Unknown dtype code 9 on the first variable.
        let mut bad = ct2(&[("encoder/num_heads", vec![], 9, vec![1])]);
        assert!(matches!(
            parse_ct2(&bad),
            Err(GgmlError::UnknownDtype { code: 9, .. })
        ));
        // int8 weights are parsed but cannot be converted.
        bad = ct2(&[("encoder/conv1/bias", vec![2], 1, vec![1, 2])]);
        assert!(matches!(
            plan(&parse_ct2(&bad).unwrap()),
            Err(GgmlError::UnsupportedDtype { .. })
        ));
        // An unknown variable name, and a model without the embeddings.
        bad = ct2(&[("encoder/joiner/weight", vec![1], 0, vec![0; 4])]);
        assert!(matches!(
            plan(&parse_ct2(&bad).unwrap()),
            Err(GgmlError::Layout(_))
        ));
        assert!(matches!(
            convert(&bad, &vocab, std::io::sink()),
            Err(GgmlError::Layout(_))
        ));
        // Size that disagrees with the shape.
        bad = ct2(&[("encoder/conv1/bias", vec![3], 4, vec![0; 4])]);
        assert!(matches!(parse_ct2(&bad), Err(GgmlError::BadHeader(_))));
        // Vocabulary mismatch.
        assert!(matches!(
            convert(&bin, "a\nb\n", std::io::sink()),
            Err(GgmlError::Vocabulary(_))
        ));
        assert!(matches!(
            convert(&bin, "a\nb\nc\nd\n", std::io::sink()),
            Err(GgmlError::Vocabulary(_))
        ));
    }

    #[test]
    fn convert_files_leaves_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let (bin, vocab) = tiny_model();
        std::fs::write(dir.path().join("model.bin"), &bin[..bin.len() / 3]).unwrap();
        std::fs::write(dir.path().join("vocabulary.txt"), &vocab).unwrap();
        let out = dir.path().join("ggml.bin");
        let e = convert_files(
            &dir.path().join("model.bin"),
            &dir.path().join("vocabulary.txt"),
            &out,
        )
        .unwrap_err();
        assert!(matches!(e, GgmlError::Truncated(_)), "{e}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no output, no temp file"
        );
        let e = convert_files(
            &dir.path().join("nope.bin"),
            &dir.path().join("vocabulary.txt"),
            &out,
        )
        .unwrap_err();
        assert!(e.to_string().contains("nope.bin"), "{e}");
    }
}
