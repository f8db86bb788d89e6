"""How a grid's time and peak memory grow with models (N), points per path (K) and examples.

Each configuration runs ``connectivity_grid`` (the engine behind ``weightscape grid``) in its own
process with a fresh results store, so every point is computed and the peak RSS is that run's own.
Three sweeps share one baseline (N=2, K=6, 128 examples):

* N = 2, 4, 8 models at K = 6 (the issue's memory target: peak memory grows by less than one
  model's size from N = 2 to N = 8, since anchors stay memory-mapped and points are written into
  one working model);
* K = 6, 11, 26 points per path at N = 2;
* 128, 256, 512, 1024 examples at N = 2, K = 6.

Run: .venv/bin/python benchmarks/scaling.py --zoo ZOO.yaml [--task rotten_tomatoes]
The zoo needs at least max(--models) finetuned classifiers of one architecture. Prints one table
(seconds, points, seconds per point, peak RSS) and the N = 2 -> 8 memory growth against the size of
one model's weight files.
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
PYTHON = sys.executable


def child(zoo: str, n: int, points: int, subset: int, task: str, store: str) -> dict:
    """One grid in this process: its seconds, points, forward passes and peak RSS."""
    import torch

    from weightscape.analyses.connectivity import connectivity_grid
    from weightscape.data import load_task, split
    from weightscape.data import subset as take
    from weightscape.evaluation.engine import EngineSpec
    from weightscape.models.zoo import Zoo
    from weightscape.runtime.store import ResultStore

    torch.set_num_threads(2)
    models = Zoo.from_manifest(zoo)
    examples = take(split(load_task(task), seed=0)["test"], subset, seed=0)
    spec = EngineSpec(tuple(list(models)[:n]), examples, device="cpu", tokenizer=models.tokenizer)
    start = time.perf_counter()
    grid = connectivity_grid(spec, points=points, store=ResultStore(store))
    seconds = time.perf_counter() - start
    peak_kib = peak_rss_kib()
    return {
        "n": n,
        "points_per_path": points,
        "examples": subset,
        "seconds": seconds,
        "computed": grid.stats["computed_points"],
        "peak_mib": peak_kib / 1024,
    }


def peak_rss_kib() -> int:
    """This process's peak resident memory (VmHWM), KiB. Not ``ru_maxrss``: across exec it keeps
    the high-water mark of the process that forked this one."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def configurations(models: list[int], points: list[int], subsets: list[int]):
    """(N, K, examples): the three sweeps around the baseline (N=2, K=6, 128), each once."""
    seen = []
    for config in (
        *((n, points[0], subsets[0]) for n in models),
        *((models[0], k, subsets[0]) for k in points),
        *((models[0], points[0], s) for s in subsets),
    ):
        if config not in seen:
            seen.append(config)
    return seen


def model_mib(zoo: str) -> float:
    """The size of the first model's weight files, MiB."""
    from weightscape.models.zoo import Zoo

    first = next(iter(Zoo.from_manifest(zoo)))
    return sum(f.stat().st_size for f in first.weight_files()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", help="zoo manifest of finetuned classifiers")
    parser.add_argument("--task", default="rotten_tomatoes")
    parser.add_argument("--models", default="2,4,8")
    parser.add_argument("--points", default="6,11,26")
    parser.add_argument("--subsets", default="128,256,512,1024")
    parser.add_argument("--child", nargs=4, metavar=("N", "K", "EXAMPLES", "STORE"))
    args = parser.parse_args()
    if args.zoo is None:
        print("No zoo given: skipped. Run with --zoo ZOO.yaml (at least 8 models of one base).")
        return
    if args.child:
        n, k, s, store = args.child
        print(json.dumps(child(args.zoo, int(n), int(k), int(s), args.task, store)))
        return
    as_ints = lambda text: [int(v) for v in text.split(",")]  # noqa: E731
    rows = []
    for n, k, s in configurations(
        as_ints(args.models), as_ints(args.points), as_ints(args.subsets)
    ):
        with tempfile.TemporaryDirectory() as scratch:
            command = [PYTHON, __file__, "--zoo", args.zoo, "--task", args.task]
            command += ["--child", str(n), str(k), str(s), f"{scratch}/store.sqlite"]
            env = {**os.environ, "WEIGHTSCAPE_CACHE": f"{scratch}/cache"}
            done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode:
            sys.exit(f"N={n} K={k} examples={s} failed:\n{done.stderr}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        row = rows[-1]
        print(
            f"N={n:<2} K={k:<3} examples={s:<5} {row['seconds']:8.1f} s  "
            f"{row['computed']:>4} points  {row['seconds'] / row['computed']:6.3f} s/point  "
            f"peak {row['peak_mib']:7.0f} MiB",
            flush=True,
        )
    size = model_mib(args.zoo)
    first = rows[0]
    by_n = {
        r["n"]: r["peak_mib"]
        for r in rows
        if (r["points_per_path"], r["examples"]) == (first["points_per_path"], first["examples"])
    }
    low, high = min(by_n), max(by_n)
    growth = by_n[high] - by_n[low]
    verdict = "meets" if growth < size else "misses"
    print(
        f"peak memory N={low} -> N={high}: {by_n[low]:.0f} -> {by_n[high]:.0f} MiB "
        f"(+{growth:.0f} MiB); one model's weights: {size:.0f} MiB -> {verdict} the target "
        "(growth below one model)"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
