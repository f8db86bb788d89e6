#!/usr/bin/env bash
# Run: bash examples/regions_study.sh [OUT]   (about 2 hours on 2 CPU cores; see docs/regions.md)
#
# Gueta et al. (2023), "Knowledge is a Region in Weight Space", on real data: MiniLM finetuned
# on the four vaderSentiment datasets, BBC News and the generated NLI task, three seeds each
# (examples/regions/zoo-*.yaml), then:
#   similarity  task vectors, cosine/Euclidean matrices, clustering accuracy by dataset and family
#   region      PB of In/In'/Ex at three granularities, extrapolation, moves from the centroids,
#               interpolation across data (all by the generalised loss: a linear probe)
#   fuse        BitFit from the centroid of the other datasets' models vs from MiniLM
# and a second zoo over data sizes (RT and NLI on 200 and 3200 examples) clustered by type and
# by size. Every step resumes: finished runs are skipped, evaluated points come from the store.
set -euo pipefail
OUT=${1:-weightscape-out/regions}
WS=${WS:-.venv/bin/weightscape}

for part in rt amazon tweets nyt bbc nli; do
  $WS finetune --zoo-file "examples/regions/zoo-$part.yaml" --out "$OUT/zoo" --no-progress
done
for part in rtsize nlisize; do
  $WS finetune --zoo-file "examples/regions/zoo-$part.yaml" --out "$OUT/size-zoo" --no-progress
done

$WS similarity --zoo "$OUT/zoo/zoo.yaml" --base minilm --by dataset --by family \
  --out "$OUT/similarity"
$WS similarity --zoo "$OUT/size-zoo/zoo.yaml" --base minilm --by dataset --by train_size \
  --out "$OUT/size-similarity"

$WS region --zoo "$OUT/zoo/zoo.yaml" --base minilm --hull 10 --random 3 \
  --probe-train 384 --probe-test 256 --max-length 64 --max-pairs 6 \
  --out "$OUT/region" --no-progress

$WS fuse --zoo "$OUT/zoo/zoo.yaml" --base minilm --steps 100 --lr 1e-3 --batch-size-train 16 \
  --few-shot 64 --seeds 0 --subset 512 --max-length 64 --out "$OUT/fuse" --no-progress
