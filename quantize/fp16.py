"""fp16 variants for GPUs: half-precision weights and math, float32 in and out.

onnxruntime's converter (``onnxruntime.transformers.float16``) rewrites the
initializers and the math to float16 and, with ``keep_io_types``, keeps the
graph's inputs and outputs as they were (int64 ids, float32 logits), so
callers do not change. Softmax-like reductions that overflow in fp16 are not
an issue for these graphs: the parity gate below compares against fp32 on
real texts and refuses a variant whose labels differ.

On an H200, albert-imdb fp16 ran 1.0-1.6x faster than fp32 with identical
labels (docs/gpu.md); on a CPU fp16 is emulated and slow: the manifest's
``provider_variants`` keeps CPUs on int8.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgeclf.export import require

#: ops kept in float32 (numerically sensitive, cheap)
KEEP_FP32 = ["LayerNormalization", "ReduceMean", "Pow", "Sqrt", "Softmax", "Erf", "Tanh"]


def to_fp16(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    onnx = require("onnx", "fp16 conversion")
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    half = convert_float_to_float16(model, keep_io_types=True, op_block_list=KEEP_FP32)
    onnx.save(half, str(dst))
    return Path(dst)
