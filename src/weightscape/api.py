"""The common calls in one place, for ``import weightscape as ws``.

Each name here (and the classes ``weightscape`` re-exports beside them: ``ws.Checkpoint``,
``ws.ResultStore``, ``ws.load_task``, ``ws.walk_path``, ...) is loaded when first used, so
``import weightscape`` stays instant. The calls take checkpoints as :class:`Checkpoint` objects,
model folders or zoo entries, and a task as a :class:`Task` or anything :func:`load_task` reads
(a built-in name, a CSV/JSON-lines/parquet file, a saved ``datasets`` folder).

A tour on a toy zoo (:func:`weightscape.toy.make_toy_zoo`: tiny random classifiers, offline):

>>> import tempfile
>>> import weightscape as ws
>>> folder = tempfile.mkdtemp()
>>> zoo = ws.load_zoo(ws.toy.make_toy_zoo(folder))
>>> task = ws.load_task(f"{folder}/reviews.csv")
>>> store = ws.ResultStore(f"{folder}/results.sqlite")
>>> walk = ws.interpolate(zoo["toy-0"], zoo["toy-1"], task=task, points=5, store=store)
>>> [p.t for p in walk.points]
[0.0, 0.25, 0.5, 0.75, 1.0]
>>> float(ws.metrics.barrier_height(walk.curve("loss"))) >= 0
True
>>> len(store)  # the walk's 5 points (its ends are the anchors themselves)
5
>>> anchors = (ws.Checkpoint.from_path(f"{folder}/toy-0"), zoo["toy-1"])
>>> again = ws.walk_path(ws.EngineSpec(anchors, task), [0.0, 0.5, 1.0], store=store)
>>> again.computed  # every point was stored by the first walk
0
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightscape.errors import WeightscapeError

if TYPE_CHECKING:
    from typing import TypeAlias

    from weightscape.analyses.connectivity import ConnectivityGrid
    from weightscape.analyses.interpolation import PathWalk
    from weightscape.data.task import Task
    from weightscape.evaluation.engine import EngineSpec
    from weightscape.models.checkpoint import Checkpoint
    from weightscape.models.zoo import Zoo
    from weightscape.runtime.executor import Executor
    from weightscape.runtime.store import ResultStore

    AnchorLike: TypeAlias = Checkpoint | str | Path
    TaskLike: TypeAlias = Task | str | Path
    StoreLike: TypeAlias = ResultStore | str | Path | None


def load_zoo(
    source: str | Path, *, config: str | Path | None = None, base: str | Path | None = None
) -> Zoo:
    """The checkpoints of a zoo manifest (``zoo.yaml`` / ``.json``, as ``weightscape finetune``
    writes it), or of every folder a glob pattern matches (named by their paths).

    Args:
        source: A manifest file, or a glob pattern such as ``"runs/zoo/*/step-150"``.
        config: For a glob: the ``config.json`` folder of checkpoints saved without one.
        base: For a glob: the pretrained model the checkpoints were finetuned from.

    Raises:
        WeightscapeError: For a missing or invalid manifest, or a pattern matching nothing.

    >>> import tempfile
    >>> import weightscape as ws
    >>> folder = tempfile.mkdtemp()
    >>> zoo = ws.load_zoo(ws.toy.make_toy_zoo(folder, models=3))
    >>> zoo.names()
    ['toy-0', 'toy-1', 'toy-2']
    >>> len(ws.load_zoo(f"{folder}/toy-*"))  # a glob: every folder it matches
    3
    """
    from weightscape.models.zoo import Zoo

    path = Path(source)
    if path.suffix in (".yaml", ".yml", ".json") or path.is_file():
        if config is not None or base is not None:
            raise WeightscapeError(
                f"config= and base= apply to a glob pattern; the manifest '{path}' names its "
                "own. Drop them, or edit the manifest."
            )
        return Zoo.from_manifest(path)
    return Zoo.from_glob(str(source), config=config, base=base)


def interpolate(
    *anchors: AnchorLike,
    task: TaskLike,
    points: int = 11,
    t: Sequence[float] | None = None,
    path: str = "linear",
    store: StoreLike = None,
    progress: bool = False,
    **engine: Any,
) -> PathWalk:
    """Walk ``path`` between ``anchors`` and evaluate each point on ``task``, as
    ``weightscape interpolate`` does.

    Points already in ``store`` are read, not evaluated; the anchors themselves are evaluated
    too (``walk.endpoints``), and ``walk.summary`` holds the barrier height, convexity gap and
    area of each metric's curve.

    Args:
        anchors: Two checkpoints for a line; more for ``bezier`` (first, control, last) or
            ``polychain``. Each a :class:`~weightscape.models.checkpoint.Checkpoint` (a zoo
            entry) or a model folder.
        task: The examples, or what :func:`~weightscape.data.load_task` reads.
        points: Evenly spaced points over [0, 1], both ends included (ignored when ``t`` given).
        t: Explicit t values, e.g. ``[-0.5, 0, 0.5, 1, 1.5]`` to extrapolate.
        path: ``linear``, ``bezier`` or ``polychain``.
        store: A results store, or the path of its SQLite file.
        progress: Show a progress bar.
        **engine: :class:`~weightscape.evaluation.engine.EngineSpec` fields: ``space`` (a
            :class:`~weightscape.models.space.ParameterSpace`), ``settings`` (an
            :class:`~weightscape.evaluation.evaluator.EvalSettings`), ``device``,
            ``tokenizer``, ``reference``, ``probe``.

    Returns:
        The :class:`~weightscape.analyses.interpolation.PathWalk`: ``walk.curve("loss")``,
        ``walk.points``, ``walk.summary``.

    >>> import tempfile
    >>> import weightscape as ws
    >>> folder = tempfile.mkdtemp()
    >>> a, b = ws.load_zoo(ws.toy.make_toy_zoo(folder, models=2))
    >>> walk = ws.interpolate(a, b, task=f"{folder}/reviews.csv", t=[-0.5, 0, 0.5, 1, 1.5])
    >>> walk.curve("loss").shape, sorted(walk.endpoints)
    ((5,), ['toy-0', 'toy-1'])
    >>> bool(walk.curve("loss")[1] == walk.endpoints["toy-0"]["loss"])  # t = 0 is the anchor
    True
    """
    from weightscape.analyses.interpolation import walk_path
    from weightscape.geometry import even_grid

    if len(anchors) < 2:
        raise WeightscapeError(
            f"A path needs at least 2 anchors (checkpoints); got {len(anchors)}."
        )
    ts = even_grid(points) if t is None else [float(x) for x in t]
    spec = _spec(anchors, task, engine)
    return walk_path(spec, ts, path=path, store=_store(store), progress=progress)


def connectivity_grid(
    anchors: Zoo | Iterable[AnchorLike] | EngineSpec,
    task: TaskLike | None = None,
    *,
    points: int = 11,
    store: StoreLike = None,
    executor: Executor | None = None,
    progress: bool = False,
    **engine: Any,
) -> ConnectivityGrid:
    """The line between every pair of ``anchors``, as ``weightscape grid`` computes it: each
    endpoint evaluated once, every point through ``store``.

    Args:
        anchors: A zoo, a list of checkpoints or model folders, or a ready
            :class:`~weightscape.evaluation.engine.EngineSpec` (then no ``task`` nor
            ``engine`` options).
        task: The examples, or what :func:`~weightscape.data.load_task` reads.
        points: Points per line, both ends included.
        store: A results store, or the path of its SQLite file.
        executor: Where points are evaluated (default: in this process; or a
            :class:`~weightscape.runtime.ray_executor.RayExecutor`).
        progress: Show a progress bar.
        **engine: :class:`~weightscape.evaluation.engine.EngineSpec` fields, as in
            :func:`interpolate`.

    Returns:
        The :class:`~weightscape.analyses.connectivity.ConnectivityGrid`: ``grid.matrices``
        (``loss_barrier``, ``accuracy_drop``, ``euclidean``, ...: N x N, zero diagonal),
        ``grid.curves``; ``grid.save(folder)`` writes what ``weightscape basins`` reads.

    >>> import tempfile
    >>> import weightscape as ws
    >>> folder = tempfile.mkdtemp()
    >>> zoo = ws.load_zoo(ws.toy.make_toy_zoo(folder, models=3))
    >>> grid = ws.connectivity_grid(zoo, f"{folder}/reviews.csv", points=3)
    >>> grid.names, grid.matrices["loss_barrier"].shape
    (['toy-0', 'toy-1', 'toy-2'], (3, 3))
    >>> grid.stats["computed_points"]  # 3 anchors + the midpoint of each of the 3 lines
    6
    """
    from weightscape.analyses.connectivity import connectivity_grid as grid
    from weightscape.evaluation.engine import EngineSpec

    if isinstance(anchors, EngineSpec):
        if task is not None or engine:
            raise WeightscapeError(
                "connectivity_grid was given an EngineSpec, which holds its own task and "
                "engine options; drop task= and the other options, or give the anchors instead."
            )
        spec = anchors
    elif task is None:
        raise WeightscapeError("connectivity_grid needs a task= to evaluate the anchors on.")
    else:
        spec = _spec(list(anchors), task, engine)
    return grid(spec, points=points, store=_store(store), executor=executor, progress=progress)


def run_study(path: str | Path, overrides: Sequence[str] = (), *, report: bool = True) -> list[str]:
    """Run a study file as ``weightscape run`` does: every step in order into the file's
    ``out``, sharing one results store, each step's files and ``run.json`` written.

    Args:
        path: The study file (YAML).
        overrides: ``key=value`` changes applied first, e.g. ``["steps.0.interpolate.points=26"]``.
        report: Also write the HTML report (``OUT/report.html``).

    Returns:
        The lines the command line would print (a heading per step, its results).

    Raises:
        WeightscapeError: Listing every problem of the file (by its YAML path) before anything
            runs, or the first step's user error.

    >>> import tempfile
    >>> from pathlib import Path
    >>> import weightscape as ws
    >>> folder = Path(tempfile.mkdtemp())
    >>> manifest = ws.toy.make_toy_zoo(folder, models=2)
    >>> import yaml
    >>> study = {"name": "toy", "out": str(folder / "out"), "zoo": "zoo.yaml",
    ...          "evaluation": {"split": "all", "device": "cpu", "progress": False},
    ...          "steps": [{"interpolate": {"anchors": ["toy-0", "toy-1"], "points": 3,
    ...                                     "task": "reviews.csv"}}]}
    >>> _ = (folder / "study.yaml").write_text(yaml.safe_dump(study))
    >>> lines = ws.run_study(folder / "study.yaml", report=False)
    >>> lines[0], (folder / "out" / "01-interpolate" / "path.json").is_file()
    ('== step 1/1: interpolate', True)
    """
    from weightscape.cli.registry import by_name
    from weightscape.studies.study_file import load_study
    from weightscape.studies.study_file import run_study as run_steps

    study = load_study(path, overrides)
    commands = by_name()

    def render(name: str, result: Any, config: Any) -> list[str]:
        return commands[name].renderer()(result, config)

    lines = run_steps(study, render, f"weightscape.run_study({str(path)!r})")
    if report:
        from weightscape.report.html import write_report

        lines.append(f"report: {write_report(study.out)}")
    return lines


def _spec(anchors: Iterable[AnchorLike], task: TaskLike, engine: dict[str, Any]) -> EngineSpec:
    """The engine spec of ``anchors`` on ``task`` (paths read as checkpoints, names as tasks)."""
    from weightscape.data import Task, load_task
    from weightscape.evaluation.engine import EngineSpec
    from weightscape.models.checkpoint import Checkpoint

    checkpoints = tuple(
        a if isinstance(a, Checkpoint) else Checkpoint.from_path(Path(a)) for a in anchors
    )
    examples = task if isinstance(task, Task) else load_task(task)
    return EngineSpec(checkpoints, examples, **engine)


def _store(store: StoreLike) -> ResultStore | None:
    from weightscape.runtime.store import ResultStore

    if store is None or isinstance(store, ResultStore):
        return store
    return ResultStore(store)
