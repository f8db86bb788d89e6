"""Clusters of models from a distance matrix, and how well clusters match known groups.

Juneja et al. (2023) cluster finetuned models by spectral clustering on convexity-gap distances
and find basins that differ in how the models generalise; Gueta et al. (2023) report clustering
accuracy against the dataset or task each model was finetuned on. The pieces here:

* :func:`affinity_from_distances` turns distances into a Gaussian affinity;
* :func:`eigengap_k` chooses the number of clusters from the Laplacian spectrum;
* :func:`spectral_clusters` clusters (scikit-learn's ``SpectralClustering``), labels canonical;
* :func:`spectral_embedding` and :func:`embedding_centroid_distances` place models in the
  Laplacian eigenmap the clusters are read from (Juneja et al.'s centroid distances);
* :func:`clustering_accuracy` and :func:`per_group_f1` score clusters against known groups;
* :func:`cluster_table` summarises measured metrics per cluster with Juneja et al.'s Table 1
  separation statistics.

No torch, no data: inputs are plain arrays, as stored in the results store. scikit-learn and
scipy are imported inside the functions that need them, so importing this module stays cheap.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from weightscape.errors import WeightscapeError

__all__ = [
    "affinity_from_distances",
    "check_symmetric",
    "cluster_table",
    "clustering_accuracy",
    "eigengap_k",
    "embedding_centroid_distances",
    "per_group_f1",
    "spectral_clusters",
    "spectral_embedding",
]


def check_symmetric(matrix: ArrayLike, name: str, owner: str) -> np.ndarray:
    """Return ``matrix`` as a finite, square, symmetric float64 array (symmetrised), else raise.

    Symmetry is checked to a tolerance of 1e-9 times the largest entry, so matrices assembled
    from measured pairs in either order pass; the result is exactly symmetric.

    >>> check_symmetric([[0, 1], [1, 0]], "D", "demo").dtype
    dtype('float64')
    """
    try:
        array = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise WeightscapeError(
            f"The '{name}' parameter of {owner} must be a square matrix of numbers. "
            f"Got {type(matrix).__name__} instead."
        ) from error
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] < 2:
        raise WeightscapeError(
            f"The '{name}' parameter of {owner} must be a square matrix of at least 2 x 2. "
            f"Got shape {array.shape} instead."
        )
    if not np.all(np.isfinite(array)):
        i, j = np.argwhere(~np.isfinite(array))[0]
        raise WeightscapeError(
            f"The '{name}' parameter of {owner} must hold finite numbers. "
            f"Got {array[i, j]} at [{i}, {j}] instead; was that pair measured?"
        )
    tolerance = 1e-9 * max(float(np.abs(array).max()), np.finfo(float).tiny)
    asymmetry = np.abs(array - array.T)
    if asymmetry.max() > tolerance:
        i, j = np.unravel_index(np.argmax(asymmetry), array.shape)
        raise WeightscapeError(
            f"The '{name}' parameter of {owner} must be symmetric. Got [{i}, {j}] = "
            f"{array[i, j]} but [{j}, {i}] = {array[j, i]}; average the two orders or "
            "measure each pair once."
        )
    return (array + array.T) / 2


def _distances(distances: ArrayLike, owner: str) -> np.ndarray:
    """Validate a distance matrix: symmetric, non-negative, zero diagonal."""
    matrix = check_symmetric(distances, "distances", owner)
    if (matrix < 0).any():
        i, j = np.argwhere(matrix < 0)[0]
        raise WeightscapeError(
            f"The 'distances' parameter of {owner} must be non-negative. "
            f"Got {matrix[i, j]} at [{i}, {j}] instead."
        )
    diagonal = np.abs(np.diag(matrix))
    if diagonal.max() > 1e-9 * max(float(matrix.max()), np.finfo(float).tiny):
        i = int(np.argmax(diagonal))
        raise WeightscapeError(
            f"The 'distances' parameter of {owner} must have a zero diagonal (a model is at "
            f"distance 0 from itself). Got {matrix[i, i]} at [{i}, {i}] instead."
        )
    np.fill_diagonal(matrix, 0.0)
    return matrix


def affinity_from_distances(distances: ArrayLike, delta: float | None = None) -> np.ndarray:
    """Gaussian affinity ``exp(-D^2 / (2 delta^2))`` between models, from their distances.

    The default scale ``delta`` is the median of the *positive* off-diagonal distances (the
    median heuristic). Zeros are left out because convexity gaps within a basin are often exactly
    0: with a large basin the plain median would be 0 and the affinity undefined. For distances
    that are all positive the two medians agree. When most pairs lie in different groups (many or
    unbalanced groups) the median is a between-group distance, the contrast is weak and
    :func:`eigengap_k` can undercount; pass a smaller ``delta`` (e.g. a within-group scale).

    Args:
        distances: Symmetric N x N matrix of non-negative distances with a zero diagonal.
        delta: Length scale, a finite number > 0; ``None`` for the median heuristic.

    Returns:
        The N x N affinity, 1 on the diagonal, in (0, 1] elsewhere (0 only by underflow).

    Raises:
        WeightscapeError: For an invalid matrix or ``delta``, or when all distances are 0.

    >>> affinity_from_distances([[0.0, 1.0], [1.0, 0.0]]).round(4).tolist()
    [[1.0, 0.6065], [0.6065, 1.0]]
    """
    matrix = _distances(distances, "affinity_from_distances")
    if delta is None:
        delta = default_delta(matrix)
    elif not _positive_real(delta):
        raise WeightscapeError(
            "The 'delta' parameter of affinity_from_distances must be a finite number > 0 or "
            f"None. Got {delta!r} instead."
        )
    return np.exp(-(matrix**2) / (2.0 * float(delta) ** 2))


def default_delta(distances: ArrayLike) -> float:
    """The median of the positive off-diagonal distances: the default affinity length scale.

    >>> default_delta([[0.0, 0.0, 2.0], [0.0, 0.0, 4.0], [2.0, 4.0, 0.0]])
    3.0
    """
    matrix = _distances(distances, "default_delta")
    off_diagonal = matrix[np.triu_indices_from(matrix, k=1)]
    positive = off_diagonal[off_diagonal > 0]
    if positive.size == 0:
        raise WeightscapeError(
            "The distances are all zeros, so no length scale can be chosen and every model is "
            "in one cluster. Check that the distances were measured, or give 'delta'."
        )
    return float(np.median(positive))


def eigengap_k(affinity: ArrayLike, k_max: int | None = None) -> int:
    """Number of clusters at the largest gap in the normalised Laplacian's spectrum.

    With ``L = I - D^{-1/2} W D^{-1/2}`` (self-loops ignored, as scikit-learn's spectral
    embedding does) and eigenvalues ``l_1 <= ... <= l_N``, a graph of k well separated clusters
    has k eigenvalues near 0 and then a jump, so k is the ``argmax`` of ``l_{k+1} - l_k``
    (von Luxburg 2007, section 8.3). k runs over ``[2, k_max]``: one cluster is never chosen,
    because with the median length scale even two clear groups leave ``l_2`` large, so a big
    first gap is no evidence against clusters.

    Args:
        affinity: Symmetric N x N matrix of non-negative affinities, N >= 3.
        k_max: Largest k considered, an int in ``[2, N - 1]``. ``None`` gives
            ``max(2, N // 2)`` capped at ``N - 1``: clusters of two models on average. (Small
            clusters that split off make the top of the spectrum jump to 2, which the cap keeps
            from being read as structure.)

    Returns:
        The chosen number of clusters.

    >>> block = np.kron(np.eye(3), np.ones((2, 2))) + 1e-3  # three pairs, weakly linked
    >>> eigengap_k(block)
    3
    """
    from scipy.sparse.csgraph import laplacian

    matrix = check_symmetric(affinity, "affinity", "eigengap_k")
    if (matrix < 0).any():
        raise WeightscapeError(
            "The 'affinity' parameter of eigengap_k must be non-negative. "
            f"Got {matrix.min()} instead."
        )
    n = matrix.shape[0]
    if n < 3:
        raise WeightscapeError(
            f"eigengap_k needs at least 3 models to choose between k values. Got {n} instead; "
            "give the number of clusters explicitly."
        )
    if k_max is None:
        k_max = min(max(2, n // 2), n - 1)
    else:
        k_max = _check_k(k_max, "k_max", "eigengap_k", n - 1, n)
    eigenvalues = np.linalg.eigvalsh(laplacian(matrix, normed=True))
    gaps = np.diff(eigenvalues)[1:k_max]  # gaps[i] = l_{k+1} - l_k for k = i + 2
    return int(np.argmax(gaps)) + 2


def spectral_clusters(
    distances: ArrayLike, k: int | None = None, delta: float | None = None, seed: int = 0
) -> np.ndarray:
    """Cluster models by spectral clustering on the Gaussian affinity of their distances.

    Uses scikit-learn's ``SpectralClustering(affinity="precomputed",
    assign_labels="cluster_qr")``: cluster-QR reads the labels off the spectral embedding
    without k-means' random restarts, so the result depends only on the eigenvectors (and
    ``seed`` only fixes the eigensolver's start vector). Labels are then made canonical:
    cluster 0 holds the first model, cluster 1 the first model not in cluster 0, and so on, so
    two runs and two orderings of the same partition give the same labels.

    Args:
        distances: Symmetric N x N distances (e.g. convexity gaps) with a zero diagonal.
        k: Number of clusters, an int in ``[2, N]``; ``None`` chooses it by :func:`eigengap_k`.
        delta: Length scale of the affinity; see :func:`affinity_from_distances`.
        seed: Random state of the eigensolver.

    Returns:
        Integer labels, shape (N,), in ``0 .. k-1``.

    >>> d = np.array([[0, .1, 2, 2], [.1, 0, 2, 2], [2, 2, 0, .1], [2, 2, .1, 0]])
    >>> spectral_clusters(d, k=2).tolist()
    [0, 0, 1, 1]
    """
    from sklearn.cluster import SpectralClustering

    affinity = affinity_from_distances(distances, delta)
    n = affinity.shape[0]
    k = eigengap_k(affinity) if k is None else _check_k(k, "k", "spectral_clusters", n, n)
    model = SpectralClustering(
        n_clusters=k, affinity="precomputed", assign_labels="cluster_qr", random_state=seed
    )
    return canonical_labels(model.fit_predict(affinity))


def spectral_embedding(
    distances: ArrayLike, k: int, delta: float | None = None, seed: int = 0
) -> np.ndarray:
    """The models' coordinates in the spectral embedding that spectral clustering reads.

    The first ``k`` eigenvectors ``x`` of the normalised Laplacian ``L = I - D^{-1/2} W
    D^{-1/2}`` of the Gaussian affinity ``W`` (self-loops ignored), mapped back to
    ``u = D^{-1/2} x`` and kept with the constant first one (scikit-learn's
    ``spectral_embedding(W, n_components=k, drop_first=False)``). This is the space in which
    Juneja et al.'s released code measures ``||w - c1|| - ||w - c2||`` (their Fig. 3a;
    ``constellations/theoretical/clustering.py``, ``get_sc_centroid_dists``). Each coordinate's
    sign is arbitrary, so only distances in the embedding carry meaning.

    Args:
        distances: Symmetric N x N distances (e.g. convexity gaps) with a zero diagonal.
        k: Number of eigenvectors (the number of clusters), an int in ``[2, N]``.
        delta: Length scale of the affinity; see :func:`affinity_from_distances`.
        seed: Random state of the eigensolver's start vector.

    Returns:
        (N, k) coordinates.

    >>> d = np.array([[0, .1, 2, 2], [.1, 0, 2, 2], [2, 2, 0, .1], [2, 2, .1, 0]])
    >>> x = spectral_embedding(d, 2)[:, 1]  # the first column is constant
    >>> bool(np.isclose(x[0], x[1]) and np.isclose(x[2], x[3]) and x[0] * x[2] < 0)
    True
    """
    from sklearn.manifold import spectral_embedding as laplacian_eigenmap

    affinity = affinity_from_distances(distances, delta)
    n = affinity.shape[0]
    k = _check_k(k, "k", "spectral_embedding", n, n)
    return laplacian_eigenmap(affinity, n_components=k, drop_first=False, random_state=seed)


def embedding_centroid_distances(embedding: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Euclidean distance of every point to every cluster's mean, in any coordinates.

    Clusters are taken in sorted label order (column j is the j-th distinct label). With the
    coordinates of :func:`spectral_embedding` these are Juneja et al.'s centroid distances; the
    cluster means are the k-means centres their code fits, at k-means' fixed point.

    >>> embedding_centroid_distances([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]], [0, 0, 1]).tolist()
    [[1.0, 3.0], [1.0, 3.605551275463989], [3.1622776601683795, 0.0]]
    """
    points = np.asarray(embedding, dtype=np.float64)
    values = _labels(labels, "labels", "embedding_centroid_distances")
    if points.ndim != 2 or points.shape[0] != values.size or not np.all(np.isfinite(points)):
        raise WeightscapeError(
            "The 'embedding' parameter of embedding_centroid_distances must be a finite "
            f"(N, d) array with one row per label ({values.size}). Got shape {points.shape} "
            "instead."
        )
    centres = np.stack([points[values == c].mean(axis=0) for c in np.unique(values)])
    return np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=-1)


def canonical_labels(labels: ArrayLike) -> np.ndarray:
    """Relabel a partition so that groups are numbered in order of their first member.

    >>> canonical_labels(["b", "a", "b", "c"]).tolist()
    [0, 1, 0, 2]
    """
    values = _labels(labels, "labels", "canonical_labels")
    _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    rank = np.empty_like(first)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[inverse.reshape(-1)]


def align_labels(reference: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Rename the clusters of ``labels`` after the ``reference`` clusters they best match.

    Matching is one-to-one and maximises the models shared (Hungarian); clusters left without a
    partner get new labels after the reference's. Used to follow the same runs' basins across
    training checkpoints, where cluster numbers are otherwise arbitrary.

    >>> align_labels([0, 0, 1, 1], [1, 1, 0, 0]).tolist()
    [0, 0, 1, 1]
    >>> align_labels([0, 0, 0, 1], [0, 1, 2, 2]).tolist()
    [0, 2, 1, 1]
    """
    ref_values, values, _, rows, cols = _matching(reference, labels, "align_labels")
    ref_names, names = np.unique(ref_values), np.unique(values)
    mapping = {names[c]: ref_names[r] for r, c in zip(rows, cols, strict=True)}
    fresh = iter(range(int(ref_names.max()) + 1, int(ref_names.max()) + 1 + len(names)))
    for name in names:
        if name not in mapping:
            mapping[name] = next(fresh)
    return np.array([mapping[v] for v in values], dtype=np.int64)


def _matching(true: ArrayLike, pred: ArrayLike, owner: str) -> tuple[np.ndarray, ...]:
    """Contingency table of two partitions and its best one-to-one matching (Hungarian)."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics.cluster import contingency_matrix

    true_values = _labels(true, "true", owner)
    pred_values = _labels(pred, "pred", owner)
    if true_values.size != pred_values.size:
        raise WeightscapeError(
            f"The 'true' and 'pred' parameters of {owner} must label the same models. Got "
            f"{true_values.size} and {pred_values.size} labels instead."
        )
    table = contingency_matrix(true_values, pred_values)  # (true groups, predicted clusters)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return true_values, pred_values, table, rows, cols


def clustering_accuracy(true: ArrayLike, pred: ArrayLike) -> float:
    """Fraction of models in matched groups under the best one-to-one matching of labels.

    Each predicted cluster is matched to at most one true group (Hungarian algorithm on the
    contingency table) so that the most models agree; unmatched groups count as wrong. The
    score ignores label names and works when the numbers of groups differ.

    >>> clustering_accuracy([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    >>> clustering_accuracy(["a", "a", "b", "b", "c", "c"], [0, 0, 0, 0, 1, 1])
    0.6666666666666666
    """
    true_values, _, table, rows, cols = _matching(true, pred, "clustering_accuracy")
    return float(table[rows, cols].sum() / true_values.size)


def per_group_f1(true: ArrayLike, pred: ArrayLike) -> dict[Any, float]:
    """F1 of each true group against the predicted cluster matched to it.

    Matching as in :func:`clustering_accuracy`; a group left unmatched (more groups than
    clusters) scores 0.

    >>> per_group_f1(["a", "a", "b", "b", "c", "c"], [0, 0, 0, 0, 1, 1])
    {'a': 0.6666666666666666, 'b': 0.0, 'c': 1.0}
    """
    from sklearn.metrics import f1_score

    true_values, pred_values, _, rows, cols = _matching(true, pred, "per_group_f1")
    groups, true_codes = np.unique(true_values, return_inverse=True)
    clusters, pred_codes = np.unique(pred_values, return_inverse=True)
    as_group = np.full(clusters.size, -1)  # unmatched clusters predict no group
    as_group[cols] = rows
    scores = f1_score(
        true_codes.reshape(-1),
        as_group[pred_codes.reshape(-1)],
        labels=np.arange(groups.size),
        average=None,
        zero_division=0,
    )
    return {group.item(): float(score) for group, score in zip(groups, scores, strict=True)}


def cluster_table(labels: ArrayLike, metrics: Mapping[str, ArrayLike]) -> list[dict[str, Any]]:
    """Per cluster: size, and mean, std, min, max and overlap of each metric, and Juneja et al.'s
    Table 1 separation of each cluster from the larger one.

    ``std`` is the sample standard deviation (ddof = 1; NaN for a one-model cluster, where
    Juneja et al. write N/A). ``overlap`` is a weightscape statistic, not Juneja's: the fraction
    of the cluster's models whose value lies inside the [min, max] range of at least one other
    cluster: 0 when the cluster's values are cleanly separated from every other cluster, 1 when
    none is (NaN with one cluster).

    ``separation`` holds Juneja et al.'s Table 1 statistics, with C1 the larger cluster (the
    first in label order among equally large ones; its row is flagged ``"c1": True``) and C2 the
    row's cluster: ``"mean"`` is ``(mu_C1 - mu_C2) / sigma_C1`` and ``"max"`` is
    ``(mu_C1 - max_{w in C2} f(w)) / sigma_C1``. ``sigma_C1`` is the population standard
    deviation (ddof = 0, ``np.std`` as in Juneja et al.'s ``plot/cluster_wise_means_std_max.py``).
    With more than two clusters each other cluster is compared with C1 in turn. C1's own row,
    and every row when there is one cluster, hold NaN; a constant C1 gives +-inf (or NaN).

    Args:
        labels: Cluster label of each model, shape (N,).
        metrics: Metric name -> one finite value per model, shape (N,).

    Returns:
        One row per cluster in sorted label order: ``{"cluster", "size", "c1", "metrics": {name:
        {"mean", "std", "min", "max", "overlap"}}, "separation": {name: {"mean", "max"}}}``.

    >>> rows = cluster_table([0, 0, 1], {"acc": [0.8, 0.6, 0.7]})
    >>> rows[0]["size"], round(rows[0]["metrics"]["acc"]["mean"], 6), rows[1]["metrics"]["acc"]
    (2, 0.7, {'mean': 0.7, 'std': nan, 'min': 0.7, 'max': 0.7, 'overlap': 1.0})
    >>> rows[0]["c1"], {k: round(v, 6) for k, v in rows[1]["separation"]["acc"].items()}
    (True, {'mean': 0.0, 'max': 0.0})
    """
    values = _labels(labels, "labels", "cluster_table")
    columns = {name: _metric(column, name, values.size) for name, column in metrics.items()}
    clusters = np.unique(values)
    sizes = np.array([int((values == cluster).sum()) for cluster in clusters])
    c1 = values == clusters[int(np.argmax(sizes))]  # argmax: the first of equally large ones
    rows = []
    for cluster in clusters:
        inside = values == cluster
        others = [values == other for other in clusters if other != cluster]
        summary = {name: _summary(column, inside, others) for name, column in columns.items()}
        is_c1 = bool(np.array_equal(inside, c1))
        separation = {
            name: _separation(column, c1, None if is_c1 else inside)
            for name, column in columns.items()
        }
        rows.append(
            {
                "cluster": cluster.item(),
                "size": int(inside.sum()),
                "c1": is_c1,
                "metrics": summary,
                "separation": separation,
            }
        )
    return rows


def _separation(column: np.ndarray, c1: np.ndarray, c2: np.ndarray | None) -> dict[str, float]:
    """Juneja et al.'s Table 1: (mu_C1 - mu_C2) / sigma_C1 and (mu_C1 - max_C2) / sigma_C1."""
    if c2 is None:
        return {"mean": float("nan"), "max": float("nan")}
    mean, sigma = column[c1].mean(), column[c1].std()  # ddof = 0, as Juneja et al.'s np.std
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "mean": float(np.float64(mean - column[c2].mean()) / sigma),
            "max": float(np.float64(mean - column[c2].max()) / sigma),
        }


def _summary(column: np.ndarray, inside: np.ndarray, others: list[np.ndarray]) -> dict[str, float]:
    """Mean, std, range and overlap of one metric over one cluster."""
    mine = column[inside]
    overlapping = np.zeros(mine.size, dtype=bool)
    for other in others:
        overlapping |= (mine >= column[other].min()) & (mine <= column[other].max())
    return {
        "mean": float(mine.mean()),
        "std": float(mine.std(ddof=1)) if mine.size > 1 else float("nan"),
        "min": float(mine.min()),
        "max": float(mine.max()),
        "overlap": float(overlapping.mean()) if others else float("nan"),
    }


def _metric(column: ArrayLike, name: str, n: int) -> np.ndarray:
    """A metric column as finite float64 values, one per model."""
    try:
        array = np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise WeightscapeError(
            f"The metric '{name}' given to cluster_table must be a sequence of numbers."
        ) from error
    if array.shape != (n,) or not np.all(np.isfinite(array)):
        raise WeightscapeError(
            f"The metric '{name}' given to cluster_table must hold one finite number per "
            f"model ({n}). Got shape {array.shape} with {int((~np.isfinite(array)).sum())} "
            "non-finite value(s) instead."
        )
    return array


def _labels(labels: ArrayLike, name: str, owner: str) -> np.ndarray:
    """Labels as a non-empty 1-D array."""
    array = np.asarray(labels)
    if array.ndim != 1 or array.size == 0:
        raise WeightscapeError(
            f"The '{name}' parameter of {owner} must be a non-empty 1-D sequence of labels. "
            f"Got shape {array.shape} instead."
        )
    return array


def _check_k(value: object, name: str, owner: str, largest: int, n_models: int) -> int:
    """An int in ``[2, largest]``, else a scikit-learn style error."""
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integral or not 2 <= value <= largest:
        raise WeightscapeError(
            f"The '{name}' parameter of {owner} must be an int in [2, {largest}] for "
            f"{n_models} models. Got {value!r} instead."
        )
    return int(value)


def _positive_real(value: object) -> bool:
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return real and bool(np.isfinite(value)) and value > 0
