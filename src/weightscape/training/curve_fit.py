"""Fit a low-loss curve between two frozen minima (Garipov et al. 2018; Qin et al. 2022).

Only the control points train; the endpoints stay fixed. Control points start on the line (the
midpoint for one control, as Qin et al.), each batch uses one t ~ U(0, 1), and the curve is
evaluated on a dev set at chosen t every few steps. The control points are saved as ordinary
checkpoints, so the fitted curve is a path like any other: ``bezier`` (or ``polychain``) over
anchors (a, controls..., b), evaluated by the same engine through the same store.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from weightscape.data import Task
from weightscape.evaluation.evaluator import EvalSettings, Evaluator
from weightscape.geometry import get_path
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace
from weightscape.outputs import write_json
from weightscape.training.mixing import (
    FrozenAnchors,
    Mixer,
    MixTraining,
    functional_model,
    prepare_pair,
    train_mixer,
)


class CurveConfig(BaseModel):
    """Settings of a curve fit."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    path: Literal["bezier", "polychain"] = "bezier"
    controls: int = Field(1, ge=1)
    steps: int = Field(200, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-4, gt=0)
    max_length: int = Field(64, ge=8)
    seed: int = 0
    eval_every: int = Field(50, ge=0)
    eval_ts: tuple[float, ...] = (0.25, 0.5, 0.75)


class CurveMixer(Mixer):
    """Weights on a curve over (a, controls..., b); only the controls are parameters."""

    def __init__(self, anchors: FrozenAnchors, path: str, controls: int) -> None:
        super().__init__()
        self.anchors = anchors
        self.path = get_path(path, controls + 2)
        a, b = anchors.tensors
        starts = [(k + 1) / (controls + 1) for k in range(controls)]  # evenly along the line
        self.controls = torch.nn.ParameterList(
            torch.nn.ParameterList(
                torch.nn.Parameter((1 - s) * a[n] + s * b[n]) for n in anchors.names
            )
            for s in starts
        )

    def weights(self, t: float | None = None) -> dict[str, torch.Tensor]:
        c = self.path.coefficients([0.5 if t is None else t])[0]
        a, b = self.anchors.tensors
        out = {}
        for i, name in enumerate(self.anchors.names):
            mixed = c[0] * a[name] + c[-1] * b[name]
            for k, control in enumerate(self.controls):
                mixed = mixed + c[k + 1] * control[i]
            out[name] = mixed
        return out

    def sample_t(self, generator: torch.Generator) -> float:
        return float(torch.rand(1, generator=generator))


def fit_curve(
    a: Checkpoint,
    b: Checkpoint,
    train: Task,
    out_dir: str | Path,
    *,
    config: CurveConfig | None = None,
    dev: Task | None = None,
    space: ParameterSpace | None = None,
    model_labels: tuple[str, ...] | None = None,
) -> tuple[list[Checkpoint], list[dict]]:
    """Train the control points; return the anchors of the fitted path and the history.

    The returned list is ``[a, control_1, ..., control_k, b]``: evaluate it with the engine and
    path ``config.path``. Control checkpoints are saved in ``out_dir/control-K`` (and re-saved
    at every evaluation, so an interrupted fit keeps its latest curve).
    """
    config = config or CurveConfig()
    space = space or ParameterSpace()
    out = Path(out_dir)
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
    model, anchors, tokenizer = setup.model, setup.anchors, setup.tokenizer
    mixer = CurveMixer(anchors, config.path, config.controls)
    evaluator = (
        Evaluator(
            tokenizer, dev, EvalSettings(max_length=config.max_length, model_labels=model_labels)
        )
        if dev is not None
        else None
    )

    def evaluate(step: int) -> dict[str, Any]:
        save_controls(mixer, a, out)
        if evaluator is None:
            return {}
        with torch.no_grad():
            return {
                str(t): evaluator.evaluate(
                    functional_model(model, mixer.weights(t), anchors.outside)
                ).metrics
                for t in config.eval_ts
            }

    settings = MixTraining(steps=config.steps, lr=config.lr, seed=config.seed)
    history = train_mixer(
        model,
        mixer,
        anchors,
        setup.batches,
        settings,
        evaluate,
        eval_every=config.eval_every or config.steps,
    )
    controls = save_controls(mixer, a, out)
    write_json(
        out / "curve.json",
        {"config": config.model_dump(), "anchors": [a.name, b.name], "history": history},
    )
    return [a, *controls, b], history


def save_controls(mixer: CurveMixer, reference: Checkpoint, out: Path) -> list[Checkpoint]:
    """Write each control point as a model folder (tensors outside the space from ``a``)."""
    from safetensors.torch import save_file

    saved = []
    for k, control in enumerate(mixer.controls, start=1):
        folder = out / f"control-{k}"
        folder.mkdir(parents=True, exist_ok=True)
        state = {n: t.contiguous() for n, t in mixer.anchors.outside.items()}
        state.update(
            {n: p.detach().contiguous() for n, p in zip(mixer.anchors.names, control, strict=True)}
        )
        tmp = folder / "model.safetensors.tmp"
        save_file(state, str(tmp), metadata={"format": "pt"})
        tmp.replace(folder / "model.safetensors")  # never overwrite a file whose tensors live
        source = reference.config_dir()
        for f in source.iterdir():
            if f.is_file() and f.suffix in (".json", ".txt") and f.name != "train_log.json":
                shutil.copy(f, folder / f.name)
        saved.append(Checkpoint.from_path(folder, name=f"{reference.name}~control-{k}"))
    return saved
