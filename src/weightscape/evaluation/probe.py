"""The generalised loss: a fresh linear head fitted over the frozen encoder (Gueta et al. 2023).

Losses of models finetuned on different datasets are not comparable through their own heads (a
sentiment head says nothing about topics). Gueta et al. (§3, "generalised loss") therefore drop
the head, fit a new linear classifier on the target task's training data over the model's frozen
representation, and report its loss on the target's test data. Fitting a linear head is convex,
so the result depends on the encoder alone, and for the task a model was finetuned on it plays
the role of the ordinary loss.

Here the representation is what the model's classification head receives (BERT's pooled [CLS],
the first token for heads that take the whole sequence), captured with a forward hook, so any
Hugging Face sequence classifier works without knowing its internals. The head is scikit-learn's
multinomial logistic regression on standardised features (L2 strength ``1/c``). The features of
a point are computed once per (point, task) and kept while the engine lives.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pydantic import Field

from weightscape.data import Task
from weightscape.errors import WeightscapeError
from weightscape.evaluation.evaluator import EvalSettings, tokenised_batches
from weightscape.evaluation.result import PointResult
from weightscape.metrics.classification import classification_metrics
from weightscape.settings import Settings

__all__ = ["Probe", "ProbeEvaluator", "ProbeSettings", "fit_linear_probe", "head_inputs"]

_HEAD_MODULES = ("pre_classifier", "classifier", "score")  # first one present is the head
FEATURE_CACHE = 64  # points whose features an evaluator keeps (a few MB each)


class ProbeSettings(Settings):
    """How the linear head is fitted (part of every probe result's store key).

    Attributes:
        c: Inverse L2 regularisation strength of the logistic regression (scikit-learn's ``C``).
        max_iter: Iterations of the L-BFGS solver.
    """

    c: float = Field(1.0, gt=0, allow_inf_nan=False)
    max_iter: int = Field(2000, ge=1)

    def spec(self) -> dict[str, Any]:
        """JSON-able form for store keys."""
        return {"c": float(self.c).hex(), "max_iter": self.max_iter}


@dataclass(frozen=True)
class Probe:
    """A generalised loss: fit a new head on ``train``, report the loss on the engine's task."""

    train: Task
    settings: ProbeSettings = field(default_factory=ProbeSettings)

    def spec(self) -> dict[str, Any]:
        """What the probe adds to a point's store key: its training data and settings."""
        return {"train": self.train.fingerprint(), **self.settings.spec()}


def head_module(model: torch.nn.Module) -> torch.nn.Module:
    """The module a sequence classifier feeds its representation to (its task head)."""
    for name in _HEAD_MODULES:
        module = getattr(model, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    raise WeightscapeError(
        f"Cannot find the classification head of {type(model).__name__} (looked for "
        f"{', '.join(_HEAD_MODULES)}). The generalised loss needs a sequence classifier with one."
    )


@torch.inference_mode()
def head_inputs(model: torch.nn.Module, batches, n: int) -> np.ndarray:
    """What the head receives for each example, as an (n, hidden) float32 array in task order.

    Args:
        model: A sequence classifier (in eval mode).
        batches: ``(example indices, inputs)`` pairs (:func:`tokenised_batches`).
        n: Number of examples.
    """
    captured: list[torch.Tensor] = []

    def grab(_module, args):
        hidden = args[0]
        captured.append(hidden[:, 0] if hidden.dim() == 3 else hidden)  # first token if a sequence

    handle = head_module(model).register_forward_pre_hook(grab)
    try:
        out: np.ndarray | None = None
        for idx, inputs in batches:
            model(**inputs)
            rows = captured.pop().float().cpu().numpy()
            if out is None:
                out = np.empty((n, rows.shape[1]), dtype=np.float32)
            out[idx] = rows
    finally:
        handle.remove()
    if out is None:
        raise WeightscapeError("Cannot compute features of an empty task; give examples.")
    return out


def fit_linear_probe(
    features: np.ndarray, labels: np.ndarray, num_labels: int, settings: ProbeSettings
):
    """A multinomial logistic regression on standardised features (a scikit-learn pipeline).

    Raises:
        WeightscapeError: If a class of the label set is absent from the training labels (its
            probability would be 0 and its test loss infinite).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    missing = sorted(set(range(num_labels)) - set(np.unique(labels).tolist()))
    if missing:
        raise WeightscapeError(
            f"The probe's training data lacks labels {missing} of {num_labels}: a linear head "
            "cannot learn a class it never sees. Give more probe training examples."
        )
    probe = make_pipeline(
        StandardScaler(), LogisticRegression(C=settings.c, max_iter=settings.max_iter)
    )
    return probe.fit(features, labels)


def probe_outcomes(probe, features: np.ndarray, labels: np.ndarray, num_labels: int) -> PointResult:
    """Per-example loss, prediction and probability of the true label under a fitted probe."""
    from scipy.special import log_softmax

    # From the decision scores, not log(predict_proba), which underflows to -inf when confident.
    scores = probe.decision_function(features)  # columns follow probe.classes_ = 0..K-1
    logits = np.stack([np.zeros_like(scores), scores], axis=1) if scores.ndim == 1 else scores
    log_probs = log_softmax(logits, axis=1)
    lp_true = log_probs[np.arange(len(labels)), labels]
    predictions = log_probs.argmax(axis=1).astype(np.int64)
    losses = (-lp_true).astype(np.float32)
    metrics = classification_metrics(labels, predictions, losses, num_labels)
    return PointResult(
        metrics=metrics,
        predictions=predictions,
        p_true=np.exp(lp_true).astype(np.float32),
        losses=losses,
    )


class ProbeEvaluator:
    """Evaluates the generalised loss of whatever weights the model holds.

    Args:
        tokenizer: A Hugging Face tokenizer.
        task: The test examples the loss is reported on.
        probe: The probe's training data and settings (same label set as ``task``).
        settings: Batch size and truncation length of the forward passes.
        device: Where the batches go.
    """

    def __init__(
        self,
        tokenizer,
        task: Task,
        probe: Probe,
        settings: EvalSettings | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if tuple(probe.train.label_names) != tuple(task.label_names):
            raise WeightscapeError(
                f"The probe's training task '{probe.train.name}' has labels "
                f"{list(probe.train.label_names)} but the test task '{task.name}' has "
                f"{list(task.label_names)}. Give the train and test splits of one task."
            )
        self.task, self.probe = task, probe
        self.settings = settings or EvalSettings()
        self.device = torch.device(device)
        self.labels = np.array(task.labels, dtype=np.int64)
        self.train_labels = np.array(probe.train.labels, dtype=np.int64)
        self.batches = tokenised_batches(tokenizer, task, self.settings, self.device)
        self.train_batches = tokenised_batches(tokenizer, probe.train, self.settings, self.device)
        self._features: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.forward_passes = 0

    def features(self, model: torch.nn.Module, key: str | None = None):
        """(train, test) features of the model as it is now; cached under ``key`` if given."""
        if key is not None and key in self._features:
            self._features.move_to_end(key)
            return self._features[key]
        pair = (
            head_inputs(model, self.train_batches, len(self.train_labels)),
            head_inputs(model, self.batches, len(self.labels)),
        )
        self.forward_passes += len(self.train_batches) + len(self.batches)
        if key is not None:
            self._features[key] = pair
            if len(self._features) > FEATURE_CACHE:
                self._features.popitem(last=False)
        return pair

    def evaluate(self, model: torch.nn.Module, key: str | None = None) -> PointResult:
        """Fit the head on the train features, report loss and metrics on the test features."""
        train, test = self.features(model, key)
        num_labels = self.task.num_labels
        head = fit_linear_probe(train, self.train_labels, num_labels, self.probe.settings)
        return probe_outcomes(head, test, self.labels, num_labels)
