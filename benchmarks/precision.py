"""Reduced-precision evaluation against float32 on real finetuned pairs (issue 14, item 6).

For ``--pairs`` pairs of a zoo (models 1-2, 3-4, ... in manifest order first) the same line is
walked with ``--dtype float32``, ``bfloat16`` and ``float16`` (each combination computed in
float32 and cast once; only the forward pass runs in the reduced dtype), on one seeded subset of
the task. It prints, per pair and dtype: the loss barrier height and its error against float32,
the largest per-point mean-loss error, the fraction of (point, example) predictions that differ
from float32's, and the seconds per point. A dtype the CPU cannot run (or runs absurdly slowly:
over ``--max-slowdown`` times float32's time per point) is reported as such and the rest still
measured.

Run: nice -n 10 .venv/bin/python benchmarks/precision.py --zoo /tmp/mzoo/zoo/zoo.yaml
     [--pairs 2 --points 11 --subset 256 --task rotten_tomatoes --split test
      --dtypes bfloat16,float16]
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DTYPES = ("float32", "bfloat16", "float16")


def walk(anchors, task, dtype: str, ts, max_seconds: float = float("inf")) -> dict:
    """Losses, predictions and mean losses at each t of the line, in ``dtype``; or why not."""
    import numpy as np

    from weightscape.evaluation.engine import Engine
    from weightscape.evaluation.evaluator import EvalSettings

    engine = Engine(anchors, task, settings=EvalSettings(dtype=dtype), device="cpu")
    losses, predictions = [], []
    start = time.perf_counter()
    for k, t in enumerate(ts):
        try:
            point = engine.evaluate([1.0 - t, t])
        except RuntimeError as err:  # an op this CPU build has no kernel for in this dtype
            return {"skipped": f"unsupported on this CPU: {str(err).splitlines()[0]}"}
        losses.append(point.losses)
        predictions.append(point.predictions)
        per_point = (time.perf_counter() - start) / (k + 1)
        if per_point > max_seconds:
            return {"skipped": f"too slow: {per_point:.1f} s per point"}
    return {
        "losses": np.vstack(losses),
        "predictions": np.vstack(predictions),
        "curve": np.vstack(losses).mean(axis=1),
        "seconds_per_point": (time.perf_counter() - start) / len(ts),
    }


def compare(reference: dict, other: dict) -> dict:
    """Errors of ``other`` against the float32 walk ``reference``."""
    import numpy as np

    from weightscape.metrics.curves import barrier_height

    barrier = barrier_height(other["curve"])
    return {
        "barrier": barrier,
        "barrier_error": abs(barrier - barrier_height(reference["curve"])),
        "max_point_loss_error": float(np.max(np.abs(other["curve"] - reference["curve"]))),
        "flipped": float(np.mean(other["predictions"] != reference["predictions"])),
    }


def main(argv: list[str] | None = None) -> None:
    import numpy as np
    import torch

    from weightscape.data import load_task, split, subset
    from weightscape.models.zoo import Zoo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True, help="zoo manifest (zoo.yaml)")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--skip-pairs", type=int, default=0, help="start at this pair")
    parser.add_argument("--points", type=int, default=11)
    parser.add_argument("--subset", type=int, default=256)
    parser.add_argument("--task", default="rotten_tomatoes")
    parser.add_argument("--split", default="test")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtypes", default=",".join(DTYPES[1:]), help="compared to float32")
    parser.add_argument("--max-slowdown", type=float, default=10.0, help="x float32's time")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    zoo = Zoo.from_manifest(args.zoo)
    task = subset(split(load_task(args.task))[args.split], args.subset, seed=0)
    ts = np.linspace(0.0, 1.0, args.points)
    models = list(zoo)
    disjoint = list(zip(models[0::2], models[1::2], strict=False))  # no model in two pairs
    pairs = (disjoint + [p for p in itertools.combinations(models, 2) if p not in disjoint])[
        args.skip_pairs : args.skip_pairs + args.pairs
    ]
    print(
        f"{args.task}/{args.split}, {args.subset} examples, {args.points} points, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"{'pair':<14}{'dtype':<10}{'barrier':>9}{'|err|':>9}{'max pt err':>11}"
        f"{'flipped':>9}{'s/point':>9}"
    )
    for a, b in pairs:
        name = f"{a.name}-{b.name}"
        reference = walk([a, b], task, "float32", ts)
        slowest = args.max_slowdown * reference["seconds_per_point"]
        for dtype in ("float32", *args.dtypes.split(",")):
            result = reference if dtype == "float32" else walk([a, b], task, dtype, ts, slowest)
            if "skipped" in result:
                print(f"{name:<14}{dtype:<10}{result['skipped']}", flush=True)
                continue
            row = compare(reference, result)
            print(
                f"{name:<14}{dtype:<10}{row['barrier']:>9.4f}{row['barrier_error']:>9.1e}"
                f"{row['max_point_loss_error']:>11.1e}{row['flipped']:>9.2%}"
                f"{result['seconds_per_point']:>9.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
