"""Distances, angles and centroids of checkpoints in weight space, streamed tensor by tensor.

Everything here comes from one N x N Gram matrix ``G_ij = <w_i - b, w_j - b>`` over the tensors
of a parameter space, where ``b`` is a base checkpoint (task vectors, as Gueta et al. 2023) or
zero. From it follow Euclidean distances, cosine similarities and the distance of every model to
every cluster centroid (Juneja et al. 2023, Fig. 3a) without ever materialising a centroid.

The Gram matrix is built by streaming: for each tensor name the N checkpoints' tensors are opened
memory-mapped (nothing is read yet), and rows are read in chunks of about 64 MiB of float64 in
all, so memory stays bounded however large the zoo or the embedding matrix. Products are
accumulated in float64, so bf16 and fp32 checkpoints give the same Gram matrix up to rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from weightscape.errors import WeightscapeError
from weightscape.metrics.clustering import check_symmetric
from weightscape.models.aliases import NameView, aligned_readers
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.models.space import ParameterSpace

__all__ = [
    "base_view",
    "cached_gram_matrix",
    "centroid_distances",
    "centroid_distances_from_gram",
    "centroid_margin",
    "cosine_similarities",
    "euclidean_distances",
    "gram_matrix",
]

CHUNK_BYTES = 64 * 2**20  # float64 bytes of one N x rows block


def gram_matrix(
    checkpoints: Iterable[Checkpoint],
    space: ParameterSpace | None = None,
    base: Checkpoint | Sequence[Checkpoint] | None = None,
    chunk_rows: int | None = None,
    skip_missing_in_base: bool = False,
) -> np.ndarray:
    """Inner products ``<w_i - b, w_j - b>`` of the checkpoints over the space's tensors.

    Only floating-point tensors take part (integer buffers such as ``position_ids`` are not
    weights). Distances do not depend on ``base``, but task vectors are small, so subtracting the
    pretrained model keeps the Gram matrix well conditioned for distances of nearby models.

    Args:
        checkpoints: N checkpoints of one architecture (a :class:`~weightscape.models.zoo.Zoo`
            works).
        space: Which tensors take part; all of them by default.
        base: Checkpoint subtracted from each model; one checkpoint per model to subtract each
            model's own base (models finetuned from different pretrained models:
            ``<w_i - b_i, w_j - b_j>``); ``None`` for raw weights.
        chunk_rows: Rows of each tensor read per step; ``None`` sizes chunks to ~64 MiB.
        skip_missing_in_base: Leave out tensors the base lacks (a task model's new head) instead
            of raising; base names may also lack the task model's prefix (``bert.``).

    Returns:
        The N x N Gram matrix, float64, symmetric positive semi-definite.

    Raises:
        WeightscapeError: If the checkpoints lack tensors of the first one or differ in shape.

    >>> import shutil, tempfile
    >>> from safetensors.torch import save_file
    >>> folder = tempfile.mkdtemp()
    >>> for name, value in (("a", 1.0), ("b", 2.0)):
    ...     save_file({"w": torch.full((2, 2), value)}, f"{folder}/{name}.safetensors")
    >>> models = [Checkpoint.from_path(f"{folder}/{name}.safetensors") for name in "ab"]
    >>> gram_matrix(models).tolist()
    [[4.0, 8.0], [8.0, 16.0]]
    >>> shutil.rmtree(folder)
    """
    models = list(checkpoints)
    if not models:
        raise WeightscapeError("gram_matrix needs at least one checkpoint. Got none.")
    valid_rows = isinstance(chunk_rows, int) and not isinstance(chunk_rows, bool) and chunk_rows > 0
    if chunk_rows is not None and not valid_rows:
        raise WeightscapeError(
            "The 'chunk_rows' parameter of gram_matrix must be None or an int >= 1. "
            f"Got {chunk_rows!r} instead."
        )
    readers = aligned_readers(models)  # a bare base among them is seen as its classifier
    # ... and so is the base subtracted, when it is that bare base (its head the classifier's).
    donor = next((r.donor for r in readers if isinstance(r, NameView)), None)
    offsets = _base_rows(base, len(models), skip_missing_in_base, donor)
    names = _shared_names(readers, [view for view, _ in offsets], space or ParameterSpace())
    gram = torch.zeros(len(readers), len(readers), dtype=torch.float64)
    for name in names:
        for block in _row_blocks(readers, name, offsets, chunk_rows):
            gram += block @ block.T
    return gram.numpy()


GRAM_CACHE_KIND = "gram/1"
# The code a Gram matrix comes out of: reading tensors (models/) and the products (this module).
_GRAM_CODE = ("weightscape.analyses.weight_stats", "weightscape.models")


def cached_gram_matrix(
    checkpoints: Iterable[Checkpoint],
    space: ParameterSpace | None = None,
    base: Checkpoint | Sequence[Checkpoint] | None = None,
    chunk_rows: int | None = None,
    skip_missing_in_base: bool = False,
) -> np.ndarray:
    """:func:`gram_matrix`, kept across commands in the derived-value cache
    (:mod:`weightscape.models.derived_cache`).

    A fully stored rerun would otherwise read every anchor's weights again for its distance
    matrices. The key is everything the matrix depends on: the checkpoints' and bases' content
    hashes (their bytes and configs, in order, never their paths), the parameter space, the
    arguments, the chunk size, torch's version and the source of the code that computes it, so a
    changed input is computed afresh; a damaged entry is computed afresh too.
    """
    import io

    from weightscape.models import derived_cache

    models = list(checkpoints)
    if not models:
        return gram_matrix(models)  # its error
    if base is None or isinstance(base, Checkpoint):
        bases: Any = None if base is None else {"one": base.content_hash()}
    else:
        bases = {"each": [b.content_hash() for b in base]}
    key = derived_cache.cache_key(
        GRAM_CACHE_KIND,
        [c.content_hash() for c in models],
        (space or ParameterSpace()).model_dump(mode="json"),
        bases,
        skip_missing_in_base,
        chunk_rows,
        CHUNK_BYTES,
        torch.__version__,
        derived_cache.code_version(_GRAM_CODE),
    )
    stored = derived_cache.get(GRAM_CACHE_KIND, key)
    if stored is not None:
        try:
            gram = np.load(io.BytesIO(stored), allow_pickle=False)
        except (ValueError, OSError, EOFError):
            gram = None
        if gram is not None and gram.dtype == np.float64 and gram.shape == (len(models),) * 2:
            return gram
    gram = gram_matrix(models, space, base, chunk_rows, skip_missing_in_base)
    buffer = io.BytesIO()
    np.save(buffer, gram, allow_pickle=False)
    derived_cache.put(GRAM_CACHE_KIND, key, buffer.getvalue())
    return gram


def _base_rows(
    base: Checkpoint | Sequence[Checkpoint] | None,
    n: int,
    skip_missing: bool,
    donor: TensorReader | None = None,
) -> list[tuple[_BaseView, list[int]]]:
    """Each distinct base (read once) with the rows (models) it is subtracted from. A single
    base lacking the head takes ``donor``'s (a bare base among the models, seen as its
    classifier) unless ``skip_missing`` leaves the head out."""
    if base is None:
        return []
    if isinstance(base, Checkpoint):
        donor = None if skip_missing else donor
        view = _BaseView(TensorReader(base), donor, skip_missing=skip_missing)
        return [(view, list(range(n)))]
    bases = list(base)
    if len(bases) != n:
        raise WeightscapeError(
            f"The 'base' parameter of gram_matrix must be one checkpoint or one per model ({n}). "
            f"Got {len(bases)} instead."
        )
    rows: dict[str, tuple[_BaseView, list[int]]] = {}
    for i, checkpoint in enumerate(bases):
        key = str(checkpoint.path.resolve())
        if key not in rows:
            rows[key] = (_BaseView(TensorReader(checkpoint), skip_missing=skip_missing), [])
        rows[key][1].append(i)
    return list(rows.values())


# A base checkpoint seen under the finetuned models' tensor names: a pretrained encoder saved as a
# bare base model names its tensors without the task model's prefix (``embeddings.x`` for
# ``bert.embeddings.x``) and has no classification head; with ``skip_missing`` the tensors it
# lacks (the new head) are left out of task vectors (:class:`~weightscape.models.aliases.NameView`).
_BaseView = NameView


def base_view(base: Checkpoint, skip_missing: bool = True) -> _BaseView:
    """``base`` seen under a task model's tensor names (``bert.x`` finds the base's ``x``)."""
    return _BaseView(TensorReader(base), skip_missing=skip_missing)


def _shared_names(
    readers: list[TensorReader], bases: list[_BaseView], space: ParameterSpace
) -> list[str]:
    """Floating-point tensor names selected from the first model, checked in all the others."""
    first = readers[0]
    names = [n for n in space.select(first.keys()) if first.is_floating_point(n)]
    for base in (b for b in bases if b.skip_missing):
        selected, names = names, [n for n in names if n in base]
        if selected and not names:  # the wrong base: task vectors would be silently empty
            raise WeightscapeError(
                f"The base '{base.checkpoint.name}' ({base.checkpoint.path}) shares no tensor "
                f"name with '{first.checkpoint.name}' (e.g. '{selected[0]}'); is it the "
                "pretrained model these were finetuned from? Give the right --base or fix the "
                "zoo's 'base'."
            )
    for reader in [*readers[1:], *bases]:
        missing = [n for n in names if n not in reader]
        shapes = [n for n in names if n in reader and reader.shape(n) != first.shape(n)]
        if missing or shapes:
            problem = f"lacks {missing[:5]}" if missing else f"has other shapes for {shapes[:5]}"
            raise WeightscapeError(
                f"Checkpoint '{reader.checkpoint.name}' {problem} (tensors of "
                f"'{first.checkpoint.name}' in the parameter space {space.describe()}). Use "
                "checkpoints of one architecture or narrow the parameter space."
            )
    return names


def _row_blocks(
    readers: list[TensorReader],
    name: str,
    bases: list[tuple[_BaseView, list[int]]],
    chunk_rows: int | None,
) -> Iterator[torch.Tensor]:
    """N x (rows * row length) float64 blocks of tensor ``name`` minus each model's base, chunk
    by chunk, each read straight from disk (only the block being worked on is ever in memory)."""
    shape = readers[0].shape(name)
    n_rows = shape[0] if shape else 1
    row_length = int(np.prod(shape[1:])) if shape else 1
    step = chunk_rows or max(1, CHUNK_BYTES // (8 * len(readers) * max(row_length, 1)))
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        block = torch.empty(len(readers), (stop - start) * row_length, dtype=torch.float64)
        for i, reader in enumerate(readers):
            block[i].copy_(reader.read_rows(name, start, stop).reshape(-1))
        for base, rows in bases:
            offset = base.read_rows(name, start, stop).reshape(-1).to(torch.float64)
            if len(rows) == len(readers):
                block -= offset  # one base for every model: no indexed copy
            else:
                block[rows] -= offset
        yield block


def euclidean_distances(gram: ArrayLike) -> np.ndarray:
    """Pairwise distances ``sqrt(G_ii + G_jj - 2 G_ij)`` from a Gram matrix.

    Tiny negative squared distances from rounding are clamped to 0; the diagonal is exactly 0.

    >>> euclidean_distances([[1.0, 0.0], [0.0, 4.0]]).round(6).tolist()
    [[0.0, 2.236068], [2.236068, 0.0]]
    """
    g = check_symmetric(gram, "gram", "euclidean_distances")
    diagonal = np.diag(g)
    squared = diagonal[:, None] + diagonal[None, :] - 2.0 * g
    distances = np.sqrt(np.clip(squared, 0.0, None))
    np.fill_diagonal(distances, 0.0)
    return distances


def cosine_similarities(gram: ArrayLike) -> np.ndarray:
    """Pairwise cosine similarities ``G_ij / sqrt(G_ii G_jj)``, clipped to [-1, 1].

    A model with zero norm (a task vector of a model equal to its base) has no direction: its
    row and column are NaN.

    >>> cosine_similarities([[1.0, 1.0], [1.0, 4.0]]).tolist()
    [[1.0, 0.5], [0.5, 1.0]]
    """
    g = check_symmetric(gram, "gram", "cosine_similarities")
    norms = np.sqrt(np.clip(np.diag(g), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        cosines = g / np.outer(norms, norms)
    np.fill_diagonal(cosines, 1.0)  # exactly, not G_ii / sqrt(G_ii)^2
    cosines[norms == 0, :] = np.nan
    cosines[:, norms == 0] = np.nan
    return np.clip(cosines, -1.0, 1.0)


def centroid_distances(
    checkpoints: Iterable[Checkpoint],
    labels: ArrayLike,
    space: ParameterSpace | None = None,
    base: Checkpoint | None = None,
) -> np.ndarray:
    """Distance of every model to the centroid (mean weights) of every cluster.

    Streams the Gram matrix (:func:`gram_matrix`) and applies
    :func:`centroid_distances_from_gram`; no centroid is ever materialised. ``base`` changes
    nothing mathematically and only improves conditioning.

    Returns:
        N x k distances; column j is the cluster with the j-th smallest label.
    """
    return centroid_distances_from_gram(gram_matrix(checkpoints, space, base), labels)


def centroid_distances_from_gram(gram: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """``||w_i - c_j||`` from a Gram matrix, with ``c_j`` the mean of cluster j.

    ``||w_i - c_j||^2 = G_ii - 2/|C_j| sum_{m in C_j} G_im + 1/|C_j|^2 sum_{m,l in C_j} G_ml``.

    Args:
        gram: N x N Gram matrix of the models.
        labels: Cluster label of each model, shape (N,).

    Returns:
        N x k distances; column j is the cluster with the j-th smallest label.

    >>> gram = np.diag([1.0, 1.0, 0.0])  # points (1, 0), (0, 1), (0, 0)
    >>> centroid_distances_from_gram(gram, [0, 0, 1]).round(6).tolist()
    [[0.707107, 1.0], [0.707107, 1.0], [0.707107, 0.0]]
    """
    g = check_symmetric(gram, "gram", "centroid_distances_from_gram")
    values = np.asarray(labels)
    if values.shape != (g.shape[0],):
        raise WeightscapeError(
            "The 'labels' parameter of centroid_distances_from_gram must hold one label per "
            f"model ({g.shape[0]}). Got shape {values.shape} instead."
        )
    _, codes = np.unique(values, return_inverse=True)
    members = np.eye(codes.max() + 1)[codes.reshape(-1)]  # (N, k) one-hot
    weights = members / members.sum(axis=0)  # column j averages over cluster j
    cross = g @ weights  # (N, k): <w_i, c_j>
    centroid_norms = np.einsum("mj,ml,lj->j", weights, g, weights)  # (k,): ||c_j||^2
    squared = np.diag(g)[:, None] - 2.0 * cross + centroid_norms[None, :]
    return np.sqrt(np.clip(squared, 0.0, None))


def centroid_distances_from_distances(distances: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """``||w_i - c_j||`` from pairwise Euclidean distances alone, with ``c_j`` the mean of
    cluster j: ``||w_i - c||^2 = mean_m D_im^2 - mean_{m,l} D_ml^2 / 2`` over the members.

    A grid already holds the Euclidean matrix, so basins need not stream the weights again.

    >>> d = np.sqrt([[0.0, 2.0, 1.0], [2.0, 0.0, 1.0], [1.0, 1.0, 0.0]])  # (1,0), (0,1), (0,0)
    >>> centroid_distances_from_distances(d, [0, 0, 1]).round(6).tolist()
    [[0.707107, 1.0], [0.707107, 1.0], [0.707107, 0.0]]
    """
    squared = check_symmetric(distances, "distances", "centroid_distances_from_distances") ** 2
    values = np.asarray(labels)
    if values.shape != (squared.shape[0],):
        raise WeightscapeError(
            "The 'labels' parameter of centroid_distances_from_distances must hold one label "
            f"per model ({squared.shape[0]}). Got shape {values.shape} instead."
        )
    _, codes = np.unique(values, return_inverse=True)
    members = np.eye(codes.max() + 1)[codes.reshape(-1)]
    weights = members / members.sum(axis=0)  # (N, k): column j averages over cluster j
    spread = 0.5 * np.einsum("mj,ml,lj->j", weights, squared, weights)  # (k,)
    return np.sqrt(np.clip(squared @ weights - spread[None, :], 0.0, None))


def centroid_margin(distances: ArrayLike, cluster: int = 0) -> np.ndarray:
    """How much nearer each model is to one cluster's centroid than to the nearest other one.

    ``||w - c_cluster|| - min_{j != cluster} ||w - c_j||``. With two clusters and ``cluster=0``
    this is Juneja et al.'s ``||w - c_1|| - ||w - c_2||`` (Fig. 3a); with more it is the same
    one-versus-rest coordinate: negative inside the cluster's Voronoi cell, 0 on its boundary,
    continuous across it. Call it once per cluster for k coordinates.

    >>> centroid_margin([[1.0, 3.0], [2.5, 0.5]]).tolist()
    [-2.0, 2.0]
    >>> centroid_margin([[1.0, 3.0, 2.0]], cluster=2).tolist()
    [1.0]
    """
    d = np.asarray(distances, dtype=np.float64)
    valid_cluster = isinstance(cluster, int) and not isinstance(cluster, bool)
    if d.ndim != 2 or d.shape[1] < 2 or not valid_cluster or not 0 <= cluster < d.shape[1]:
        raise WeightscapeError(
            "centroid_margin needs N x k distances with k >= 2 and a 'cluster' in [0, k - 1]. "
            f"Got shape {d.shape} and cluster={cluster!r} instead."
        )
    others = np.delete(d, cluster, axis=1).min(axis=1)
    return d[:, cluster] - others
