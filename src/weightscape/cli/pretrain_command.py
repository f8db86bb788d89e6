"""``weightscape pretrain``: pretrain a small masked LM, then study connectivity per checkpoint.

The default fits 2 CPU cores in well under an hour (measured, docs/pretraining.md): pretraining
the 2-layer, hidden-128 model with MiniLM's 30,522-word vocabulary for 1,000 steps (batch 32 x 64
tokens) takes about 17 min on a quiet machine (1 s a step; steps 0-100 took 100 s); then, per
checkpoint (steps 0, 100, 300, 1000), three finetuning runs of 300 steps at lr 1e-3 and three
11-point walks took 4.5 min for all four checkpoints.

A larger setting for one GPU (a BERT-small-like model; its time was not measured here; the
WordNet glosses need Debian's wordnet-base)::

    weightscape pretrain --out runs/pretrain-gpu --device cuda --hidden 512 --layers 4 \\
        --heads 8 --max-length 128 --batch-size 128 --steps 50000 \\
        --save-steps 0,500,2000,5000,10000,20000,50000 --texts 0 --text-source bbc_news+wordnet \\
        --finetune-steps 1000 --train-size 0 --eval-size 1000 --probe-train 1000 --points 26
"""

from __future__ import annotations

import argparse
from pathlib import Path

from weightscape.cli.options import int_list

# CLI flag (dest) -> PretrainConfig field
_PRETRAIN_FLAGS = {
    "name": "name",
    "hidden": "hidden_size",
    "layers": "num_layers",
    "heads": "num_heads",
    "intermediate": "intermediate_size",
    "max_length": "max_length",
    "steps": "steps",
    "batch_size": "batch_size",
    "lr": "lr",
    "mask_probability": "mask_probability",
    "seed": "seed",
    "save_steps": "save_steps",
    "tokenizer": "tokenizer",
}
# CLI flag (dest) -> PretrainingStudy field
_STUDY_FLAGS = {
    "task_a": "task_a",
    "task_b": "task_b",
    "finetune_steps": "finetune_steps",
    "finetune_lr": "lr",
    "train_size": "train_size",
    "eval_size": "eval_size",
    "probe_train": "probe_train",
    "points": "points",
    "max_length": "max_length",
}


def add_pretrain(sub) -> None:
    """Register ``weightscape pretrain`` on the subcommand parsers ``sub``."""
    p = sub.add_parser(
        "pretrain",
        help="pretrain a small masked LM and measure, per checkpoint, the barrier between two "
        "finetuned copies and the path between two tasks' minima (Qin et al. 2022, Figs. 6-7)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (reruns resume)")
    g = p.add_argument_group("pretraining")
    g.add_argument("--name", default="mlm", help="run name (default mlm)")
    g.add_argument("--steps", type=int, default=1000, help="pretraining steps (default 1000)")
    g.add_argument(
        "--save-steps",
        type=int_list,
        default=(0, 100, 300),
        help="comma-separated steps to save and study, besides the last (0: the random init; "
        "default 0,100,300)",
    )
    g.add_argument("--hidden", type=int, default=128, help="hidden size (default 128)")
    g.add_argument("--layers", type=int, default=2, help="transformer layers (default 2)")
    g.add_argument("--heads", type=int, default=2, help="attention heads (default 2)")
    g.add_argument("--intermediate", type=int, default=None, help="FFN size (default 4 x hidden)")
    g.add_argument("--max-length", type=int, default=64, help="tokens per text (default 64)")
    g.add_argument("--batch-size", type=int, default=32, help="pretraining batch (default 32)")
    g.add_argument("--lr", type=float, default=1e-3, help="pretraining peak lr (default 1e-3)")
    g.add_argument("--mask-probability", type=float, default=0.15, help="default 0.15")
    g.add_argument("--seed", type=int, default=0, help="init, masking and text-subset seed")
    g.add_argument("--tokenizer", default=None, help="tokenizer folder (default: MiniLM's)")
    g.add_argument(
        "--text-source",
        default="bbc_news",
        help="raw text: bbc_news (default), wordnet, a text file (one text per line), or "
        "several joined by '+'",
    )
    g.add_argument(
        "--texts", type=int, default=6000, help="texts drawn from the source (0: all; default 6000)"
    )
    s = p.add_argument_group("study at each checkpoint")
    s.add_argument("--task-a", default="rotten_tomatoes", help="task of the two copies")
    s.add_argument("--task-b", default="mnli_like", help="the other task of the cross-task path")
    s.add_argument("--finetune-steps", type=int, default=300, help="default 300")
    s.add_argument("--finetune-lr", type=float, default=1e-3, help="default 1e-3")
    s.add_argument("--train-size", type=int, default=2000, help="finetuning rows (0: all)")
    s.add_argument("--eval-size", type=int, default=256, help="rows per path point")
    s.add_argument("--probe-train", type=int, default=256, help="rows the probe head is fit on")
    s.add_argument("--points", type=int, default=11, help="points along each path (default 11)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run_pretrain)


def run_pretrain(args: argparse.Namespace) -> None:
    from weightscape.analyses.pretraining import PretrainingStudy, pretrain_and_study
    from weightscape.report.pretrain_report import pretraining_table, write_pretraining_report
    from weightscape.training.pretrain import PretrainConfig

    if args.train_size == 0:
        args.train_size = None
    flags = {k: v for k, v in _PRETRAIN_FLAGS.items() if k != "tokenizer" or args.tokenizer}
    config = _validated(PretrainConfig, args, flags)
    study = _validated(PretrainingStudy, args, _STUDY_FLAGS)
    result = pretrain_and_study(
        config,
        study,
        args.out,
        text_source=args.text_source,
        num_texts=args.texts or None,
        device=args.device,
        progress=not args.no_progress,
    )
    files = write_pretraining_report(result, args.out)
    print(pretraining_table(result), end="")
    print(f"wrote {args.out}: " + ", ".join(p.name for p in files.values()))


def _validated(model, args: argparse.Namespace, flags: dict[str, str]):
    """Build ``model`` from the flags, reporting every invalid one by its flag name."""
    from pydantic import ValidationError

    from weightscape.errors import WeightscapeError

    to_flag = {field: dest for dest, field in flags.items()}
    values = {field: getattr(args, dest) for dest, field in flags.items()}
    try:
        return model(**values)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            field = str(e["loc"][0]) if e["loc"] else ""
            flag = "--" + to_flag.get(field, field).replace("_", "-")
            problems.append(f"{flag}: {e['msg']}. Got {e.get('input')!r}" if field else e["msg"])
        raise WeightscapeError("; ".join(problems)) from err
