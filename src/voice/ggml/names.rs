//! The name map: where each CT2 variable goes in the ggml file, with the
//! fused projections to be cut into their parts.

use super::GgmlError;

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
