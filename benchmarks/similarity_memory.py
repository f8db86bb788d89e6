"""Peak memory of the task-vector similarity pipeline on a zoo of 20 models.

Acceptance criterion (issue 5): the pipeline run on a zoo of 20 models holds peak memory to a
few models' worth, measured against the total size of the zoo.

By default the zoo is synthetic and real-sized: the base is the built-in MiniLM
(``resolve_model_path("minilm")``, a bare encoder of ~87 MiB fp32) and each of the 20 models is
a sequence classifier (``bert.``-prefixed encoder plus a head) whose weights are the base plus a
seeded task vector: a direction shared by the models of one "dataset" plus noise of their own.
``--zoo zoo.yaml --base DIR`` measures a real zoo instead.

The pipeline (``weightscape similarity``: stream the Gram matrix, cluster, t-SNE, PCA, write
plots) runs in a fresh process, as does a baseline that imports the same libraries and reads no
weights. Peak RSS counts the pages of memory-mapped checkpoints the process has touched, which
are page cache the kernel can drop, not memory the pipeline holds; so the child also samples its
anonymous (private) and file-backed resident memory and reports the peak of each.

Run: .venv/bin/python benchmarks/similarity_memory.py [--models 20 --datasets 4]
     .venv/bin/python benchmarks/similarity_memory.py --zoo zoo.yaml --base minilm
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from walk_memory import rss_parts  # same folder: run as a script

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def import_libraries() -> None:
    """What the pipeline imports, so that the baseline's memory holds the same libraries."""
    import matplotlib.pyplot  # noqa: F401
    import sklearn.cluster
    import sklearn.decomposition
    import sklearn.manifold  # noqa: F401
    import torch  # noqa: F401

    import weightscape.analyses.similarity
    import weightscape.cli.main
    import weightscape.report.similarity_plots  # noqa: F401


def make_zoo(root: Path, base_dir: Path, n: int, datasets: int, scale: float) -> Path:
    """``n`` classifiers around the base, ``datasets`` planted directions; returns zoo.yaml."""
    import shutil

    import torch
    import yaml
    from safetensors.torch import load_file, save_file

    base = load_file(str(base_dir / "model.safetensors"))
    hidden = base["embeddings.word_embeddings.weight"].shape[1]
    entries = []
    for i in range(n):
        group = i % datasets
        direction = torch.Generator().manual_seed(1000 + group)
        noise = torch.Generator().manual_seed(i)
        model = {}
        for name, tensor in base.items():
            if tensor.is_floating_point():
                shared = torch.randn(tensor.shape, generator=direction)
                own = torch.randn(tensor.shape, generator=noise)
                tensor = tensor + scale * (shared + 0.5 * own)
            model[f"bert.{name}"] = tensor.contiguous()
        labels = 2 + group  # heads differ in shape across datasets, as in a real zoo
        model["classifier.weight"] = 0.02 * torch.randn(labels, hidden, generator=noise)
        model["classifier.bias"] = torch.zeros(labels)
        folder = root / f"m{i:02d}"
        folder.mkdir(parents=True)
        save_file(model, str(folder / "model.safetensors"), metadata={"format": "pt"})
        shutil.copy(base_dir / "config.json", folder / "config.json")
        entries.append({"name": folder.name, "path": folder.name, "tags": _tags(i, group)})
        del model
    manifest = root / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"base": str(base_dir), "models": entries}))
    return manifest


def _tags(i: int, group: int) -> dict:
    return {"dataset": f"d{group}", "seed": i}


class PeakSampler(threading.Thread):
    """Samples this process's anonymous and file-backed resident memory every 5 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = {"rssanon_mib": 0.0, "rssfile_mib": 0.0}
        self.running = True

    def run(self) -> None:
        while self.running:
            for key, value in rss_parts().items():
                self.peak[key] = max(self.peak[key], value)
            time.sleep(0.005)


def child_pipeline(zoo: str, base: str, out: str, by: list[str]) -> None:
    """Run ``weightscape similarity`` in this process and print its peaks as JSON."""
    import torch

    torch.set_num_threads(2)
    import_libraries()  # as the baseline does, before sampling starts
    from weightscape.cli.main import main

    sampler = PeakSampler()
    sampler.start()
    start = time.perf_counter()
    argv = ["similarity", "--zoo", zoo, "--base", base, "--out", out]
    for tag in by:
        argv += ["--by", tag]
    code = main(argv)
    seconds = time.perf_counter() - start
    sampler.running = False
    sampler.join()
    result = {"exit": code, "seconds": seconds, **{f"peak_{k}": v for k, v in sampler.peak.items()}}
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def child_baseline() -> None:
    import_libraries()
    result = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    result.update({f"peak_{k}": v for k, v in rss_parts().items()})
    print(json.dumps(result))


def _run_child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        sys.exit(f"child {args[:2]} failed:\n{out.stdout}\n{out.stderr}")
    *printed, result = out.stdout.strip().splitlines()
    print("\n".join(printed))  # what the command itself printed
    return json.loads(result)


def _zoo_sizes(zoo: Path) -> list[float]:
    """MiB of weight files of each model in the zoo."""
    from weightscape.models.zoo import Zoo

    return [sum(f.stat().st_size for f in c.weight_files()) / 2**20 for c in Zoo.from_manifest(zoo)]


def report(zoo: Path, base: str, by: list[str], out: Path) -> None:
    sizes = _zoo_sizes(zoo)
    one, total = max(sizes), sum(sizes)
    baseline = _run_child("--child", "baseline")
    run = _run_child("--child", "pipeline", str(zoo), base, str(out), *by)
    print(f"\nzoo: {len(sizes)} models, {total:.0f} MiB on disk; one model {one:.1f} MiB")
    print(f"pipeline: {run['seconds']:.1f} s, exit {run['exit']}")
    header = f"{'':<26} {'peak MiB':>9} {'above imports':>14} {'in models':>10} {'of zoo':>8}"
    print(header)
    rows = {
        "RSS (ru_maxrss)": ("peak_rss_mib", "peak_rss_mib"),
        "anonymous (private) RSS": ("peak_rssanon_mib", "peak_rssanon_mib"),
        "file-backed (mmap) RSS": ("peak_rssfile_mib", "peak_rssfile_mib"),
    }
    for label, (key, base_key) in rows.items():
        above = run[key] - baseline[base_key]
        print(
            f"{label:<26} {run[key]:>9.0f} {above:>14.0f} {above / one:>10.2f} "
            f"{above / total:>8.3f}"
        )
    print(f"imports alone: {baseline['peak_rss_mib']:.0f} MiB RSS")
    print((out / "summary.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", type=Path, default=None, help="a real zoo manifest")
    parser.add_argument("--base", default="minilm", help="base folder or 'minilm'")
    parser.add_argument("--by", action="append", default=None, help="tags (default: dataset)")
    parser.add_argument("--models", type=int, default=20, help="synthetic zoo size")
    parser.add_argument("--datasets", type=int, default=4, help="synthetic planted directions")
    parser.add_argument("--scale", type=float, default=1e-3, help="synthetic task-vector scale")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "baseline":
        return child_baseline()
    if args.child == "pipeline":
        zoo, base, out, *by = args.rest
        return child_pipeline(zoo, base, out, by)
    from weightscape.models.pretrained import resolve_model_path

    base = str(resolve_model_path(args.base))
    with tempfile.TemporaryDirectory() as tmp:
        zoo = args.zoo
        if zoo is None:
            start = time.perf_counter()
            zoo = make_zoo(Path(tmp) / "zoo", Path(base), args.models, args.datasets, args.scale)
            print(f"built {args.models} synthetic models in {time.perf_counter() - start:.0f} s")
        report(zoo, base, args.by or ["dataset"], Path(tmp) / "out")


if __name__ == "__main__":
    main()
