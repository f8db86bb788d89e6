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
from weightscape.models.peft_anchor import ADAPTER_CONFIG, tuning_spec_of
from weightscape.models.space import ParameterSpace
from weightscape.models.tuning_spec import write_tuning_spec
from weightscape.outputs import write_json
from weightscape.training.mixing import (
    FrozenAnchors,
    Mixer,
    MixTraining,
    functional_model,
    prepare_pair,
    train_mixer,
)

# Files of a reference not copied beside a control point's full weights (a peft adapter's config
# would make the folder an adapter folder again).
_NOT_COPIED = ("train_log.json", ADAPTER_CONFIG)


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
    """Weights on a curve over (a, controls..., b); only the controls are parameters.

    Each control point holds one parameter per in-space tensor, except the task head a bare
    base borrows (``anchors.borrowed``): there every control point is the head donor's tensor,
    fixed, so the whole curve carries the classifier's head, as the line base -> classifier does,
    and a control point is saved as a bare base too (:func:`save_controls`)."""

    def __init__(self, anchors: FrozenAnchors, path: str, controls: int) -> None:
        super().__init__()
        self.anchors = anchors
        self.path = get_path(path, controls + 2)
        self.trained = [n for n in anchors.names if n not in anchors.borrowed]
        a, b = anchors.tensors
        starts = [(k + 1) / (controls + 1) for k in range(controls)]  # evenly along the line
        self.controls = torch.nn.ParameterList(
            torch.nn.ParameterList(
                torch.nn.Parameter((1 - s) * a[n] + s * b[n]) for n in self.trained
            )
            for s in starts
        )

    def control(self, k: int) -> dict[str, torch.Tensor]:
        """Control point ``k``'s (from 0) in-space tensors: its parameters, and the donor's head
        where a bare base borrows it."""
        own = dict(zip(self.trained, self.controls[k], strict=True))
        fixed = self.anchors.tensors[0]  # a borrowed name's tensor is the donor's in every dict
        return {n: own[n] if n in own else fixed[n] for n in self.anchors.names}

    def weights(self, t: float | None = None) -> dict[str, torch.Tensor]:
        c = self.path.coefficients([0.5 if t is None else t])[0]
        a, b = self.anchors.tensors
        controls = [self.control(k) for k in range(len(self.controls))]
        out = {}
        for name in self.anchors.names:
            mixed = c[0] * a[name] + c[-1] * b[name]
            for k, control in enumerate(controls):
                mixed = mixed + c[k + 1] * control[name]
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
        if isinstance(dev, Task)
        else None
    )
    if dev is not None and evaluator is None:  # a text task: the language model's loss
        from weightscape.training.lm_batches import lm_evaluator_for

        evaluator = lm_evaluator_for(a, tokenizer, dev, config.max_length)

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
    """Write each control point as a model folder named after ``reference`` (``a``).

    A control holds its in-space tensors and anchor ``a``'s others, one name per tensor (a tied
    group under its first name, which serves the group as any of its names does), with the
    config and tokenizer files of ``reference``; when a bare base is among the anchors, of that
    base, and without the borrowed task head: the control is then a bare base too, and takes
    the classifier's head wherever the engine evaluates it, as in training.
    """
    from safetensors.torch import save_file

    anchors = mixer.anchors
    like = anchors.checkpoints[anchors.bases[0]] if anchors.bases else reference
    saved = []
    for k in range(len(mixer.controls)):
        folder = out / f"control-{k + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        state = {**anchors.outside, **mixer.control(k)}
        state = {n: t.detach().contiguous() for n, t in state.items() if n not in anchors.borrowed}
        tmp = folder / "model.safetensors.tmp"
        save_file(state, str(tmp), metadata={"format": "pt"})
        tmp.replace(folder / "model.safetensors")  # never overwrite a file whose tensors live
        source = like.config_dir()
        for f in source.iterdir():
            if f.is_file() and f.suffix in (".json", ".txt") and f.name not in _NOT_COPIED:
                shutil.copy(f, folder / f.name)
        if like.adapter_base is not None:  # whole LoRA model now: a sidecar says so
            write_tuning_spec(folder, tuning_spec_of(like))
        saved.append(Checkpoint.from_path(folder, name=f"{reference.name}~control-{k + 1}"))
    return saved
