"""Executors: evaluate many points through the results store.

Every executor takes an :class:`~weightscape.evaluation.engine.EngineSpec` and coefficient rows,
skips what the store holds (and rows repeated within the call), evaluates the rest, commits each
result as soon as it exists, and returns one :class:`Evaluated` per row, in row order. The
in-process executor is the default: one working model in this process. The Ray executor
(``runtime.ray_executor``) spreads rows over workers for many cores or GPUs.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from weightscape.data.task import Task
from weightscape.evaluation.engine import Engine, EngineSpec
from weightscape.evaluation.keys import spec_key
from weightscape.evaluation.result import PointResult
from weightscape.models.checkpoint import Checkpoint
from weightscape.runtime.store import ResultStore

Rows = Sequence[Sequence[float]] | np.ndarray


@dataclass(frozen=True)
class Evaluated:
    """One point's result, whether it came from the store (or an earlier row), and its key."""

    result: PointResult
    cached: bool
    key: str


class Executor(Protocol):
    """Evaluates coefficient rows of one engine spec through a store."""

    def run(
        self,
        spec: EngineSpec,
        rows: Rows,
        store: ResultStore | None = None,
        *,
        progress: bool = False,
        description: str = "points",
    ) -> list[Evaluated]: ...


class InProcessExecutor:
    """Evaluate in this process with one working model, rebuilt only when the spec changes.

    Args:
        max_engines: How many engines (each one working model) to keep, least recently used
            dropped first. A study that alternates between a few tasks (a region study's
            target datasets) keeps one per task instead of rebuilding at every switch.
    """

    def __init__(self, max_engines: int = 1) -> None:
        from weightscape.validation import check_int

        self.max_engines = check_int(max_engines, "max_engines", "InProcessExecutor", 1)
        self._engines: OrderedDict[EngineSpec, Engine] = OrderedDict()

    def engine(self, spec: EngineSpec) -> Engine:
        """The engine for ``spec``, reusing a kept one built for an equal spec."""
        if spec in self._engines:
            self._engines.move_to_end(spec)
            return self._engines[spec]
        while len(self._engines) >= self.max_engines:
            self._engines.popitem(last=False)
        engine = self._engines[spec] = spec.build()
        return engine

    def forward_passes(self, spec: EngineSpec) -> int:
        """Batched forward passes the engine kept for ``spec`` has run (0 if none is kept)."""
        engine = self._engines.get(spec)
        return engine.evaluator.forward_passes if engine is not None else 0

    def run(
        self,
        spec: EngineSpec,
        rows: Rows,
        store: ResultStore | None = None,
        *,
        progress: bool = False,
        description: str = "points",
    ) -> list[Evaluated]:
        if spec not in self._engines:
            # Keys need no model: when the store holds every point, no engine is built (no
            # model, no tokenised batches), and a fully stored rerun costs only the look-ups.
            stored = from_store(spec, rows, store)
            if stored is not None:
                return stored
        return evaluate_points(
            self.engine(spec), rows, store, progress=progress, description=description
        )


def stored_points(spec: EngineSpec, rows: Rows, store: ResultStore) -> list[Evaluated] | None:
    """Every row's stored result, found by keys made without building an engine; None as soon
    as one is missing (then an engine must compute it)."""
    maker = spec.key_maker()
    found: dict[str, PointResult] = {}
    out = []
    for row in rows:
        key = spec_key(maker.spec(row))
        if key not in found:
            result = store.get(key, spec.task)
            if result is None:
                return None
            found[key] = result
        out.append(Evaluated(found[key], True, key))
    return out


def from_store(spec: EngineSpec, rows: Rows, store: ResultStore | None) -> list[Evaluated] | None:
    """Every row's stored result, without building ``spec``'s engine, recorded as reused
    (:func:`record_evaluation`); None when there is no store or a point is missing from it."""
    from weightscape.evaluation.working_model import resolve_device

    if store is None:
        return None
    found = stored_points(spec, rows, store)
    if found is not None:
        device = str(resolve_device(spec.device))
        record_evaluation(store, spec.anchors, spec.task, device, found)
    return found


def evaluate_points(
    engine: Engine,
    rows: Rows,
    store: ResultStore | None = None,
    *,
    progress: bool = False,
    description: str = "points",
) -> list[Evaluated]:
    """Evaluate coefficient rows in order with ``engine``, reusing stored and repeated points.

    With a store, each point is claimed before it is computed (:meth:`ResultStore.claim`): a
    point another worker is computing is skipped and its result read back once stored, so two
    runs of one grid on one store split the work instead of repeating it.

    Args:
        engine: The engine holding the anchors, task and settings.
        rows: One coefficient vector per point.
        store: Where results are looked up and committed; None evaluates without storing.
        progress: Show a progress bar (on stderr).
        description: Label of the progress bar.

    Raises:
        WeightscapeError: When the store is read-only and a point is not in it (before any
            point is computed).
    """
    from tqdm.auto import tqdm

    rows = list(rows)
    keys = [(spec, spec_key(spec)) for spec in map(engine.spec, rows)]
    _check_writable(store, [key for _, key in keys])
    done: dict[str, Evaluated] = {}
    out: list[Evaluated | None] = []
    later: list[int] = []  # points claimed by another worker: read back (or computed) last
    for i, row in enumerate(tqdm(rows, desc=description, disable=not progress, unit="pt")):
        spec, key = keys[i]
        if key in done:
            out.append(Evaluated(done[key].result, True, key))
            continue
        stored = store.get(key, engine.task) if store is not None else None
        if stored is not None:
            done[key] = Evaluated(stored, True, key)
        elif store is not None and not store.claim(key):
            later.append(i)
            out.append(None)
            continue
        else:
            done[key] = _compute(engine, row, spec, key, store)
        out.append(done[key])
    for i in later:
        spec, key = keys[i]
        if key not in done:
            done[key] = _await_or_compute(engine, rows[i], spec, key, store)
        out[i] = done[key]
    results: list[Evaluated] = out  # type: ignore[assignment]  (every None was filled above)
    device = str(engine.working.device)
    record_evaluation(store, engine.anchors.checkpoints, engine.task, device, results)
    return results


def record_evaluation(
    store: ResultStore | None,
    anchors: Sequence[Checkpoint],
    task: Task,
    device: str,
    evaluated: Sequence[Evaluated],
) -> None:
    """Say what one executor call evaluated: into the current run's record
    (:func:`weightscape.provenance.note_evaluation`), and into the store, in one transaction, the
    anchors' names, the task and, inside a run, which points the run used
    (:meth:`ResultStore.describe`)."""
    from weightscape import provenance

    computed = sum(not e.cached for e in evaluated)
    provenance.note_evaluation(
        anchors, task, device, computed=computed, reused=len(evaluated) - computed
    )
    if store is None:
        return
    run = provenance.current()
    store.describe(
        anchors=[(a.content_hash(), a.name, str(a.path.resolve())) for a in anchors],
        task=(task.fingerprint(), task.name, len(task)),
        run=(run.id, run.command, run.command_line, run.started) if run is not None else None,
        uses=[(e.key, not e.cached) for e in evaluated],
    )


def _compute(engine: Engine, row, spec, key: str, store: ResultStore | None) -> Evaluated:
    if store is not None:  # stored by another worker since we looked: read it, do not redo it
        stored = store.get(key, engine.task)
        if stored is not None:
            return Evaluated(stored, True, key)
    start = time.perf_counter()
    try:
        result = engine.evaluate(row)
    except BaseException:
        if store is not None:
            store.release(key)  # let another worker (or a rerun) take it at once
        raise
    if store is not None:
        store.put(key, spec, result, time.perf_counter() - start)
    return Evaluated(result, False, key)


def _await_or_compute(engine: Engine, row, spec, key: str, store: ResultStore) -> Evaluated:
    """The result another worker is computing: read back once stored, or computed here when
    its lease ends first (the worker died or gave it up)."""
    delay = 0.05
    while True:
        stored = store.get(key, engine.task)
        if stored is not None:
            return Evaluated(stored, True, key)
        if store.claim(key):
            return _compute(engine, row, spec, key, store)
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def _check_writable(store: ResultStore | None, keys: list[str]) -> None:
    if store is None or store.writable:
        return
    missing = sum(key not in store for key in dict.fromkeys(keys))
    if missing:
        from weightscape.errors import WeightscapeError

        raise WeightscapeError(
            f"The results store '{store.path}' is read-only and {missing} of these points are "
            "not in it; nothing was computed. Give a writable --store (or copy the file)."
        )


def get_executor(name: str = "inprocess", **options) -> Executor:
    """An executor by name: ``inprocess`` (default) or ``ray`` (options: address, workers)."""
    from weightscape.errors import unknown_name_error

    if name == "inprocess":
        return InProcessExecutor()
    if name == "ray":
        from weightscape.runtime.ray_executor import RayExecutor

        return RayExecutor(**options)
    raise unknown_name_error("executor", name, ("inprocess", "ray"))
