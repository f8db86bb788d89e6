"""Task vectors of a zoo: how similar they are, how they cluster, and a 2-D picture of them.

Gueta et al. (2023, sections 2.3 and 4) subtract the pretrained weights from each finetuned
model ("task vectors"), compare them by cosine similarity, cluster them by spectral clustering
with as many clusters as datasets (or dataset families, or training-set sizes) and score the
clusters by clustering accuracy and per-group F1; t-SNE shows the regions. A zoo without tags
is clustered into a given number of clusters, unscored (:func:`cluster_models`). Models finetuned on
the same data cluster together, models of the same task more loosely, and data size does not
decide the clusters (App. C, Fig. 8).

Models finetuned from different pretrained models (App. B) can each be measured from their own
base (``base`` given per model): ``<w_i - b_i, w_j - b_j>``; clustering against the zoo's
``base`` tag then asks whether the task vectors themselves still tell the bases apart.

Everything follows from one N x N Gram matrix of task vectors, streamed tensor by tensor
(:func:`~weightscape.analyses.weight_stats.gram_matrix`), so memory stays at a few tensors
whatever the zoo's size: cosines, Euclidean distances, norms, and the PCA of the task vectors
(kernel PCA of the Gram matrix is exactly PCA of the vectors it holds).
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from weightscape.analyses.weight_stats import cosine_similarities, euclidean_distances, gram_matrix
from weightscape.errors import WeightscapeError, unknown_name_error
from weightscape.metrics.clustering import (
    check_symmetric,
    clustering_accuracy,
    per_group_f1,
    spectral_clusters,
)
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace
from weightscape.outputs import write_json

__all__ = [
    "DISTANCES",
    "Clusters",
    "Similarity",
    "TagClustering",
    "analyse_similarity",
    "cluster_by_tag",
    "cluster_models",
    "direction_distances",
    "pca_embedding",
    "tag_values",
    "task_vector_similarity",
    "tsne_embedding",
]

DISTANCES = ("cosine", "euclidean")


@dataclass
class TagClustering:
    """Spectral clusters of the task vectors scored against one tag of the zoo.

    Attributes:
        tag: The zoo tag the clusters are scored against (e.g. ``dataset``).
        k: Number of clusters (by default the tag's number of distinct values).
        truth: Each model's tag value, as text.
        labels: Each model's cluster (canonical: cluster 0 holds the first model).
        accuracy: Clustering accuracy under the best one-to-one matching of clusters to values.
        f1: Tag value -> F1 of its models against the cluster matched to it.
        distance: ``cosine`` or ``euclidean``: what the clusters were computed from.
    """

    tag: str
    k: int
    truth: list[str]
    labels: np.ndarray
    accuracy: float
    f1: dict[str, float]
    distance: str = "cosine"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {**self.__dict__, "labels": [int(v) for v in self.labels]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TagClustering:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "labels": np.asarray(data["labels"], dtype=np.int64)})


@dataclass
class Clusters:
    """Spectral clusters of the task vectors into a chosen number of clusters, scored against
    nothing (a zoo without tags, or the plain partition beside the tag scores).

    Attributes:
        k: Number of clusters.
        labels: Each model's cluster (canonical: cluster 0 holds the first model).
        distance: ``cosine`` or ``euclidean``: what the clusters were computed from.
    """

    k: int
    labels: np.ndarray
    distance: str = "cosine"

    def members(self, names: Sequence[str]) -> list[list[str]]:
        """The models' names in each cluster, cluster 0 first.

        >>> Clusters(2, np.array([0, 1, 0])).members(["a", "b", "c"])
        [['a', 'c'], ['b']]
        """
        return [
            [n for n, c in zip(names, self.labels, strict=True) if c == i] for i in range(self.k)
        ]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {"k": self.k, "distance": self.distance, "labels": [int(v) for v in self.labels]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Clusters:
        """Inverse of :meth:`to_dict`."""
        return cls(data["k"], np.asarray(data["labels"], dtype=np.int64), data["distance"])


@dataclass
class Similarity:
    """The Gram matrix of a zoo's task vectors and what is read off it.

    Attributes:
        names: Model names, in matrix order.
        tags: Each model's zoo tags.
        gram: (N, N) inner products ``<w_i - b, w_j - b>`` of the task vectors (per-model bases:
            ``<w_i - b_i, w_j - b_j>``).
        base: Path of the base ``b`` the task vectors start from (per-model bases: ``per model:``
            and their paths).
        space: The parameter space the vectors span (:meth:`ParameterSpace.spec`).
        clusterings: Tag -> the clusters scored against it.
        clusters: The partition into a given number of clusters (``k``), scored against no tag;
            None when no ``k`` was given.
        embeddings: ``tsne`` / ``pca`` -> (N, 2) coordinates of the models.
    """

    names: list[str]
    tags: list[dict[str, Any]]
    gram: np.ndarray
    base: str = ""
    space: dict[str, Any] = field(default_factory=dict)
    clusterings: dict[str, TagClustering] = field(default_factory=dict)
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    clusters: Clusters | None = None

    @property
    def cosine(self) -> np.ndarray:
        """(N, N) cosine similarities of the task vectors (NaN for a zero task vector)."""
        return cosine_similarities(self.gram)

    @property
    def euclidean(self) -> np.ndarray:
        """(N, N) Euclidean distances between the models (equal to those of their vectors)."""
        return euclidean_distances(self.gram)

    @property
    def norms(self) -> np.ndarray:
        """(N,) lengths of the task vectors: how far each model moved from the base."""
        return np.sqrt(np.clip(np.diag(self.gram), 0.0, None))

    def distances(self, kind: str = "cosine") -> np.ndarray:
        """``cosine``: :func:`direction_distances` of the task vectors; ``euclidean``: plain."""
        if kind not in DISTANCES:
            raise unknown_name_error("distance", kind, DISTANCES)
        if kind == "euclidean":
            return self.euclidean
        flat = [n for n, norm in zip(self.names, self.norms, strict=True) if norm == 0]
        if flat:
            raise WeightscapeError(
                f"The task vectors of {', '.join(flat)} are zero (the models equal the base "
                f"'{self.base}' over the parameter space), so they have no direction. Leave "
                "them out of the zoo or use the Euclidean distance."
            )
        return direction_distances(self.cosine)

    def save(self, folder: str | Path) -> Path:
        """Write ``similarity.npz`` (matrices, embeddings) and ``similarity.json`` (the rest)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"gram": self.gram, "cosine": self.cosine, "euclidean": self.euclidean}
        arrays.update({"norms": self.norms})
        arrays.update({f"embedding_{k}": v for k, v in self.embeddings.items()})
        np.savez(folder / "similarity.npz", **arrays)
        meta = {
            "names": self.names,
            "tags": self.tags,
            "base": self.base,
            "space": self.space,
            "clusterings": {t: c.to_dict() for t, c in self.clusterings.items()},
            "clusters": self.clusters.to_dict() if self.clusters is not None else None,
        }
        write_json(folder / "similarity.json", meta, default=str)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Similarity:
        """Read what :meth:`save` wrote."""
        folder = Path(folder)
        if not (folder / "similarity.npz").is_file() or not (folder / "similarity.json").is_file():
            raise WeightscapeError(
                f"'{folder}' holds no similarity results (similarity.npz and similarity.json). "
                "Run `weightscape similarity --out` into it first."
            )
        meta = json.loads((folder / "similarity.json").read_text())
        with np.load(folder / "similarity.npz") as data:
            embeddings = {k[10:]: data[k] for k in data.files if k.startswith("embedding_")}
            gram = data["gram"]
        clusterings = {t: TagClustering.from_dict(c) for t, c in meta["clusterings"].items()}
        clusters = meta.get("clusters")  # absent from files written before untagged zoos
        return cls(
            names=meta["names"],
            tags=meta["tags"],
            gram=gram,
            base=meta["base"],
            space=meta["space"],
            clusterings=clusterings,
            embeddings=embeddings,
            clusters=Clusters.from_dict(clusters) if clusters else None,
        )


def task_vector_similarity(
    models: Sequence[Checkpoint],
    base: Checkpoint | Sequence[Checkpoint],
    space: ParameterSpace | None = None,
    chunk_rows: int | None = None,
) -> Similarity:
    """Stream the Gram matrix of the models' task vectors ``w_i - base``.

    Args:
        models: N >= 2 finetuned checkpoints of one architecture.
        base: The pretrained checkpoint they were finetuned from; it may be a bare encoder whose
            tensor names lack the task model's prefix (``bert.``) and that has no head. Or one
            base per model (each model's own, e.g. from
            :func:`~weightscape.models.zoo_base.resolve_model_bases`): ``w_i - b_i``.
        space: Tensors that take part; default ``no-head``, since models finetuned on different
            datasets have heads of different shapes (and a new head has no pretrained origin).
        chunk_rows: Rows read per tensor per step; see :func:`gram_matrix`.

    Returns:
        A :class:`Similarity` without clusters or embeddings.
    """
    models = list(models)
    if len(models) < 2:
        raise WeightscapeError(
            f"Task-vector similarity needs at least 2 models. Got {len(models)} instead."
        )
    space = space or ParameterSpace(preset="no-head")
    gram = gram_matrix(models, space, base, chunk_rows=chunk_rows, skip_missing_in_base=True)
    if isinstance(base, Checkpoint):
        described = str(base.path)
    else:
        described = "per model: " + ", ".join(dict.fromkeys(str(b.path) for b in base))
    return Similarity(
        names=[m.name for m in models],
        tags=[dict(m.tags) for m in models],
        gram=gram,
        base=described,
        space=space.spec(),
    )


def direction_distances(cosine: ArrayLike) -> np.ndarray:
    """Distances between the unit task vectors: ``||u_i - u_j|| = sqrt(2 - 2 cos_ij)``.

    This is how cosine similarity is clustered here. It is a true metric (the chord of the
    angle), a monotone function of the cosine, and the Euclidean distance after every task
    vector is scaled to length 1, so norm growth during training, which Gueta et al. find hides
    the clusters, no longer counts. Under the Gaussian affinity of
    :func:`~weightscape.metrics.clustering.spectral_clusters` it gives
    ``exp(-(1 - cos) / delta^2)``: an affinity that grows with the cosine.

    >>> direction_distances([[1.0, 0.0], [0.0, 1.0]]).round(6).tolist()
    [[0.0, 1.414214], [1.414214, 0.0]]
    """
    return euclidean_distances(cosine)  # the cosine matrix is the Gram matrix of unit vectors


def cluster_by_tag(
    similarity: Similarity,
    tag: str,
    k: int | None = None,
    distance: str = "cosine",
    delta: float | None = None,
    seed: int = 0,
) -> TagClustering:
    """Spectral clusters of the task vectors, scored against a tag of the zoo.

    Args:
        similarity: The zoo's task-vector similarity.
        tag: A tag every model has (``dataset``, ``family``, ``train_size``, ...).
        k: Number of clusters; by default the tag's number of distinct values (Gueta et al.).
        distance: ``cosine`` (:func:`direction_distances`, as Gueta et al.) or ``euclidean``.
        delta: Affinity length scale; see :func:`~weightscape.metrics.clustering.
            affinity_from_distances`.
        seed: Random state of the eigensolver.
    """
    truth = tag_values(similarity.names, similarity.tags, tag)
    if k is None:
        k = len(set(truth))
        if k < 2:
            raise WeightscapeError(
                f"Every model has the same '{tag}' ('{truth[0]}'), so there are no groups to "
                "recover. Score the clusters against another tag or give k."
            )
    labels = spectral_clusters(similarity.distances(distance), k=k, delta=delta, seed=seed)
    return TagClustering(
        tag=tag,
        k=int(k),
        truth=truth,
        labels=labels,
        accuracy=clustering_accuracy(truth, labels),
        f1=per_group_f1(truth, labels),
        distance=distance,
    )


def cluster_models(
    similarity: Similarity,
    k: int,
    distance: str = "cosine",
    delta: float | None = None,
    seed: int = 0,
) -> Clusters:
    """Spectral clusters of the task vectors into ``k`` clusters, scored against no tag.

    The same partition :func:`cluster_by_tag` scores for that ``k`` (same distances, same seed).

    Args:
        similarity: The zoo's task-vector similarity.
        k: Number of clusters, from 2 to the number of models.
        distance: ``cosine`` (:func:`direction_distances`, as Gueta et al.) or ``euclidean``.
        delta: Affinity length scale; see :func:`~weightscape.metrics.clustering.
            affinity_from_distances`.
        seed: Random state of the eigensolver.
    """
    check_k(k, len(similarity.names))
    labels = spectral_clusters(similarity.distances(distance), k=k, delta=delta, seed=seed)
    return Clusters(k=int(k), labels=labels, distance=distance)


def check_k(k: object, models: int) -> int:
    """``k`` if it is a number of clusters for ``models`` models (2 to ``models``), else an error.

    >>> check_k(2, 4)
    2
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 2 <= k <= models:
        raise WeightscapeError(
            f"The 'k' parameter (number of clusters) must be an int from 2 to the number of "
            f"models, {models}. Got {k!r} instead."
        )
    return int(k)


def tag_values(names: Sequence[str], tags: Sequence[dict[str, Any]], tag: str) -> list[str]:
    """Each model's value of ``tag`` as text; errors name an unknown tag or the models without it.

    >>> tag_values(["a", "b"], [{"dataset": "rt"}, {"dataset": 1}], "dataset")
    ['rt', '1']
    """
    missing = [n for n, t in zip(names, tags, strict=True) if tag not in t]
    if len(missing) == len(names):
        available = sorted({key for t in tags for key in t})
        if not available:
            raise WeightscapeError(
                f"Unknown tag '{tag}': the models have no tags. Give a zoo manifest whose models "
                "have tags (e.g. dataset, family, train_size)."
            )
        raise unknown_name_error("tag", tag, available)
    if missing:
        raise WeightscapeError(
            f"The models {', '.join(missing)} have no tag '{tag}', so the clusters cannot be "
            "scored against it. Tag every model in the zoo manifest."
        )
    return [str(t[tag]) for t in tags]


def tsne_embedding(distances: ArrayLike, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of the models from their pairwise distances (Gueta et al., Fig. 2).

    The perplexity (an effective number of neighbours) is clamped to ``max(1, (N - 1) / 3)``,
    below N as t-SNE requires, so a small zoo still has a picture. The exact gradient is used:
    a zoo has tens to hundreds of models, where it costs well under a second, while the
    Barnes-Hut approximation's threads are many times slower on a busy CPU.

    Returns:
        (N, 2) coordinates; only the neighbourhoods, not the distances, mean anything.
    """
    from sklearn.manifold import TSNE

    matrix = check_symmetric(distances, "distances", "tsne_embedding")
    if not isinstance(perplexity, numbers.Real) or not perplexity > 0:
        raise WeightscapeError(
            "The 'perplexity' parameter of tsne_embedding must be a number > 0. "
            f"Got {perplexity!r} instead."
        )
    n = matrix.shape[0]
    clamped = min(float(perplexity), max(1.0, (n - 1) / 3))
    tsne = TSNE(
        n_components=2,
        metric="precomputed",
        init="random",
        method="exact",
        perplexity=clamped,
        random_state=seed,
    )
    return tsne.fit_transform(matrix)


def pca_embedding(gram: ArrayLike, n_components: int = 2) -> np.ndarray:
    """Coordinates of the task vectors on their first principal components, from the Gram matrix.

    Kernel PCA with the linear kernel centres the Gram matrix (``HGH``, with ``H`` the centring
    matrix) and scales its top eigenvectors by the square roots of their eigenvalues: exactly
    the PCA scores of the vectors, which are never materialised (classical MDS).

    >>> points = pca_embedding([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 6.0, 9.0]])  # collinear
    >>> np.abs(points[:, 1]).max() < 1e-6, np.ptp(points[:, 0]).round(6)
    (np.True_, np.float64(2.0))
    """
    from sklearn.decomposition import KernelPCA

    return KernelPCA(n_components=n_components, kernel="precomputed").fit_transform(
        np.asarray(gram, dtype=np.float64)
    )


def analyse_similarity(
    models: Sequence[Checkpoint],
    base: Checkpoint | Sequence[Checkpoint],
    space: ParameterSpace | None = None,
    by: Sequence[str] = ("dataset",),
    k: int | None = None,
    distance: str = "cosine",
    seed: int = 0,
) -> Similarity:
    """The whole study: stream the Gram matrix, cluster against each tag, embed in 2-D.

    The tags are checked before any weight is read, so a typo fails at once.

    Args:
        models: The zoo's finetuned checkpoints, with tags.
        base: The pretrained checkpoint they started from, or each model's own.
        space: Tensors that take part; default ``no-head``.
        by: Tags to score the clusters against (one clustering per tag); empty for a zoo without
            tags, which then needs ``k``.
        k: Number of clusters for every tag; by default each tag's number of distinct values.
            Given, the plain partition into ``k`` clusters is kept too (``Similarity.clusters``).
        distance: What to cluster and embed by: ``cosine`` (Gueta et al.) or ``euclidean``.
        seed: Random state of clustering and t-SNE.
    """
    models = list(models)
    if distance not in DISTANCES:
        raise unknown_name_error("distance", distance, DISTANCES)
    if k is not None and len(models) >= 2:  # fewer: task_vector_similarity says so
        check_k(k, len(models))
    elif k is None and not by:
        raise WeightscapeError(
            "Without tags to score against, the number of clusters must be given: pass k (an "
            f"int from 2 to the number of models, {len(models)})."
        )
    for tag in by:
        tag_values([m.name for m in models], [m.tags for m in models], tag)
    similarity = task_vector_similarity(models, base, space)
    for tag in by:
        similarity.clusterings[tag] = cluster_by_tag(similarity, tag, k, distance, seed=seed)
    if k is not None:
        similarity.clusters = cluster_models(similarity, k, distance, seed=seed)
    similarity.embeddings["tsne"] = tsne_embedding(similarity.distances(distance), seed=seed)
    similarity.embeddings["pca"] = pca_embedding(similarity.gram)
    return similarity
