"""Task-vector similarity (Gueta et al. 2023): cosines of a zoo's task vectors, their spectral
clusters scored against zoo tags, and t-SNE and PCA pictures.

The task vectors start from the zoo's pretrained base, resolved one way for every command
(:func:`~weightscape.models.zoo_base.resolve_base`): ``--base`` must agree with the manifest's
base and the models' ``base`` tags, so a wrong base is refused rather than measured. A zoo
finetuned from several pretrained models on purpose (Gueta et al. App. B) takes
``--per-model-base``: each task vector starts from the base its model's own ``base`` tag names
(:func:`~weightscape.models.zoo_base.resolve_model_bases`); ``--by base`` scores the clusters
against the bases.

A zoo whose models have no tags (and no ``--by``) is clustered into ``--k`` clusters, scored
against nothing: the matrices, t-SNE, PCA and the clusters are written, accuracy and F1 are not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from weightscape.studies.common import SpaceFields, repeated


class Config(SpaceFields):
    """Which zoo, from which base, scored against which tags, clustered by which distance."""

    zoo: Path | None = Field(
        None, description="zoo manifest (YAML/JSON) with tagged models; or give --models"
    )
    models: str | None = Field(
        None, description="glob of checkpoint folders, e.g. 'runs/*/step-150'; or give --zoo"
    )
    config: Path | None = Field(None, description="reference config folder for bare weight files")
    base: str | None = Field(
        None,
        description="pretrained model the task vectors start from: a folder or 'minilm' "
        "(default: the zoo's base, else the 'base' tag its models share); it must agree with "
        "their 'base' tags",
    )
    per_model_base: bool = Field(
        False,
        description="subtract from each model the base its own 'base' tag names (a zoo "
        "finetuned from several pretrained models); by default one base for the whole zoo",
    )
    by: tuple[str, ...] = repeated(
        "zoo tag to score the clusters against and colour plots by (repeatable)",
        default=("dataset",),
        min_length=1,
    )
    k: int | None = Field(
        None,
        ge=2,
        description="number of clusters: required when the models have no tags; with tags, the "
        "clusters for every tag (default: each tag's number of values)",
    )
    distance: Literal["cosine", "euclidean"] = Field(
        "cosine",
        description="cluster and embed by the cosine of task vectors (as Gueta et al.) or by "
        "Euclidean distance",
    )
    seed: int = Field(0, ge=0, description="seed of clustering and t-SNE")
    space: Literal["all", "no-head", "biases", "tuned"] = Field(
        "no-head",
        description="all, no-head, biases or tuned; no-head by default, since heads differ "
        "across datasets",
    )
    out: Path = Field(
        Path("weightscape-out/similarity"), description="folder for matrices, plots, summary.md"
    )

    @field_validator("by")
    @classmethod
    def _once_each(cls, tags: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(tags))

    @model_validator(mode="after")
    def _one_source(self) -> Config:
        if self.zoo is not None and self.models is not None:
            raise ValueError("give one of --zoo, --models, not both")
        if self.per_model_base and self.base is not None:
            raise ValueError("give one of --base, --per-model-base, not both")
        return self


def run(config: Config):
    """Stream the task vectors' Gram matrix from the resolved base, cluster it per tag, embed it.

    Saves ``similarity.npz`` and ``similarity.json`` into ``config.out`` (what
    :meth:`~weightscape.analyses.similarity.Similarity.load` reads back).

    Returns:
        The :class:`~weightscape.analyses.similarity.Similarity`.

    Raises:
        WeightscapeError: Neither ``--zoo`` nor ``--models`` is given, the base cannot be
            resolved or disagrees with the zoo, or a tag is unknown (before any weight is read).
    """
    from weightscape.analyses.similarity import analyse_similarity
    from weightscape.errors import WeightscapeError
    from weightscape.models.zoo import Zoo
    from weightscape.models.zoo_base import resolve_base, resolve_model_bases

    if config.zoo is not None:
        zoo = Zoo.from_manifest(config.zoo)
    elif config.models is not None:
        zoo = Zoo.from_glob(config.models, config=config.config)
    else:
        raise WeightscapeError(
            "Give the models: --zoo (a zoo manifest with tagged models) or --models (a glob of "
            "checkpoint folders)."
        )
    models = list(zoo)
    # The base first: task vectors from a wrong or unknown base are the graver mistake.
    base = resolve_model_bases(zoo) if config.per_model_base else resolve_base(zoo, config.base)
    by = tags_to_score(config, models)
    similarity = analyse_similarity(
        models,
        base,
        space=config.parameter_space(),
        by=by,
        k=config.k,
        distance=config.distance,
        seed=config.seed,
    )
    similarity.save(config.out)
    from weightscape.provenance import note_anchors

    bases = base if isinstance(base, list) else [base]
    note_anchors([*zoo, *bases])
    return similarity


def tags_to_score(config: Config, models: list) -> tuple[str, ...]:
    """The tags the clusters are scored against: ``--by``, or none when it was left out and the
    models have no tags at all; checks ``--k`` against the number of models first.

    Raises:
        WeightscapeError: ``--k`` exceeds the number of models, or there is neither a tag to
            score against nor a ``--k``.
    """
    from weightscape.errors import WeightscapeError

    if config.k is not None and len(models) >= 2 and config.k > len(models):
        raise WeightscapeError(
            f"--k: {config.k} clusters of {len(models)} models; give --k from 2 to {len(models)}."
        )
    if "by" in config.model_fields_set or any(m.tags for m in models):
        return config.by
    if config.k is None:
        raise WeightscapeError(
            f"--k: the {len(models)} models have no tags to score clusters against or to count "
            f"clusters from; give the number of clusters, --k from 2 to {len(models)} (or tag the "
            "models in the zoo manifest and pass --by)."
        )
    return ()
