//! Unit tests of the converter: the name map, a whole tiny model converted
//! and read back, the mel filters, the vocabulary bytes, malformed input.

use half::f16;

use super::ct2::Reader;
use super::writer::plan;
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
