"""``weightscape region``: a zoo's regions by the generalised loss (Gueta et al. 2023).

PB of In vs Ex, In' vs Ex and In' vs In per dataset, per task family and in general; the edges
of each dataset's region (extrapolation, moves from the centroid); and interpolation across
data. Every point is scored by a linear probe fitted on the target dataset over the point's
frozen encoder. A target is a dataset of the zoo's ``--tag`` (a trailing ``:train`` dropped),
loaded as a built-in task.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from weightscape.cli.options import (
    add_eval_options,
    add_space_options,
    float_list,
    name_list,
    settings_from_args,
)


def add_region(sub) -> None:
    """Register ``weightscape region`` on the subcommand parsers ``sub``."""
    p = sub.add_parser(
        "region",
        help="regions of a zoo by the generalised loss: PB of In/In'/Ex, extrapolation, moves "
        "from centroids, interpolation across data",
    )
    p.add_argument("--zoo", type=Path, required=True, help="zoo manifest of finetuned models")
    p.add_argument(
        "--base",
        default=None,
        help="pretrained model folder or 'minilm' (default: the zoo's base, else the 'base' "
        "tag its models share); it must agree with the models' 'base' tags",
    )
    p.add_argument("--tag", default="dataset", help="the zoo tag naming a model's dataset")
    p.add_argument(
        "--family-tag", default="family", help="the tag naming its task family ('' for none)"
    )
    p.add_argument(
        "--sections",
        type=name_list,
        default=("pb", "edges", "paths"),
        help="what to run, comma-separated: pb, edges, paths (default: all)",
    )
    region = p.add_argument_group("region")
    region.add_argument("--hull", type=int, default=10, help="In' samples per group (10)")
    region.add_argument(
        "--random", type=int, default=3, help="random-direction anchors about the base (3)"
    )
    region.add_argument(
        "--radii",
        type=float_list,
        default=(0.0, 0.5, 1.0, 2.0, 4.0, 8.0),
        help="radii of moves from a centroid, in mean model-centroid distances",
    )
    region.add_argument(
        "--extrapolation-steps", type=int, default=6, help="log steps past each model (6)"
    )
    region.add_argument("--reach", type=float, default=32.0, help="largest t extrapolated (32)")
    region.add_argument("--max-pairs", type=int, default=6, help="model pairs per category (6)")
    region.add_argument("--seed", type=int, default=0, help="seed of hulls, directions, pairs")
    probe = p.add_argument_group("generalised loss (linear probe)")
    probe.add_argument(
        "--probe-train", type=int, default=512, help="probe training examples per target"
    )
    probe.add_argument("--probe-test", type=int, default=256, help="test examples per target")
    probe.add_argument("--probe-c", type=float, default=1.0, help="inverse L2 strength (1.0)")
    p.add_argument("--out", type=Path, default=Path("weightscape-out/region"))
    add_space_options(p, default="no-head")
    add_eval_options(p)
    p.set_defaults(run=run_region)


def run_region(args: argparse.Namespace) -> None:
    from weightscape.analyses.regions import RegionStudy, load_targets
    from weightscape.analyses.zoo_groups import final_models
    from weightscape.cli.options import space_from_args
    from weightscape.errors import unknown_name_error
    from weightscape.evaluation.probe import ProbeSettings
    from weightscape.models.zoo import Zoo
    from weightscape.models.zoo_base import resolve_base
    from weightscape.report.region_report import SECTIONS, run_region_study
    from weightscape.runtime.store import ResultStore

    for section in args.sections:  # before any data is loaded
        if section not in SECTIONS:
            raise unknown_name_error("section", section, SECTIONS)
    zoo = Zoo.from_manifest(args.zoo)
    models = final_models(zoo)
    base = dataclasses.replace(resolve_base(zoo, args.base), name="pretrained")
    study = RegionStudy(
        models,
        base,
        _targets(models, args, load_targets),
        args.out,
        group_tag=args.tag,
        family_tag=args.family_tag or None,
        random_directions=args.random,
        seed=args.seed,
        space=space_from_args(args),
        settings=settings_from_args(args),
        probe=ProbeSettings(c=args.probe_c),
        store=ResultStore(args.store or args.out / "results.sqlite"),
        device=args.device,
        progress=not args.no_progress,
    )
    results, files = run_region_study(
        study,
        args.out,
        sections=args.sections,
        hull_size=args.hull,
        radii=args.radii,
        extrapolation_steps=args.extrapolation_steps,
        reach=args.reach,
        max_pairs=args.max_pairs,
    )
    for row in results.get("comparisons", []):
        print(
            f"{row['level']:<8} {row['group']:<18} PB(In,Ex)={row['pb_in_ex']:.3f} "
            f"PB(In',Ex)={row['pb_hull_ex']:.3f} PB(In',In)={row['pb_hull_in']:.3f}"
        )
    print(f"wrote {args.out}: " + ", ".join(p.name for p in files))


def _targets(models, args, load_targets):
    """Targets for every dataset of the zoo (checked for a tag first, so a typo fails fast)."""
    from weightscape.analyses.zoo_groups import dataset_of
    from weightscape.errors import WeightscapeError, unknown_name_error

    untagged = [m for m in models if args.tag not in m.tags]
    if untagged:
        available = sorted({k for m in models for k in m.tags})
        error = unknown_name_error("tag", args.tag, available)
        raise WeightscapeError(f"{error} (model '{untagged[0].name}' has no such tag; see --tag)")
    names = sorted({dataset_of(m.tags[args.tag]) for m in models})
    return load_targets(
        names, train_size=args.probe_train, test_size=args.probe_test, seed=args.seed
    )
