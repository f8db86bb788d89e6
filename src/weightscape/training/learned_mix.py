"""Learn one mixing coefficient per parameter group between two frozen minima.

Qin et al. (2022, Table 2) mix two minima per layer, per module or per matrix:
theta_g = sigmoid(a_g) * theta1_g + (1 - sigmoid(a_g)) * theta2_g, with the logits a_g trained on
the task and the endpoints frozen. The result is a :class:`GroupedPoint`, evaluated by the engine
like any other point (and compared with the best point on the line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from weightscape.data import Task
from weightscape.evaluation.grouped import GroupedPoint
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace, group_of
from weightscape.outputs import write_json
from weightscape.training.mixing import (
    FrozenAnchors,
    Mixer,
    MixTraining,
    prepare_pair,
    train_mixer,
)


class CombineConfig(BaseModel):
    """Settings of a learned combination."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    group_by: Literal["layer", "module", "matrix"] = "layer"
    steps: int = Field(100, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(0.05, gt=0)
    max_length: int = Field(64, ge=8)
    seed: int = 0
    init: float = 0.0  # logit of every group at the start: 0 is the midpoint


class GroupMixer(Mixer):
    """sigmoid(a_g) * theta1 + (1 - sigmoid(a_g)) * theta2 for each group g.

    Groups are those of the tensors the model holds (a tied token table is one tensor, in one
    group). Beside a bare base, both terms of the task head are the classifier's head
    (:class:`~weightscape.training.mixing.FrozenAnchors`), so the head is the classifier's
    whatever its logit, which then gets no gradient and keeps ``init``."""

    def __init__(self, anchors: FrozenAnchors, group_by: str, init: float) -> None:
        super().__init__()
        self.anchors = anchors
        self.group_by = group_by
        self.group_of = {n: group_of(n, group_by) for n in anchors.names}
        self.groups = sorted(set(self.group_of.values()))
        self.logits = torch.nn.Parameter(torch.full((len(self.groups),), float(init)))

    def weights(self, t: float | None = None) -> dict[str, torch.Tensor]:
        alpha = dict(zip(self.groups, torch.sigmoid(self.logits), strict=True))
        a, b = self.anchors.tensors
        return {n: alpha[g] * a[n] + (1 - alpha[g]) * b[n] for n, g in self.group_of.items()}

    def point(self) -> GroupedPoint:
        """The learned mix as a grouped point over (theta1, theta2)."""
        alphas = torch.sigmoid(self.logits.detach()).tolist()
        return GroupedPoint.from_mapping(
            self.group_by, {g: (a, 1.0 - a) for g, a in zip(self.groups, alphas, strict=True)}
        )


def learn_combination(
    a: Checkpoint,
    b: Checkpoint,
    train: Task,
    *,
    config: CombineConfig | None = None,
    space: ParameterSpace | None = None,
    out_dir: str | Path | None = None,
    model_labels: tuple[str, ...] | None = None,
) -> tuple[GroupedPoint, list[dict]]:
    """Train the per-group logits on ``train``; return the learned point and the history."""
    config = config or CombineConfig()
    space = space or ParameterSpace()
    setup = prepare_pair(
        a,
        b,
        train,
        space,
        batch_size=config.batch_size,
        max_length=config.max_length,
        seed=config.seed,
        model_labels=model_labels,
    )
    mixer = GroupMixer(setup.anchors, config.group_by, config.init)
    history = train_mixer(
        setup.model,
        mixer,
        setup.anchors,
        setup.batches,
        MixTraining(steps=config.steps, lr=config.lr, seed=config.seed),
    )
    point = mixer.point()
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json(
            out / f"combination-{config.group_by}.json",
            {
                "config": config.model_dump(),
                "anchors": [a.name, b.name],
                "alphas": {g: c[0] for g, c in point.coefficients},
                "history": history,
            },
        )
    return point, history
