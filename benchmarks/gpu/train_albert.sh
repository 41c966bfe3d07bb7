#!/usr/bin/env bash
# Train the embedded ALBERTs on a GPU machine (how the shipped checkpoints were made).
# Needs: python3 with torch + transformers (any recent version), the repo, and WORK
# prepared on a CPU machine by `python -m edgeclf.export.albert_recipe teach en|zh`.
# Usage: benchmarks/gpu/train_albert.sh WORK OUT
set -euo pipefail
WORK=$1 OUT=$2
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# the package as setuptools lays it out (runtime/ -> edgeclf, export/ -> edgeclf.export ...), no build needed
rm -rf /tmp/edgeclf-site && mkdir -p /tmp/edgeclf-site
cp -r runtime /tmp/edgeclf-site/edgeclf && cp -r export quantize /tmp/edgeclf-site/edgeclf/
export PYTHONPATH=/tmp/edgeclf-site${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi -L || true
R="python3 -m edgeclf.export.albert_recipe train"
# English and Chinese share the GPU (each model is small): run side by side
$R en --work "$WORK" --out "$OUT/albert-imdb" --mlm-seconds "${EN_MLM:-240}" --epochs 3 \
    --batch-size 64 --lr "${EN_LR:-3e-4}" --alpha 0.5 --jobs 12 >"$OUT/en.log" 2>&1 &
EN=$!
{
  $R zh --work "$WORK" --out "$OUT/albert-zh-rumor" --mlm-seconds "${ZH_MLM:-90}" --epochs 6 \
      --batch-size 32 --lr 3e-4 --alpha 0.5 --no-distil-unlabeled --jobs 3
  $R zh --work "$WORK" --experiment heldout-ced --out "$OUT/zh-heldout-ced" --mlm-seconds 30 --epochs 6 \
      --batch-size 32 --lr 3e-4 --alpha 0.5 --jobs 3
} >"$OUT/zh.log" 2>&1 &
ZH=$!
wait $EN; wait $ZH
