"""``weightscape similarity``: cosines of task vectors, their clusters and a 2-D picture."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_similarity(sub) -> None:
    """Register ``weightscape similarity`` on the subcommand parsers ``sub``."""
    p = sub.add_parser(
        "similarity",
        help="cosine similarity of task vectors, spectral clusters scored against zoo tags, "
        "t-SNE and PCA (Gueta et al. 2023)",
    )
    models = p.add_mutually_exclusive_group(required=True)
    models.add_argument("--zoo", type=Path, help="zoo manifest (YAML/JSON) with tagged models")
    models.add_argument("--models", help="glob of checkpoint folders, e.g. 'runs/*/step-150'")
    p.add_argument("--config", type=Path, default=None, help="config for bare weight files")
    p.add_argument(
        "--base",
        default=None,
        help="pretrained model the task vectors start from: a folder or 'minilm' (default: the "
        "zoo's base, else the 'base' tag its models share); it must agree with their 'base' tags",
    )
    p.add_argument(
        "--by",
        action="append",
        default=None,
        metavar="TAG",
        help="zoo tag to score the clusters against and colour plots by (repeatable; "
        "default: dataset)",
    )
    p.add_argument(
        "--k", type=int, default=None, help="clusters (default: each tag's number of values)"
    )
    p.add_argument(
        "--distance",
        default="cosine",
        choices=("cosine", "euclidean"),
        help="cluster and embed by the cosine of task vectors (default, as Gueta et al.) or by "
        "Euclidean distance",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of clustering and t-SNE")
    group = p.add_argument_group("parameter space")
    group.add_argument(
        "--space",
        default="no-head",
        help="all, no-head, biases or tuned; default: no-head (heads differ across datasets)",
    )
    group.add_argument(
        "--include", action="append", default=[], help="only tensors matching this regex"
    )
    group.add_argument(
        "--exclude", action="append", default=[], help="never tensors matching this regex"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("weightscape-out/similarity"),
        help="folder for matrices, plots and summary.md (default: weightscape-out/similarity)",
    )
    p.set_defaults(run=run_similarity)


def run_similarity(args: argparse.Namespace) -> None:
    from weightscape.analyses.similarity import analyse_similarity
    from weightscape.cli.options import space_from_args
    from weightscape.models.zoo import Zoo
    from weightscape.models.zoo_base import resolve_base
    from weightscape.report.similarity_plots import write_similarity_report

    zoo = (
        Zoo.from_manifest(args.zoo) if args.zoo else Zoo.from_glob(args.models, config=args.config)
    )
    base = resolve_base(zoo, args.base)
    similarity = analyse_similarity(
        list(zoo),
        base,
        space=space_from_args(args),
        by=tuple(dict.fromkeys(args.by or ["dataset"])),
        k=args.k,
        distance=args.distance,
        seed=args.seed,
    )
    files = write_similarity_report(similarity, args.out)
    norms = similarity.norms
    print(
        f"{len(similarity.names)} task vectors from {base.path}: norms {norms.min():.4g} to "
        f"{norms.max():.4g}"
    )
    for tag, c in similarity.clusterings.items():
        f1 = ", ".join(f"{g}={v:.2f}" for g, v in c.f1.items())
        print(f"{tag}: k={c.k}, clustering accuracy {c.accuracy:.3f} (per-group F1: {f1})")
    print(f"wrote {args.out}: " + ", ".join(sorted(p.name for p in files.values())))
