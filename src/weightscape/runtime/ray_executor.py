"""Ray executor: spread points over workers, each with its own working model.

The driver computes every row's key, skips what the store holds, and groups the remaining rows by
their first anchor so that a worker keeps evaluating combinations of anchors it has already read
(pages of memory-mapped checkpoints stay warm). Workers are long-lived actors: each builds its
engine (model, tokenised batches) once. Results come back to the driver, which alone writes the
store, as each chunk finishes, so a killed run resumes like an in-process one.

Checkpoint paths must be readable from the workers (a local cluster, or a shared filesystem).
Ray is an optional dependency (``pip install 'weightscape[ray]'``): a missing Ray is reported
when the executor is made, before anything is evaluated.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import defaultdict

import numpy as np

from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import EngineSpec
from weightscape.evaluation.grouped import GroupedPoint
from weightscape.evaluation.keys import spec_key
from weightscape.evaluation.result import PointResult
from weightscape.evaluation.working_model import resolve_device
from weightscape.runtime.executor import Evaluated, Rows, record_evaluation
from weightscape.runtime.store import ResultStore

logger = logging.getLogger(__name__)


class _EngineActor:
    """A worker holding one engine; evaluates chunks of rows."""

    def __init__(self, spec: EngineSpec, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)  # same arithmetic as the driver's in-process run
        self.engine = spec.build()

    def evaluate(self, rows: list[list[float]]) -> list[tuple[dict, bytes]]:
        out = []
        for row in rows:
            result = self.engine.evaluate(row)
            out.append((result.metrics, result.arrays_to_bytes()))
        return out


class RayExecutor:
    """Evaluate rows on Ray workers.

    Args:
        address: An existing cluster's address; None starts (or joins) a local cluster.
        workers: Number of worker actors (default: the cluster's CPUs, at most the chunks).
        threads: Torch threads per worker (default: this process's torch thread count).
        chunk_rows: Rows per task sent to a worker.
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        threads: int | None = None,
        chunk_rows: int = 16,
    ) -> None:
        _import_ray()  # no Ray: say so now, not after the points are planned
        self.address = address
        self.workers = workers
        self.threads = threads
        self.chunk_rows = chunk_rows

    def _ray(self):
        ray = _import_ray()
        if not ray.is_initialized():
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(
                address=self.address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                _temp_dir=None if self.address else tempfile.mkdtemp(prefix="ws-ray-"),
            )
        return ray

    def run(
        self,
        spec: EngineSpec,
        rows: Rows,
        store: ResultStore | None = None,
        *,
        progress: bool = False,
        description: str = "points",
    ) -> list[Evaluated]:
        import torch
        from tqdm.auto import tqdm

        rows = [r if isinstance(r, GroupedPoint) else list(map(float, r)) for r in rows]
        maker = spec.key_maker()  # opens the reference once, not once per row
        keys = [spec_key(maker.spec(r)) for r in rows]
        found: dict[str, PointResult] = {}
        todo: dict[str, list[float]] = {}
        for key, row in zip(keys, rows, strict=True):
            if key in found or key in todo:
                continue
            stored = store.get(key, spec.task) if store is not None else None
            if stored is not None:
                found[key] = stored
            else:
                todo[key] = row
        computed: set[str] = set()
        if todo:
            computed = self._compute(
                spec,
                todo,
                found,
                store,
                torch.get_num_threads(),
                tqdm(total=len(todo), desc=description, disable=not progress, unit="pt"),
            )
        out, seen = [], set()
        for key in keys:
            out.append(Evaluated(found[key], key not in computed or key in seen, key))
            seen.add(key)
        device = resolve_device(spec.device)
        record_evaluation(store, spec.anchors, spec.task, device, out)
        return out

    def _compute(self, spec, todo, found, store, threads, bar) -> set[str]:
        ray = self._ray()
        maker = spec.key_maker()
        chunks = _chunks_by_first_anchor(todo, self.chunk_rows)
        n = self.workers or max(1, min(len(chunks), int(ray.cluster_resources().get("CPU", 1))))
        logger.info(
            "ray: %d point(s) in %d chunk(s) on %d worker(s), %d torch thread(s) each",
            len(todo),
            len(chunks),
            n,
            self.threads or threads,
        )
        actor_cls = ray.remote(num_cpus=1)(_EngineActor)
        actors = [actor_cls.remote(spec, self.threads or threads) for _ in range(n)]
        pending = {
            actors[i % n].evaluate.remote([todo[k] for k in chunk]): chunk
            for i, chunk in enumerate(chunks)
        }
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            chunk = pending.pop(ready[0])
            for key, (metrics, blob) in zip(chunk, ray.get(ready[0]), strict=True):
                found[key] = PointResult.from_stored(metrics, blob)
                if store is not None:
                    store.put(key, maker.spec(todo[key]), found[key], 0.0)
            bar.update(len(chunk))
        bar.close()
        for actor in actors:
            ray.kill(actor)
        return set(todo)


def _import_ray():
    """The ``ray`` module, or the error that says how to install it."""
    try:
        import ray
    except ImportError as err:
        raise WeightscapeError(
            f"The ray executor (--executor ray) needs Ray, which is not installed ({err}). "
            "Install it with: pip install 'weightscape[ray]' (or drop --executor ray to "
            "evaluate in this process)."
        ) from None
    return ray


def _chunks_by_first_anchor(todo: dict[str, list[float]], size: int) -> list[list[str]]:
    """Keys grouped by the first anchor with a non-zero coefficient, then cut into chunks."""
    groups: dict[int, list[str]] = defaultdict(list)
    for key, row in todo.items():
        if isinstance(row, GroupedPoint):
            groups[0].append(key)
            continue
        nonzero = np.flatnonzero(np.asarray(row))
        groups[int(nonzero[0]) if len(nonzero) else -1].append(key)
    chunks = []
    for first in sorted(groups):
        keys = groups[first]
        chunks += [keys[i : i + size] for i in range(0, len(keys), size)]
    return chunks
