#!/usr/bin/env bash
# Run: bash examples/nli_basins.sh [OUT]   (about 1 hour on 2 CPU cores; minutes on a GPU)
#
# Juneja et al. (2023) on generated data: finetune 8 MiniLM models on the MNLI-like task that
# differ only in seed (head initialisation and data order), map the N x N connectivity of their
# validation loss surface, cluster it by convexity gap, and test whether the basins predict
# accuracy on the HANS-like non-entailing diagnostics (with the mnli_to_hans label map) better
# than epsilon-sharpness does. Every evaluated point goes through OUT/results.sqlite: rerun to
# resume.
set -euo pipefail
OUT=${1:-weightscape-out/nli-basins}
WS=${WS:-.venv/bin/weightscape}
PY=${PY:-.venv/bin/python}

for seed in 0 1 2 3 4 5 6 7; do
  if [ ! -f "$OUT/zoo/nli-s$seed/step-250/model.safetensors" ]; then
    $WS finetune --name "nli-s$seed" --task mnli_like --split train --steps 250 --lr 1e-4 \
      --batch-size 32 --head-seed "$seed" --data-seed "$seed" --save-steps 50,125 \
      --out "$OUT/zoo"
  fi
done

# The grid over the final checkpoints only (the zoo also holds steps 50 and 125).
$PY - "$OUT" <<'PY'
import sys, yaml
out = sys.argv[1]
zoo = yaml.safe_load(open(f"{out}/zoo/zoo.yaml"))
zoo["models"] = [m for m in zoo["models"] if "@" not in m["name"]]
yaml.safe_dump(zoo, open(f"{out}/zoo/final.yaml", "w"), sort_keys=False)
PY

$WS grid --zoo "$OUT/zoo/final.yaml" --task mnli_like --split validation --subset 512 \
  --points 11 --out "$OUT/grid" --store "$OUT/results.sqlite"

diagnostics=()
for h in lexical_overlap subsequence constituent; do
  diagnostics+=(--diagnostic "hans_like_${h}_non_entailing" --diagnostic "hans_like_${h}_entailing")
done
$WS basins "$OUT/grid" --task mnli_like --split validation --subset 512 \
  --label-map mnli_to_hans "${diagnostics[@]}" --sharpness-steps 20 --sharpness-examples 128 \
  --store "$OUT/results.sqlite"
