"""Adaptive barrier refinement against dense 26-point walks, over every pair of a zoo.

For each pair the same engine (no store, so nothing is reused between the two) walks the line on
the dense grid (t = k/25) and adaptively (``walk_path_adaptive``); the table gives both loss
barriers, the error, and the points each evaluated. The issue's target: within 0.005 of the dense
barrier with at most 40% of its evaluations, on real finetuned pairs with and without barriers.

Run: .venv/bin/python benchmarks/adaptive.py --zoo ZOO.yaml [--task rotten_tomatoes --subset 512]
The zoo and task flags are the grid command's (``weightscape grid --help``), --points excepted:
the dense grid is --lattice (26). Without --zoo or --models it prints how to run it and exits.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGET_ERROR, TARGET_SHARE = 0.005, 0.4


def parse(argv: list[str]):
    """The grid command's config (zoo, task, evaluation) and the refinement's settings."""
    from pydantic import ValidationError

    from weightscape.cli.flags import add_flags, flag_names, problems, raw_values
    from weightscape.geometry.refine import RefineSettings
    from weightscape.studies.grid import Config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_flags(parser, Config)
    parser.add_argument("--lattice", type=int, default=26, help="dense grid (default: 26)")
    parser.add_argument("--tol", type=float, default=0.001, help="refinement tolerance")
    parser.add_argument("--max-points", type=int, default=None, help="default: 40%% of lattice")
    args = parser.parse_args(argv)
    if getattr(args, "zoo", None) is None and getattr(args, "models", None) is None:
        print("No zoo given: skipped. Run with --zoo ZOO.yaml (or --models 'runs/*/step-N').")
        return None
    try:
        config = Config.model_validate(raw_values(args, Config))
    except ValidationError as err:
        sys.exit("\n".join(problems(err, flag_names(Config))))
    refine = RefineSettings(lattice=args.lattice, tol=args.tol, max_points=args.max_points)
    return config, refine


def compare_pair(engine, refine) -> dict:
    """Dense and adaptive walks of one engine's pair: barriers, gaps and evaluations."""
    from weightscape.analyses.interpolation import walk_path, walk_path_adaptive
    from weightscape.geometry import even_grid

    start = time.perf_counter()
    dense = walk_path(engine, even_grid(refine.lattice))
    middle = time.perf_counter()
    adaptive = walk_path_adaptive(engine, refine)
    end = time.perf_counter()
    d, a = dense.summary["loss"], adaptive.summary["loss"]
    return {
        "pair": " - ".join(dense.anchors),
        "dense_barrier": d["barrier_height"],
        "adaptive_barrier": a["barrier_height"],
        "error": abs(a["barrier_height"] - d["barrier_height"]),
        "dense_gap": d["convexity_gap"],
        "adaptive_gap": a["convexity_gap"],
        "dense_points": dense.computed,
        "adaptive_points": adaptive.computed,
        "stopped": adaptive.summary["adaptive"]["stopped"],
        "dense_seconds": middle - start,
        "adaptive_seconds": end - middle,
    }


def main(argv: list[str] | None = None) -> int:
    parsed = parse(sys.argv[1:] if argv is None else argv)
    if parsed is None:
        return 0
    config, refine = parsed
    from weightscape.evaluation.engine import Engine

    zoo = config.load_zoo()
    task = config.load_task()
    print(f"{len(zoo)} models, {len(task)} examples of {task.name}; dense grid {refine.lattice}")
    header = (
        f"{'pair':40s} {'dense':>8s} {'adapt':>8s} {'error':>7s} {'gap d':>7s} {'gap a':>7s} "
        f"{'points':>7s} {'s dense':>8s} {'s adapt':>8s}  stopped"
    )
    print(header)
    rows = []
    for first, second in itertools.combinations(list(zoo), 2):
        engine = Engine(
            [first, second],
            task,
            space=config.parameter_space(),
            settings=config.eval_settings(),
            device=config.device,
            tokenizer=config.tokenizer or zoo.tokenizer,
            probe=config.probe(),
        )
        row = compare_pair(engine, refine)
        rows.append(row)
        print(
            f"{row['pair'][:40]:40s} {row['dense_barrier']:8.4f} {row['adaptive_barrier']:8.4f} "
            f"{row['error']:7.4f} {row['dense_gap']:7.4f} {row['adaptive_gap']:7.4f} "
            f"{row['adaptive_points']:>3d}/{row['dense_points']:<3d} "
            f"{row['dense_seconds']:8.2f} {row['adaptive_seconds']:8.2f}  {row['stopped']}",
            flush=True,
        )
    worst = max(r["error"] for r in rows)
    spent = sum(r["adaptive_points"] for r in rows) / sum(r["dense_points"] for r in rows)
    shares = [r["adaptive_points"] / r["dense_points"] for r in rows]
    met = worst <= TARGET_ERROR and max(shares) <= TARGET_SHARE
    print(
        f"{len(rows)} pairs: worst barrier error {worst:.4f}; evaluations {spent:.1%} of dense "
        f"(saving {1 - spent:.1%}, most on one pair {max(shares):.1%}); target (error <= "
        f"{TARGET_ERROR}, <= {TARGET_SHARE:.0%} of the points) {'met' if met else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
