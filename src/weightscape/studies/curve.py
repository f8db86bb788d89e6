"""Fit a low-loss curve between two minima and walk it beside the line (Garipov et al. 2018).

Qin et al. (2022) join minima that the line separates by a barrier with a Bezier curve of one
control point. The control points train on the train split (``weightscape.training.curve_fit``);
the line and the fitted curve are then walked at the same t on the validation (dev) and test
subsets, through the results store, so the two paths compare point for point. The table is Qin et
al.'s Table 1: the best point of the line and of the curve, each with t chosen on dev and reported
on test, against the better endpoint (by default the one better on test, as in the paper).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import Field

from weightscape.studies.pair import (
    TRAIN_FIELDS,
    PairFields,
    best_row,
    endpoint_row,
    selection_metric,
)

CURVE_FIELDS = {
    **TRAIN_FIELDS,
    **{name: name for name in ("path", "controls", "steps", "lr", "eval_every", "eval_ts")},
}
"""Study field -> field of :class:`~weightscape.training.curve_fit.CurveConfig` it fills."""


class Config(PairFields):
    """A curve fitted between two checkpoints, compared with the line."""

    path: Literal["bezier", "polychain"] = Field(
        "bezier", description="the curve: bezier, or polychain (a polygonal chain)"
    )
    controls: int = Field(1, ge=1, description="control points (bends)")
    steps: int = Field(200, ge=1, description="optimisation steps")
    lr: float = Field(1e-4, gt=0, description="learning rate of the control points")
    eval_every: int = Field(
        50,
        ge=0,
        description="evaluate the curve on the validation subset every N steps (0: at "
        "the end only)",
    )
    eval_ts: tuple[float, ...] = Field(
        (0.25, 0.5, 0.75), description="t values of those evaluations during training"
    )
    out: Path = Field(Path("weightscape-out/curve"), description="output folder")

    def curve_config(self) -> Any:
        """The :class:`~weightscape.training.curve_fit.CurveConfig` of the fit."""
        from weightscape.training.curve_fit import CurveConfig

        return CurveConfig(**self.training_values(CURVE_FIELDS))

    def estimated_points(self, models: int | None = None) -> int:
        """Points walked after the fit: the line and the curve, on dev and on test."""
        return 4 * self.points


class CurveResult(NamedTuple):
    """The fitted curve and the two walks.

    Attributes:
        walks: ``{"line": PathWalk, "curve": PathWalk}`` on the validation (dev) subset.
        anchors: The fitted path's checkpoints ``[a, control_1, ..., control_k, b]``.
        history: The fit's training history (losses, evaluations).
        test_walks: The same two paths at the same t on the test subset.
        rows: Qin et al.'s Table 1: ``{"method", "dev": metrics, "test": metrics, ...}`` for the
            best linear point, the best curved point and the better endpoint.
    """

    walks: dict[str, Any]
    anchors: list[Any]
    history: list[dict]
    test_walks: dict[str, Any]
    rows: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        """Each walk's highest loss, lowest accuracy and loss barrier, and the controls' paths."""
        summary: dict[str, Any] = {
            name: {
                "max_loss": float(w.curve("loss").max()),
                "min_accuracy": float(w.curve("accuracy").min()),
                "loss_barrier": w.summary["loss"]["barrier_height"],
            }
            for name, w in self.walks.items()
        }
        summary["controls"] = [str(c.path) for c in self.anchors[1:-1]]
        return summary


def table_rows(
    dev_walks: dict[str, Any],
    test_walks: dict[str, Any],
    endpoint_split: str = "test",
    metric: str = "accuracy",
) -> list[dict[str, Any]]:
    """Qin et al.'s Table 1 from the line and the curve walked on dev and test: the best point of
    each (t chosen on dev ``metric``: accuracy, or a text task's loss) and the better endpoint
    (chosen on ``endpoint_split``)."""
    from weightscape.analyses.best_point import best_of_walks

    best = {
        name: best_of_walks(
            dev_walks[name], test_walks[name], metric=metric, endpoint_split=endpoint_split
        )
        for name in ("line", "curve")
    }
    return [
        best_row(best["line"], "linear"),
        best_row(best["curve"], f"curved ({dev_walks['curve'].path})"),
        endpoint_row(best["line"]),
    ]


def run(config: Config) -> CurveResult:
    """Fit the curve on the train split; walk the line and the curve on the dev and test subsets.

    The control points are saved as checkpoints in ``config.out / "curve"``; every walked point
    goes through the results store.
    """
    from weightscape.analyses.interpolation import walk_path
    from weightscape.evaluation.engine import Engine
    from weightscape.geometry import even_grid
    from weightscape.training.curve_fit import fit_curve

    a, b = config.checkpoints()
    train, dev, test = config.splits()
    space = config.parameter_space()
    anchors, history = fit_curve(
        a,
        b,
        train,
        config.out / "curve",
        config=config.curve_config(),
        dev=dev,
        space=space,
        model_labels=config.model_labels,
    )
    store = config.results_store(config.out)
    walks: dict[str, dict[str, Any]] = {"dev": {}, "test": {}}
    for name, (models, path) in {
        "line": ([a, b], "linear"),
        "curve": (anchors, config.path),
    }.items():
        for split, task in (("dev", dev), ("test", test)):
            engine = Engine(
                models, task, space=space, settings=config.eval_settings(), device=config.device
            )
            walks[split][name] = walk_path(
                engine, even_grid(config.points), path=path, store=store, progress=config.progress
            )
            del engine  # one working model at a time
    rows = table_rows(walks["dev"], walks["test"], config.endpoint_split, selection_metric(dev))
    return CurveResult(walks["dev"], anchors, history, walks["test"], rows)
