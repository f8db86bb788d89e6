"""Start-up: how long a command takes before its first point, and a fully stored rerun, against
the import floor.

Four MiniLM classifiers (the pretrained encoder from its wheel with seeded heads and small seeded
perturbations, so the four files differ) are saved as safetensors folders; a 4-model grid on
Rotten Tomatoes (``--subset`` examples) runs through the CLI in fresh processes:

- the import floor: ``python -c "import torch, transformers"``;
- a fresh grid (empty store): the time from process start to the first stored point, and the
  model build (one ``Engine`` construction, timed in its own process after the imports);
- the same grid rerun with every point stored (no engine is built), once with the digest cache
  warm and once after ``--rehash`` (every anchor hashed again, as every command did before, and
  the weight-distance matrices computed again instead of read from the derived-value cache); both
  must leave the grid's figures and tables byte for byte, and its arrays value for value, as
  the first run wrote them.

The load average is printed with the figures: other processes may share the CPU, so compare each
figure with the import floor measured in the same run.

Each figure is the median of ``--repeats`` runs. Run:
``.venv/bin/python benchmarks/startup.py [--subset 64 --repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PYTHON = sys.executable
FLOOR = [PYTHON, "-c", "import torch, transformers"]

FIRST_POINT = """
import sys, time
start = float(sys.argv[1])
from weightscape.runtime.store import ResultStore
put = ResultStore.put
def timed_put(self, *args, **kwargs):
    put(self, *args, **kwargs)
    print("FIRST_POINT", time.time() - start, flush=True)
    raise SystemExit(0)
ResultStore.put = timed_put
from weightscape.cli.main import main
main(sys.argv[2:])
"""

BUILD = """
import sys, time, json
from weightscape.evaluation.engine import Engine
from weightscape.evaluation.evaluator import EvalSettings
from weightscape.data import load_task, split, subset
from weightscape.models.checkpoint import Checkpoint
task = subset(split(load_task("rotten_tomatoes"))["test"], int(sys.argv[1]))
anchors = [Checkpoint.from_path(p) for p in sys.argv[2:]]
for a in anchors:
    a.content_hash()  # hashing is start-up's other part, measured apart
start = time.perf_counter()
Engine(anchors, task, settings=EvalSettings(), device="cpu")
print("BUILD", time.perf_counter() - start)
"""


def make_zoo(root: Path, n: int = 4) -> Path:
    """``n`` MiniLM classifiers saved with ``save_pretrained`` and a zoo manifest naming them."""
    import torch
    import yaml
    from transformers import AutoTokenizer, BertForSequenceClassification

    from weightscape.models.pretrained import resolve_model_path

    base = resolve_model_path("minilm")
    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    models = []
    for i in range(n):
        torch.manual_seed(i)
        model = BertForSequenceClassification.from_pretrained(
            base,
            num_labels=2,
            id2label={0: "negative", 1: "positive"},
            label2id={"negative": 0, "positive": 1},
            trust_remote_code=False,
        )
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 1e-3)
        folder = root / f"m{i}"
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        models.append({"name": f"m{i}", "path": str(folder)})
    manifest = root / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"models": models}))
    return manifest


def seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def marked(argv: list[str], mark: str) -> float:
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith(mark))
    return float(line.split()[1])


def _outputs(folder: Path) -> dict[str, bytes]:
    """The grid's figures and tables (bytes) and arrays (their values: a zip carries times)."""
    import numpy as np

    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix in (".png", ".csv")}
    with np.load(folder / "grid.npz") as arrays:
        files.update({f"grid.npz:{k}": arrays[k].tobytes() for k in sorted(arrays.files)})
    return files


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=64)
    parser.add_argument("--points", type=int, default=11)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load_before = _load()  # other processes share the CPU: times are comparable within a run
    root = Path(tempfile.mkdtemp(prefix="ws-startup-"))
    zoo = make_zoo(root)
    grid = [PYTHON, "-m", "weightscape.cli.main", "grid", "--zoo", str(zoo)]
    grid += ["--task", "rotten_tomatoes", "--split", "test", "--subset", str(args.subset)]
    grid += ["--points", str(args.points), "--device", "cpu", "--no-progress"]
    median = statistics.median

    floor = median(seconds(FLOOR) for _ in range(args.repeats))
    firsts = []
    for i in range(args.repeats):
        out = root / f"first-{i}"
        argv = [*grid[3:], "--out", str(out)]  # main()'s arguments: from the command on
        firsts.append(marked([PYTHON, "-c", FIRST_POINT, str(time.time()), *argv], "FIRST_POINT"))
    paths = [str(root / f"m{i}") for i in range(4)]
    build = median(
        marked([PYTHON, "-c", BUILD, str(args.subset), *paths], "BUILD") for _ in range(2)
    )
    stored_out = root / "stored"
    full = seconds([*grid, "--out", str(stored_out)])  # computes and stores every point
    written = _outputs(stored_out)
    # Each rerun is paired with a floor measured just before it, so a change of load between
    # the start and the end of the benchmark does not move their difference.
    pairs = [
        (seconds(FLOOR), seconds([*grid, "--out", str(stored_out)])) for _ in range(args.repeats)
    ]
    rerun = median(r for _, r in pairs)
    over_floor = median(r - f for f, r in pairs)
    # A rerun keeps what it would write again (figures, distances) and recomputes nothing: its
    # files must be byte for byte those of the run that computed every point.
    if _outputs(stored_out) != written:
        raise SystemExit("a fully stored rerun changed the grid's files")
    rehashed = [PYTHON, "-m", "weightscape.cli.main", "--rehash", *grid[3:]]
    rehash = median(seconds([*rehashed, "--out", str(stored_out)]) for _ in range(args.repeats))
    if _outputs(stored_out) != written:
        raise SystemExit("a rerun with --rehash changed the grid's files")
    run = json.loads((stored_out / "run.json").read_text())
    rows = [
        ("import floor (python -c 'import torch, transformers')", floor),
        ("model build (Engine: model, tokenised batches)", build),
        ("fresh grid: process start to first stored point", median(firsts)),
        ("fresh grid: whole run, every point computed", full),
        ("fully stored rerun (digest cache warm)", rerun),
        ("fully stored rerun with --rehash (every anchor read)", rehash),
    ]
    print(f"4 MiniLM classifiers, {args.points}-point grid on rotten_tomatoes:test[{args.subset}]")
    print(f"load average (1, 5, 15 min): {load_before} at the start, {_load()} at the end")
    print(f"rerun computed {run['points']['computed']} points, reused {run['points']['reused']}")
    for label, value in rows:
        print(f"  {label:<58} {value:7.2f} s")
    print(f"  first point - (floor + build):   {median(firsts) - floor - build:+.2f} s")
    print(f"  stored rerun - floor:            {over_floor:+.2f} s (each with its own floor)")


if __name__ == "__main__":
    main()
