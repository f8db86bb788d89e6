"""Peak memory and time per point of a path walk: the engine against a naive walk.

Each measurement runs in its own process (peak RSS is per process). The engine writes every point
in place into one working model from memory-mapped anchors; the naive walk loads every anchor as a
full model and builds each point as a new model (deepcopy + load_state_dict), as paper scripts do.

Run: .venv/bin/python benchmarks/walk_memory.py [--layers 6 --hidden 384 --points 11]
Prints one table; ratios are naive / engine measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_anchors(root: Path, n: int, layers: int, hidden: int) -> list[Path]:
    """Random BERT classifiers of the given size, saved as safetensors folders."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{i}" for i in range(200))]
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(words)})
    config = BertConfig(
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=12,
        intermediate_size=4 * hidden,
        num_labels=2,
    )
    paths = []
    for seed in range(n):
        torch.manual_seed(seed)
        folder = root / f"anchor{seed}"
        BertForSequenceClassification(config).save_pretrained(str(folder))
        tok.save_pretrained(str(folder))
        paths.append(folder)
    return paths


def task(n: int = 64):
    from weightscape.data import make_task

    texts = [" ".join(f"w{(i * 7 + j) % 200}" for j in range(24)) for i in range(n)]
    return make_task("bench", texts, [i % 2 for i in range(n)], ("a", "b"))


def run_engine(anchors: list[str], points: int) -> dict:
    from weightscape.analyses.interpolation import walk_path
    from weightscape.evaluation.engine import Engine
    from weightscape.geometry import even_grid
    from weightscape.models.checkpoint import Checkpoint

    engine = Engine([Checkpoint.from_path(a) for a in anchors], task(), device="cpu")
    path = "linear" if len(anchors) == 2 else "bezier"
    start = time.perf_counter()
    walk_path(engine, even_grid(points), path=path)
    return {"seconds_per_point": (time.perf_counter() - start) / (points + 2)}


def run_naive(anchors: list[str], points: int) -> dict:
    import copy

    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification

    from weightscape.evaluation.evaluator import Evaluator, load_tokenizer
    from weightscape.geometry import even_grid, get_path

    models = [
        AutoModelForSequenceClassification.from_pretrained(a, trust_remote_code=False).eval()
        for a in anchors
    ]
    states = [m.state_dict() for m in models]
    evaluator = Evaluator(load_tokenizer(anchors[0]), task())
    path = "linear" if len(anchors) == 2 else "bezier"
    rows = np.vstack(
        [
            np.eye(len(anchors))[[0, -1]],
            get_path(path, len(anchors)).coefficients(even_grid(points)),
        ]
    )
    start = time.perf_counter()
    for row in rows:
        point = copy.deepcopy(models[0])
        mixed = {
            k: sum(float(c) * s[k] for c, s in zip(row, states, strict=True)) for k in states[0]
        }
        point.load_state_dict(mixed)
        with torch.inference_mode():
            evaluator.evaluate(point)
    return {"seconds_per_point": (time.perf_counter() - start) / len(rows)}


def child(kind: str, anchors: list[str], points: int) -> None:
    import torch

    torch.set_num_threads(2)
    result = (run_engine if kind == "engine" else run_naive)(anchors, points)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.update(rss_parts())
    print(json.dumps(result))


def rss_parts() -> dict:
    """Resident memory at the end of the walk, split into anonymous (private: models, copies,
    activations) and file-backed (memory-mapped checkpoint pages, reclaimable by the kernel)."""
    parts = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:")):
            key, value = line.split(":")
            parts[key.lower() + "_mib"] = int(value.split()[0]) / 1024
    return parts


def measure(kind: str, anchors: list[Path], points: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--points", str(points), *map(str, anchors)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_rss() -> float:
    """Peak RSS of a process that only imports torch + transformers and builds nothing."""
    code = (
        "import resource, torch, transformers, weightscape.evaluation.engine; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    return float(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--points", type=int, default=11)
    parser.add_argument("--child", default=None)
    parser.add_argument("anchors", nargs="*")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.anchors, args.points)
        return
    with tempfile.TemporaryDirectory() as tmp:
        anchors = make_anchors(Path(tmp), 3, args.layers, args.hidden)
        size = sum(f.stat().st_size for f in anchors[0].glob("*.safetensors")) / 2**20
        base = baseline_rss()
        print(
            f"model: {args.layers} layers, hidden {args.hidden}, {size:.1f} MiB of fp32 "
            f"weights; imports alone peak at {base:.0f} MiB RSS; {args.points} points + ends"
        )
        print(
            f"{'anchors':>7} {'walk':>6} {'peak RSS MiB':>13} {'above imports':>14} "
            f"{'in models':>10} {'s/point':>8}"
        )
        for n in (2, 3):
            rows = {kind: measure(kind, anchors[:n], args.points) for kind in ("engine", "naive")}
            for kind, r in rows.items():
                above = r["peak_rss_mib"] - base
                print(
                    f"{n:>7} {kind:>6} {r['peak_rss_mib']:>13.0f} {above:>14.0f} "
                    f"{above / size:>10.2f} {r['seconds_per_point']:>8.3f}"
                )
            ratio = (rows["naive"]["peak_rss_mib"] - base) / (rows["engine"]["peak_rss_mib"] - base)
            print(f"{'':>7} naive/engine memory above imports: {ratio:.2f}x")


if __name__ == "__main__":
    main()
