"""The N x N connectivity grid: the line between every pair of a zoo, summarised into matrices.

Juneja et al. (2023) interpolate every pair of their finetuned models and read basins off the
convexity-gap matrix. The grid also carries weight-space distances (Euclidean, and task-vector
cosines when the zoo's pretrained base is known), streamed tensor by tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from weightscape.studies.common import EvalFields, ProbeFields, SpaceFields, Split


class Config(ProbeFields, EvalFields, SpaceFields):
    """The models of a zoo (a manifest or a glob), and how their pairs are walked."""

    zoo: Path | None = Field(None, description="zoo manifest (YAML/JSON); or give --models")
    models: str | None = Field(
        None, description="glob of checkpoint folders, e.g. 'runs/*/step-150'; or give --zoo"
    )
    config: Path | None = Field(
        None, description="reference config folder for bare .safetensors/.bin files (--models)"
    )
    tokenizer: Path | None = Field(None, description="tokenizer folder; default: the zoo's")
    base: str | None = Field(
        None,
        description="pretrained base folder or 'minilm' (for task-vector cosines); default: the "
        "zoo's base, else the 'base' tag every model carries, else none (no cosines)",
    )
    final_only: bool = Field(
        False,
        description="only the zoo's finetuned models: leave out runs' intermediate checkpoints "
        "(a 'step' tag below their 'steps')",
    )
    points: int = Field(11, ge=2, le=100_000, description="points per path, both ends included")
    executor: Literal["inprocess", "ray"] = Field(
        "inprocess", description="evaluate in this process, or on Ray workers"
    )
    ray_address: str | None = Field(
        None, description="existing Ray cluster (with --executor ray); default: a local one"
    )
    workers: int | None = Field(None, ge=1, description="Ray workers; with --executor ray")
    split: Split = Field("validation", description="which seeded 8:1:1 split to use")
    out: Path = Field(Path("weightscape-out/grid"), description="output folder")

    @model_validator(mode="after")
    def _one_source(self) -> Config:
        if (self.zoo is None) == (self.models is None):
            given = "both" if self.zoo is not None else "neither"
            raise ValueError(f"give exactly one of --zoo or --models, not {given}")
        return self

    @model_validator(mode="after")
    def _ray_options(self) -> Config:
        given = [
            flag
            for flag, value in (("--ray-address", self.ray_address), ("--workers", self.workers))
            if value is not None
        ]
        if given and self.executor != "ray":
            verb = "needs" if len(given) == 1 else "need"
            raise ValueError(f"{' and '.join(given)} {verb} --executor ray")
        return self

    def estimated_points(self, models: int | None = None) -> int | None:
        """Distinct points of the grid: each model once, then each pair's interior points."""
        if models is None:
            return None
        return models + models * (models - 1) // 2 * (self.points - 2)

    def load_zoo(self):
        """The zoo: the manifest, or every checkpoint the glob matches.

        Raises:
            WeightscapeError: When it holds fewer than 2 models.
        """
        from weightscape.errors import WeightscapeError
        from weightscape.models.zoo import Zoo

        if self.zoo is not None:
            zoo = Zoo.from_manifest(self.zoo)
        else:
            zoo = Zoo.from_glob(self.models, config=self.config)
        if self.final_only:
            from weightscape.analyses.zoo_groups import final_models

            zoo = Zoo(final_models(zoo), base=zoo.base, tokenizer=zoo.tokenizer, root=zoo.root)
        if len(zoo) < 2:
            raise WeightscapeError(f"A grid needs at least 2 models; the zoo has {len(zoo)}.")
        return zoo


def run(config: Config):
    """Evaluate the grid through the results store and add the weight-space matrices.

    The grid (``grid.npz``, ``grid.json``) is saved into ``config.out``, where ``basins`` reads
    it.

    Returns:
        The :class:`~weightscape.analyses.connectivity.ConnectivityGrid`.
    """
    from weightscape.analyses.connectivity import connectivity_grid
    from weightscape.evaluation.engine import EngineSpec
    from weightscape.runtime.executor import get_executor

    zoo = config.load_zoo()
    spec = EngineSpec(
        tuple(zoo),
        config.load_task(),
        space=config.parameter_space(),
        settings=config.eval_settings(),
        device=config.device,
        tokenizer=config.tokenizer or zoo.tokenizer,
        probe=config.probe(),
    )
    if config.executor == "ray":
        executor = get_executor("ray", address=config.ray_address, workers=config.workers)
    else:
        executor = get_executor()
    grid = connectivity_grid(
        spec,
        points=config.points,
        store=config.results_store(config.out),
        executor=executor,
        progress=config.progress,
    )
    _add_weight_matrices(grid, spec, _base(zoo, config.base))
    grid.save(config.out)
    return grid


def _base(zoo, given: str | None):
    """The base of the task-vector cosines (``resolve_base``'s, checked against the models'
    tags), or None when nothing names one: --base, the manifest or every model's tag."""
    from weightscape.models.zoo_base import resolve_base

    if given is None and zoo.base is None and not all("base" in m.tags for m in zoo):
        return None
    return resolve_base(zoo, given)


def _add_weight_matrices(grid, spec, base) -> None:
    """With a base, cosines of task vectors over the encoder tensors the base has (a finetuned
    head is new, with no pretrained counterpart). The Euclidean distances over the grid's space
    are already there: :func:`connectivity_grid` measures the AUC in them."""
    import numpy as np

    from weightscape.analyses.weight_stats import cached_gram_matrix, cosine_similarities
    from weightscape.models.space import HEAD_PATTERNS

    anchors = list(spec.anchors)
    if base is not None:
        # A finetuned head is drawn anew (whatever head the base has), so it is no task vector.
        encoder = spec.space.model_copy(update={"exclude": (*spec.space.exclude, *HEAD_PATTERNS)})
        gram = cached_gram_matrix(anchors, encoder, base, skip_missing_in_base=True)
        cosines = cosine_similarities(gram)
        np.fill_diagonal(cosines, 1.0)
        grid.matrices["task_vector_cosine"] = cosines
