"""Is a cluster of models an epsilon-convex basin? (Juneja et al. 2023, section 3.1.)

Juneja et al. call a set of weights S an epsilon-convex basin when a relaxed Jensen inequality
holds for every convex combination of its points (their eq. 2):

    L(sum_k a_k w_k) <= epsilon + sum_k a_k L(w_k),    a_k >= 0, sum_k a_k = 1,

and show that the convexity gap (eq. 4) between any two points of such a basin is at most
epsilon (their Appendix B). Pairwise linear connections are necessary but not sufficient (their
Fig. 2), so the check here has two parts, per cluster of models:

* the largest convexity gap between two of its models, read from the grid;
* the Jensen gap ``L(sum a_k w_k) - sum a_k L(w_k)`` at random convex combinations of all its
  models (Dirichlet(1, ..., 1) weights, uniform on the simplex), for clusters of three or more.

The largest of these is the smallest epsilon consistent with what was measured: a lower bound
on the basin's epsilon, since only finitely many combinations are tried.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import EngineSpec
from weightscape.geometry.regions import hull_samples
from weightscape.metrics.clustering import check_symmetric
from weightscape.runtime.executor import Executor, InProcessExecutor
from weightscape.runtime.store import ResultStore

__all__ = ["epsilon_convexity", "jensen_gaps", "largest_within_cluster"]


def jensen_gaps(
    weights: ArrayLike, combination_losses: ArrayLike, member_losses: ArrayLike
) -> np.ndarray:
    """``L(sum_k a_k w_k) - sum_k a_k L(w_k)`` for each row of convex weights ``a``.

    Args:
        weights: (S, m) rows of nonnegative weights over the m members, each summing to 1.
        combination_losses: (S,) loss of each combination ``sum_k a_k w_k``.
        member_losses: (m,) loss of each member.

    Returns:
        (S,) Jensen gaps: positive where the loss of the mix exceeds the mix of the losses.

    >>> gaps = jensen_gaps([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], [2.0, 1.0], [1.0, 2.0, 3.0])
    >>> gaps.round(6).tolist()
    [0.5, -1.3]
    """
    a = np.asarray(weights, dtype=np.float64)
    combos = np.asarray(combination_losses, dtype=np.float64)
    members = np.asarray(member_losses, dtype=np.float64)
    if a.ndim != 2 or a.shape != (combos.size, members.size):
        raise WeightscapeError(
            "jensen_gaps needs (S, m) weights, S combination losses and m member losses. Got "
            f"weights of shape {a.shape}, {combos.size} and {members.size} losses instead."
        )
    if (a < -1e-12).any() or not np.allclose(a.sum(axis=1), 1.0):
        raise WeightscapeError(
            "The 'weights' parameter of jensen_gaps must hold convex weights (nonnegative rows "
            "that sum to 1)."
        )
    return combos - a @ members


def largest_within_cluster(gaps: ArrayLike, labels: ArrayLike) -> list[dict[str, Any]]:
    """The largest entry of a pairwise matrix (e.g. convexity gaps) inside each cluster.

    Returns:
        One row per cluster in sorted label order: ``{"cluster", "members", "max", "pair"}``
        with model indices; a one-model cluster has ``max`` NaN and ``pair`` None.

    >>> g = [[0, 1, 9, 9], [1, 0, 9, 9], [9, 9, 0, 2], [9, 9, 2, 0]]
    >>> [(r["max"], r["pair"]) for r in largest_within_cluster(g, [0, 0, 1, 1])]
    [(1.0, (0, 1)), (2.0, (2, 3))]
    """
    matrix = check_symmetric(gaps, "gaps", "largest_within_cluster")
    values = np.asarray(labels)
    if values.shape != (matrix.shape[0],):
        raise WeightscapeError(
            "The 'labels' parameter of largest_within_cluster must hold one label per model "
            f"({matrix.shape[0]}). Got shape {values.shape} instead."
        )
    rows = []
    for cluster in np.unique(values):
        members = np.flatnonzero(values == cluster)
        pairs = [(int(i), int(j)) for n, i in enumerate(members) for j in members[n + 1 :]]
        best = max(pairs, key=lambda p: matrix[p], default=None)
        rows.append(
            {
                "cluster": cluster.item(),
                "members": members.tolist(),
                "max": float(matrix[best]) if best else float("nan"),
                "pair": best,
            }
        )
    return rows


def epsilon_convexity(
    spec: EngineSpec,
    labels: ArrayLike,
    gaps: ArrayLike,
    *,
    samples: int,
    seed: int = 0,
    store: ResultStore | None = None,
    executor: Executor | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Juneja et al.'s epsilon-convexity check of each cluster of ``spec.anchors``.

    Each model and each combination is evaluated on ``spec.task`` (its ``loss``) through the
    executor and store, so a model the grid evaluated already costs nothing.

    Args:
        spec: The engine over all the models (the grid's), on the in-distribution task.
        labels: Cluster of each model, in ``spec.anchors`` order.
        gaps: The grid's convexity-gap matrix (``loss_convexity_gap``), same order.
        samples: Random convex combinations per cluster of at least 3 models (0: none).
        seed: Seed of the Dirichlet draws (the i-th cluster in label order draws with ``seed + i``).
        store, executor, progress: As for any evaluation.

    Returns:
        One row per cluster: ``{"cluster", "size", "members", "max_convexity_gap",
        "max_gap_pair", "samples", "jensen_gap_max", "jensen_gap_mean", "epsilon", "weights",
        "losses", "mean_losses", "member_losses"}``. ``epsilon`` is the largest of the convexity
        gaps and Jensen gaps measured (NaN for a one-model cluster); ``weights`` are (samples,
        size) rows over ``members`` (names), ``losses`` the combinations' losses and
        ``mean_losses`` the weighted means of the members' losses.
    """
    names = [c.name for c in spec.anchors]
    n = len(names)
    within = largest_within_cluster(gaps, labels)
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
        raise WeightscapeError(
            f"The 'samples' parameter of epsilon_convexity must be an int >= 0. Got {samples!r}."
        )
    executor = executor or InProcessExecutor()
    needs_losses = samples > 0 and any(len(row["members"]) >= 3 for row in within)
    endpoint = (
        _losses(executor, spec, np.eye(n), store, progress, "models") if needs_losses else None
    )
    out = []
    for position, row in enumerate(within):
        members = row["members"]
        result: dict[str, Any] = {
            "cluster": row["cluster"],
            "size": len(members),
            "members": [names[i] for i in members],
            "max_convexity_gap": row["max"],
            "max_gap_pair": None if row["pair"] is None else [names[i] for i in row["pair"]],
            "samples": 0,
        }
        if endpoint is not None and len(members) >= 3:
            weights = hull_samples(len(members), samples, seed=seed + position)
            rows = np.zeros((samples, n))
            rows[:, members] = weights
            losses = _losses(
                executor, spec, rows, store, progress, f"convexity of cluster {row['cluster']}"
            )
            member_losses = endpoint[members]
            jensen = jensen_gaps(weights, losses, member_losses)
            result.update(
                samples=samples,
                jensen_gap_max=float(jensen.max()),
                jensen_gap_mean=float(jensen.mean()),
                weights=weights.tolist(),
                losses=losses.tolist(),
                mean_losses=(weights @ member_losses).tolist(),
                member_losses=member_losses.tolist(),
            )
        measured = [result["max_convexity_gap"], result.get("jensen_gap_max", float("nan"))]
        finite = [v for v in measured if np.isfinite(v)]
        result["epsilon"] = max(finite) if finite else float("nan")
        out.append(result)
    return out


def _losses(
    executor: Executor,
    spec: EngineSpec,
    rows: Sequence[Sequence[float]] | np.ndarray,
    store: ResultStore | None,
    progress: bool,
    description: str,
) -> np.ndarray:
    results = executor.run(spec, rows, store, progress=progress, description=description)
    return np.array([r.result.metrics["loss"] for r in results])
