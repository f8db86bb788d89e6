"""Peak memory of a walk between two >= 1B-parameter bfloat16 checkpoints (issue 16, item 4).

Two random Llama sequence classifiers (hidden 2048, 22 layers, grouped-query attention with 4
key/value heads, vocabulary 32000, 2 labels: ~1.03B parameters, TinyLlama's shape without its
LM head) are built from a config directly in bfloat16 and saved with ``save_pretrained`` as
sharded safetensors (~2.1 GB each). ``weightscape interpolate A B --dtype anchors`` then walks the
line between them on a 4-example task in a fresh child process, whose resident-memory high-water
mark (``VmHWM``) is compared with one checkpoint's size on disk. The target:
below 2.5x, i.e. one working model in bfloat16 plus one float32 tensor, never an fp32 copy of the
model nor the anchors held in memory.

Run (it loads every core for a few minutes):
    nice -n 10 .venv/bin/python benchmarks/large_walk.py [--layers 22 --points 3 --keep]
The checkpoints go under ``--root`` (default: a temporary folder under /tmp), deleted at the end
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TARGET = 2.5  # peak RSS / one checkpoint's size
WORDS = ["good", "great", "bad", "awful", "the", "movie", "was", "plot"]

# Peak RSS is VmHWM, the high-water mark of this process's own memory: getrusage's ru_maxrss
# would also count the parent's pages shared into the child by fork, before it exec'd.
HWM = """
def hwm():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM"))
    return int(line.split()[1]) * 1024
"""
CHILD = (
    HWM
    + """
import json, sys, time
start = time.perf_counter()
from weightscape.cli.main import main
code = main(sys.argv[1:])
print("RESULT", json.dumps({
    "exit": code, "seconds": time.perf_counter() - start, "peak_rss_bytes": hwm()
}), flush=True)
"""
)

# The same child's floor: the imports a walk needs, no model.
FLOOR = (
    HWM
    + """
import weightscape.cli.main, weightscape.evaluation.engine, weightscape.studies.interpolate
print("RESULT", hwm(), flush=True)
"""
)


def floor_bytes() -> int:
    """Peak RSS of a fresh process that only imports what a walk imports."""
    done = subprocess.run([sys.executable, "-c", FLOOR], capture_output=True, text=True, check=True)
    return int(done.stdout.split("RESULT")[-1])


def llama_config(layers: int, hidden: int):
    """TinyLlama's shape (without its LM head) as a 2-label sequence classifier."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=32000,
        hidden_size=hidden,
        intermediate_size=int(hidden * 2.75),
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        num_labels=2,
        pad_token_id=0,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )


def save_anchor(folder: Path, config, seed: int, tokenizer) -> int:
    """A random classifier built in bfloat16 (never float32) and saved as sharded safetensors;
    returns its parameter count."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(
        config, dtype=torch.bfloat16, trust_remote_code=False
    )
    count = sum(p.numel() for p in model.parameters())
    model.save_pretrained(str(folder), max_shard_size="500MB")
    tokenizer.save_pretrained(str(folder))
    del model
    return count


def make_task_file(path: Path) -> Path:
    """Four short labelled sentences (a CSV task: text,label)."""
    rows = ["text,label", "good movie,positive", "awful plot,negative"]
    rows += ["the movie was great,positive", "the plot was bad,negative"]
    path.write_text("\n".join(rows) + "\n")
    return path


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.glob("*.safetensors"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--points", type=int, default=3, help="points on the line (>= 3)")
    parser.add_argument("--root", type=Path, default=None, help="where the checkpoints go")
    parser.add_argument("--keep", action="store_true", help="keep the checkpoints")
    args = parser.parse_args(argv)

    from transformers import BertTokenizerFast

    root = args.root or Path(tempfile.mkdtemp(prefix="large_walk_", dir="/tmp"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(specials + WORDS)})
        config = llama_config(args.layers, args.hidden)
        start = time.perf_counter()
        anchors = [root / "a", root / "b"]
        counts = [
            save_anchor(folder, config, seed, tokenizer) for seed, folder in enumerate(anchors)
        ]
        built = time.perf_counter() - start
        size = folder_bytes(anchors[0])
        argv = [
            "interpolate",
            *map(str, anchors),
            "--task",
            str(make_task_file(root / "task.csv")),
            "--split",
            "all",
            "--points",
            str(args.points),
            "--dtype",
            "anchors",
            "--device",
            "cpu",
            "--no-progress",
            "--out",
            str(root / "walk"),
        ]
        done = subprocess.run(
            [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, check=False
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            sys.exit(f"The walk failed:\n{done.stdout}\n{done.stderr}")
        result = json.loads(lines[-1].removeprefix("RESULT "))
        if result["exit"] != 0:
            sys.exit(f"The walk exited {result['exit']}:\n{done.stdout}\n{done.stderr}")
        ratio = result["peak_rss_bytes"] / size
        shards = len(list(anchors[0].glob("*.safetensors")))
        print(
            f"model: Llama classifier, {args.layers} layers, hidden {args.hidden}, "
            f"{counts[0] / 1e9:.3f}B parameters, bfloat16"
        )
        print(
            f"checkpoint size: {size / 1e9:.2f} GB ({shards} safetensors shards); built and "
            f"saved both in {built:.0f} s"
        )
        print(
            f"walk (--dtype anchors, {args.points} points, 4 examples): "
            f"{result['seconds']:.0f} s in a fresh process"
        )
        print(
            f"peak RSS: {result['peak_rss_bytes'] / 1e9:.2f} GB = {ratio:.2f}x one checkpoint "
            f"(target < {TARGET}x): {'PASS' if ratio < TARGET else 'FAIL'}; the imports alone "
            f"peak at {floor_bytes() / 1e9:.2f} GB"
        )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
