"""Subcommands: parse, validate, call the API, print. No logic of their own."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from weightscape.cli.options import (
    add_anchor_options,
    add_eval_options,
    add_probe_options,
    add_space_options,
    add_task_options,
    checkpoints_from_args,
    int_list,
    probe_from_args,
    settings_from_args,
    space_from_args,
    task_from_args,
)


def add_finetune(sub) -> None:
    """``weightscape finetune``: train one model (or a zoo file's runs), save checkpoints and zoo
    entries."""
    from weightscape.training.tuning import METHODS

    p = sub.add_parser("finetune", help="finetune a classifier and save checkpoints to a zoo")
    p.add_argument("--name", default=None, help="name of the run (folder and zoo entry)")
    p.add_argument(
        "--zoo-file",
        type=Path,
        default=None,
        help="YAML file describing many runs (a sweep); trains them all into OUT, skipping "
        "finished ones. It replaces the run options above; the task options apply when it "
        "names no task (see examples/sweep_seeds.yaml)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("weightscape-out/zoo"),
        help="zoo folder; checkpoints go to OUT/NAME/step-K, entries to OUT/zoo.yaml",
    )
    p.add_argument("--base", default="minilm", help="pretrained model folder or 'minilm'")
    p.add_argument("--method", default="full", choices=METHODS)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--head-seed", type=int, default=0, help="seed of the new head's init")
    p.add_argument("--data-seed", type=int, default=0, help="seed of data order and dropout")
    p.add_argument("--save-steps", type=int_list, default=(), help="also save at these steps")
    p.add_argument(
        "--device", default="cpu", help="where to train: cpu (default), auto, cuda, cuda:N"
    )
    tuning = p.add_argument_group("tuning (defaults: FinetuneConfig's)")
    tuning.add_argument("--lora-r", type=int, default=None, help="LoRA rank (8)")
    tuning.add_argument("--lora-alpha", type=float, default=None, help="LoRA alpha (16)")
    tuning.add_argument("--lora-dropout", type=float, default=None, help="LoRA dropout (0)")
    tuning.add_argument("--lora-target-modules", default=None, help="comma-separated (query,value)")
    tuning.add_argument("--adapter-bottleneck", type=int, default=None, help="adapter width (64)")
    tuning.add_argument(
        "--module-seed", type=int, default=None, help="seed of LoRA/adapter init (head seed)"
    )
    tuning.add_argument(
        "--init-noise-std", type=float, default=None, help="noise added to pretrained weights"
    )
    tuning.add_argument("--init-noise-seed", type=int, default=None, help="seed of that noise")
    tuning.add_argument(
        "--data-half", type=int, default=None, help="train on half 0 or 1 of the data"
    )
    tuning.add_argument("--data-half-seed", type=int, default=None, help="seed of the halves")
    tuning.add_argument(
        "--train-size", type=int, default=None, help="train on a seeded subsample of N examples"
    )
    tuning.add_argument("--train-size-seed", type=int, default=None, help="seed of the subsample")
    dynamics = p.add_argument_group("training dynamics (dataset cartography; off by default)")
    dynamics.add_argument(
        "--dynamics-examples",
        type=int,
        default=None,
        help="record p(true label) of N seeded training examples into OUT/NAME/dynamics.npz "
        "(for `weightscape knowledge`)",
    )
    dynamics.add_argument(
        "--dynamics-every",
        type=int,
        default=None,
        help="record every K steps and at the last (default: steps // 10); short runs see "
        "less than an epoch, so records are per K steps, not per epoch",
    )
    p.add_argument("--no-progress", action="store_true")
    add_task_options(p, default_split="train")
    p.set_defaults(run=run_finetune)


_FINETUNE_OPTIONAL = (
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "adapter_bottleneck",
    "module_seed",
    "init_noise_std",
    "init_noise_seed",
    "data_half",
    "data_half_seed",
    "train_size",
    "train_size_seed",
    "dynamics_examples",
    "dynamics_every",
)


def run_finetune(args: argparse.Namespace) -> None:
    from pydantic import ValidationError

    from weightscape.errors import WeightscapeError
    from weightscape.training.finetune import FinetuneConfig, finetune

    if args.zoo_file is not None:
        _run_zoo_file(args)
        return
    if not args.name:
        raise WeightscapeError("Give --name for one run, or --zoo-file for many.")
    optional = {k: getattr(args, k) for k in _FINETUNE_OPTIONAL if getattr(args, k) is not None}
    if args.lora_target_modules:
        optional["lora_target_modules"] = tuple(
            m.strip() for m in args.lora_target_modules.split(",") if m.strip()
        )
    try:
        config = FinetuneConfig(
            name=args.name,
            base=args.base,
            method=args.method,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            max_length=args.max_length,
            head_seed=args.head_seed,
            data_seed=args.data_seed,
            save_steps=args.save_steps,
            **optional,
        )
    except ValidationError as err:
        raise WeightscapeError(
            "; ".join(
                f"--{str(e['loc'][0]).replace('_', '-')}: "
                f"{e['msg'].removeprefix('Value error, ')}. Got {e['input']!r}"
                for e in err.errors()
            )
        ) from err
    saved = finetune(
        config,
        task_from_args(args),
        args.out,
        progress=not args.no_progress,
        device=args.device,
    )
    for checkpoint in saved:
        print(f"saved {checkpoint.name}: {checkpoint.path}")
    print(f"zoo manifest: {args.out / 'zoo.yaml'}")


def _run_zoo_file(args: argparse.Namespace) -> None:
    """``finetune --zoo-file``: every run of the file; the file's task, else the task options."""
    from weightscape.training.sweeps import expand, load_zoo_file, run_sweep

    zoo_file = load_zoo_file(args.zoo_file)
    task = zoo_file.task.load() if zoo_file.task is not None else task_from_args(args)
    report = run_sweep(
        expand(zoo_file), task, args.out, progress=not args.no_progress, device=args.device
    )
    for name in report.skipped:
        print(f"skipped {name}: already trained")
    for name in report.trained:
        print(f"trained {name}")
    print(f"zoo manifest: {args.out / 'zoo.yaml'}")


def add_interpolate(sub) -> None:
    """``weightscape interpolate``: walk a path between checkpoints."""
    p = sub.add_parser("interpolate", help="evaluate points on a path between checkpoints")
    add_anchor_options(
        p, "+", "checkpoint paths (or names in --zoo): 2 for a line, more for bezier/polychain"
    )
    p.add_argument("--path", default="linear", help="path type: linear, bezier, polychain")
    grid = p.add_mutually_exclusive_group()
    grid.add_argument(
        "--points",
        type=int,
        default=11,
        help="evenly spaced points over [0, 1], both ends included (default 11)",
    )
    grid.add_argument("--t", default=None, help="explicit t values, e.g. -0.5,0,0.5,1,1.5")
    grid.add_argument(
        "--extrapolate",
        action="store_true",
        help="Gueta et al.'s grid: 10 log steps 0..-31 and 1..32 around the 11-point line",
    )
    p.add_argument("--out", type=Path, default=Path("weightscape-out/interpolate"))
    add_task_options(p, default_split="test")
    add_space_options(p)
    add_eval_options(p)
    add_probe_options(p)
    p.set_defaults(run=run_interpolate)


def run_interpolate(args: argparse.Namespace) -> None:
    from weightscape.analyses.interpolation import walk_path
    from weightscape.evaluation.engine import Engine
    from weightscape.report.walk_outputs import format_table, write_walk
    from weightscape.runtime.store import ResultStore

    anchors = _resolve_anchors(args)
    ts = _t_values(args)
    task = task_from_args(args)
    engine = Engine(
        anchors,
        task,
        space=space_from_args(args),
        settings=settings_from_args(args),
        device=args.device,
        tokenizer=args.tokenizer,
        probe=probe_from_args(args),
    )
    store = ResultStore(args.store or args.out / "results.sqlite")
    walk = walk_path(engine, ts, path=args.path, store=store, progress=not args.no_progress)
    files = write_walk(walk, args.out)
    print(format_table(walk))
    print(
        f"computed {walk.computed} point(s), reused {len(ts) + 2 - walk.computed} from the "
        f"store or the walk itself"
    )
    print("wrote " + ", ".join(str(f) for f in files.values()))


def _resolve_anchors(args: argparse.Namespace):
    from weightscape.errors import WeightscapeError

    if len(args.anchors) < 2:
        raise WeightscapeError(
            f"interpolate needs at least 2 anchors (checkpoints). Got {len(args.anchors)}."
        )
    return checkpoints_from_args(args)


def _t_values(args: argparse.Namespace):
    import numpy as np

    from weightscape.errors import WeightscapeError
    from weightscape.geometry import even_grid, log_extrapolation_grid, parse_t_values

    if args.t is not None:
        ts = parse_t_values(args.t)
        if len(ts) < 2:
            raise WeightscapeError(f"Give at least 2 t values. Got {len(ts)} ('{args.t}').")
        return ts
    if args.extrapolate:
        forward, backward = log_extrapolation_grid()
        return np.concatenate([backward[::-1][:-1], even_grid(11), forward[1:]])
    return even_grid(args.points)


def add_grid(sub) -> None:
    """``weightscape grid``: the path between every pair of a zoo."""
    p = sub.add_parser("grid", help="interpolate every pair of a zoo into N x N matrices")
    models = p.add_mutually_exclusive_group(required=True)
    models.add_argument("--zoo", type=Path, help="zoo manifest (YAML/JSON)")
    models.add_argument("--models", help="glob of checkpoint folders, e.g. 'runs/*/step-150'")
    p.add_argument("--config", type=Path, default=None, help="config for bare weight files")
    p.add_argument("--tokenizer", type=Path, default=None, help="tokenizer folder")
    p.add_argument(
        "--base",
        type=Path,
        default=None,
        help="pretrained base folder or 'minilm' (for task-vector cosines); default: the zoo's "
        "base, else the 'base' tag every model carries, else none (no cosines)",
    )
    p.add_argument("--points", type=int, default=11, help="points per path, ends included")
    p.add_argument("--executor", default="inprocess", choices=("inprocess", "ray"))
    p.add_argument("--ray-address", default=None, help="existing Ray cluster (default: local)")
    p.add_argument("--workers", type=int, default=None, help="Ray workers")
    p.add_argument("--out", type=Path, default=Path("weightscape-out/grid"))
    add_task_options(p, default_split="validation")
    add_space_options(p)
    add_eval_options(p)
    add_probe_options(p)
    p.set_defaults(run=run_grid)


def run_grid(args: argparse.Namespace) -> None:
    from weightscape.evaluation.engine import EngineSpec
    from weightscape.report.grid_report import run_grid_study
    from weightscape.runtime.executor import get_executor
    from weightscape.runtime.store import ResultStore

    zoo = _zoo_from_args(args)
    spec = EngineSpec(
        tuple(zoo),
        task_from_args(args),
        space=space_from_args(args),
        settings=settings_from_args(args),
        device=args.device,
        tokenizer=args.tokenizer or zoo.tokenizer,
        probe=probe_from_args(args),
    )
    options = {"address": args.ray_address, "workers": args.workers}
    executor = get_executor(args.executor, **options) if args.executor == "ray" else get_executor()
    grid, files = run_grid_study(
        spec,
        args.out,
        points=args.points,
        store=ResultStore(args.store or args.out / "results.sqlite"),
        executor=executor,
        base=_grid_base(zoo, args.base),
        progress=not args.no_progress,
    )
    s = grid.stats
    print(
        f"{s['models']} models, {s['pairs']} pairs x {s['points_per_path']} points: "
        f"{s['computed_points']} points computed ({s['forward_passes']} forward passes) of "
        f"{s['unique_points']} distinct, in {s['seconds']} s"
    )
    print(f"wrote {args.out}: " + ", ".join(sorted(p.name for p in files)))


def add_basins(sub) -> None:
    """``weightscape basins``: cluster a grid and relate the clusters to diagnostics."""
    p = sub.add_parser(
        "basins",
        help="cluster a grid's models and test what the clusters "
        "predict (diagnostic accuracy, sharpness)",
    )
    p.add_argument("grid", type=Path, help="folder written by `weightscape grid`")
    p.add_argument(
        "--zoo",
        type=Path,
        default=None,
        help="zoo manifest (default: the checkpoint paths recorded in the grid)",
    )
    p.add_argument("--tokenizer", type=Path, default=None, help="tokenizer folder")
    p.add_argument("--matrix", default="loss_convexity_gap", help="grid matrix to cluster on")
    p.add_argument("--k", type=int, default=None, help="clusters (default: by eigengap)")
    p.add_argument("--delta", type=float, default=None, help="affinity length scale")
    p.add_argument(
        "--diagnostic",
        action="append",
        default=[],
        help="task each model is evaluated on whole (repeatable), e.g. "
        "hans_like_lexical_overlap_non_entailing",
    )
    p.add_argument(
        "--sharpness-steps",
        type=int,
        default=0,
        help="epsilon-sharpness ascent steps per model on the --task subset "
        "(0: skip; Juneja et al. use 8192)",
    )
    p.add_argument(
        "--sharpness-examples",
        type=int,
        default=128,
        help="random examples of the task subset the sharpness ascent uses",
    )
    p.add_argument("--out", type=Path, default=None, help="default: GRID/basins")
    add_task_options(p, default_split="validation")
    add_eval_options(p)
    p.set_defaults(run=run_basins)


def run_basins(args: argparse.Namespace) -> None:
    from weightscape.analyses.connectivity import ConnectivityGrid
    from weightscape.data import load_task, subset
    from weightscape.evaluation.engine import EngineSpec
    from weightscape.report.basin_report import run_basin_study
    from weightscape.runtime.store import ResultStore

    grid = ConnectivityGrid.load(args.grid)
    zoo = _grid_zoo(args, grid)
    out = args.out or args.grid / "basins"
    spec = EngineSpec(
        tuple(zoo),
        task_from_args(args),
        settings=settings_from_args(args),
        device=args.device,
        tokenizer=args.tokenizer or zoo.tokenizer,
    )
    diagnostics = [load_task(name) for name in args.diagnostic]
    sharpness_task = subset(spec.task, args.sharpness_examples, seed=args.subset_seed)
    analysis, files = run_basin_study(
        grid,
        spec,
        out,
        diagnostics=diagnostics,
        label_map=args.label_map,
        matrix=args.matrix,
        k=args.k,
        delta=args.delta,
        sharpness_steps=args.sharpness_steps,
        sharpness_task=sharpness_task,
        store=ResultStore(args.store or args.grid / "results.sqlite"),
        progress=not args.no_progress,
    )
    print(
        f"{analysis.k} clusters on {analysis.matrix} (delta {analysis.delta:.4g}): "
        + ", ".join(f"{n}={c}" for n, c in zip(analysis.names, analysis.labels, strict=True))
    )
    for metric, corr in analysis.correlations.items():
        r2 = analysis.regressions[metric]["r2"]
        print(
            f"  {metric}: Pearson r {corr['pearson_r']:.3f} with the centroid margin, "
            f"membership R^2 {r2:.3f}"
        )
    print(f"wrote {out}: " + ", ".join(sorted(p.name for p in files)))


def add_trajectories(sub) -> None:
    """``weightscape trajectories``: basin membership of runs over their saved steps."""
    p = sub.add_parser("trajectories", help="cluster the runs of a zoo at every saved step")
    p.add_argument(
        "--zoo",
        type=Path,
        required=True,
        help="zoo manifest whose runs saved the same steps (finetune --save-steps)",
    )
    p.add_argument("--tokenizer", type=Path, default=None, help="tokenizer folder")
    p.add_argument("--points", type=int, default=11, help="points per path, ends included")
    p.add_argument("--matrix", default="loss_convexity_gap", help="grid matrix to cluster on")
    p.add_argument("--k", type=int, default=2, help="clusters per step")
    p.add_argument("--out", type=Path, default=Path("weightscape-out/trajectories"))
    add_task_options(p, default_split="validation")
    add_space_options(p)
    add_eval_options(p)
    p.set_defaults(run=run_trajectories)


def run_trajectories(args: argparse.Namespace) -> None:
    from weightscape.analyses.trajectories import basin_trajectories
    from weightscape.evaluation.engine import EngineSpec
    from weightscape.models.zoo import Zoo
    from weightscape.report.basin_plots import plot_trajectory
    from weightscape.runtime.store import ResultStore

    zoo = Zoo.from_manifest(args.zoo)
    spec = EngineSpec(
        tuple(zoo)[:1],
        task_from_args(args),
        space=space_from_args(args),
        settings=settings_from_args(args),
        device=args.device,
        tokenizer=args.tokenizer or zoo.tokenizer,
    )
    trajectory = basin_trajectories(
        list(zoo),
        spec,
        points=args.points,
        matrix=args.matrix,
        k=args.k,
        store=ResultStore(args.store or args.out / "results.sqlite"),
        progress=not args.no_progress,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trajectory.json").write_text(json.dumps(trajectory.to_dict(), indent=1))
    for step, grid in trajectory.grids.items():
        grid.save(args.out / f"grid-step-{step}")
    plot_trajectory(trajectory, args.out / "trajectory.png")
    print("run".ljust(24) + " ".join(f"{s:>6}" for s in trajectory.steps))
    for run, row in zip(trajectory.runs, trajectory.labels, strict=True):
        print(run.ljust(24) + " ".join(f"{v:>6}" for v in row))
    print(f"wrote {args.out}: trajectory.json, trajectory.png, grid-step-*/")


def _grid_zoo(args: argparse.Namespace, grid):
    from weightscape.errors import WeightscapeError
    from weightscape.models.checkpoint import Checkpoint
    from weightscape.models.zoo import Zoo

    if args.zoo is not None:
        zoo = Zoo.from_manifest(args.zoo)
        models = [zoo[name] for name in grid.names]
        return Zoo(models, base=zoo.base, tokenizer=zoo.tokenizer, root=zoo.root)
    if not grid.paths:
        raise WeightscapeError(
            f"The grid in '{args.grid}' records no checkpoint paths; give --zoo."
        )
    return Zoo(
        [
            Checkpoint.from_path(p, name=n, tags=t)
            for p, n, t in zip(grid.paths, grid.names, grid.tags, strict=True)
        ]
    )


def _grid_base(zoo, given: Path | None):
    """The base of the grid's task-vector cosines (``resolve_base``'s, checked against the
    models' tags), or None when nothing names one: --base, the manifest or every model's tag."""
    from weightscape.models.zoo_base import resolve_base

    if given is None and zoo.base is None and not all("base" in m.tags for m in zoo):
        return None
    return resolve_base(zoo, given)


def _zoo_from_args(args: argparse.Namespace):
    from weightscape.errors import WeightscapeError
    from weightscape.models.zoo import Zoo

    zoo = (
        Zoo.from_manifest(args.zoo) if args.zoo else Zoo.from_glob(args.models, config=args.config)
    )
    if len(zoo) < 2:
        raise WeightscapeError(f"A grid needs at least 2 models; the zoo has {len(zoo)}.")
    return zoo


def add_demo(sub) -> None:
    """``weightscape demo``: the whole spine on the embedded defaults."""
    p = sub.add_parser(
        "demo",
        help="finetune MiniLM on Rotten Tomatoes and walk paths between "
        "the models (about 10 minutes on 2 CPU cores)",
    )
    p.add_argument("--out", type=Path, default=Path("weightscape-out/demo"))
    p.add_argument("--steps", type=int, default=None, help="training steps per model")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> None:
    from weightscape.report.demo import DemoSettings, run_demo

    settings = DemoSettings() if args.steps is None else DemoSettings(steps=args.steps)
    summary = run_demo(args.out, settings, progress=not args.no_progress)
    print(json.dumps(summary["models"], indent=1))
    print(f"results and plots are in {args.out.resolve()}")
    for name, path in summary["files"].items():
        print(f"  {name}: {path}")
