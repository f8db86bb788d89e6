"""The engine: anchors + coefficients -> weights in one working model -> metrics.

This is the only component that turns coefficients into weights and weights into a loss; paths,
grids, planes and hulls elsewhere only produce coefficient rows for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightscape.data import Task, TextTask
from weightscape.errors import WeightscapeError
from weightscape.evaluation.evaluator import EvalSettings, Evaluator, load_tokenizer
from weightscape.evaluation.keys import point_spec, spec_key
from weightscape.evaluation.lm_evaluator import (
    LMEvaluator,
    check_classifiable,
    mask_spec,
    task_objective,
)
from weightscape.evaluation.probe import Probe, ProbeEvaluator
from weightscape.evaluation.result import PointResult
from weightscape.evaluation.working_model import WorkingModel, resolve_device, working_dtype
from weightscape.models.aliases import classifier_anchor, head_donor_hash
from weightscape.models.architecture import read_config
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.models.fingerprint import tokenizer_fingerprint
from weightscape.models.labels import check_same_label_order
from weightscape.models.padding import input_rules, pad_for_last_token
from weightscape.models.space import ParameterSpace, is_head


@dataclass(frozen=True)
class KeyMaker:
    """Builds the store spec of a point from what identifies the engine's computation."""

    hashes: tuple[str, ...]
    space: ParameterSpace
    space_is_complete: bool
    reference: int
    task_fingerprint: str
    settings: dict[str, Any]
    tokenizer_fingerprint: str
    evaluation: str = "classification"

    def spec(self, coefficients: Sequence[float]) -> dict[str, Any]:
        """What evaluating ``coefficients`` computes; its hash is the store key."""
        return point_spec(
            hashes=self.hashes,
            coefficients=coefficients,
            space=self.space.spec(),
            space_is_complete=self.space_is_complete,
            reference_hash=self.hashes[self.reference],
            task=self.task_fingerprint,
            settings=self.settings,
            tokenizer=self.tokenizer_fingerprint,
            evaluation=self.evaluation,
        )


@dataclass(frozen=True)
class EngineSpec:
    """Everything needed to build an :class:`Engine`; picklable, so workers can build their own.

    ``key_maker()`` gives the store keys without building a model (a driver scheduling remote
    work only reads the anchors' tensor names and hashes).
    """

    anchors: tuple[Checkpoint, ...]
    task: Task
    space: ParameterSpace = field(default_factory=ParameterSpace)
    settings: EvalSettings = field(default_factory=EvalSettings)
    device: str = "auto"
    tokenizer: str | Path | None = None
    reference: int = 0
    probe: Probe | None = None

    def build(self) -> Engine:
        """The engine this spec describes (builds the one working model)."""
        return Engine(
            list(self.anchors),
            self.task,
            space=self.space,
            settings=self.settings,
            device=self.device,
            tokenizer=self.tokenizer,
            reference=self.reference,
            probe=self.probe,
        )

    def key_maker(self) -> KeyMaker:
        """Store keys for this spec's points, reading only tensor names and content hashes."""
        reference = self.anchors[self.reference]
        objective = task_objective(self.task, reference, self.probe)
        built_from = self.built_from(objective)
        names = TensorReader(self.anchors[built_from]).keys()
        model = _model_spec(
            head_donor_hash(self.anchors, built_from),
            read_config(self.anchors[built_from]) if objective is None else None,
        )
        return _key_maker(
            self.anchors,
            names,
            self.space,
            self.reference,
            self.task,
            self.settings,
            resolve_device(self.device),
            self.probe,
            self.tokenizer_dir(),
            objective=objective,
            model=model,
        )

    def built_from(self, objective: str | None = None) -> int:
        """The anchor whose config builds the working model (:func:`classifier_anchor`)."""
        return _built_from(self.anchors, self.reference, objective)

    def tokenizer_dir(self) -> Path:
        """The tokenizer's folder: ``tokenizer`` when given, else the reference anchor's."""
        if self.tokenizer is not None:
            return Path(self.tokenizer)
        return tokenizer_dir(self.anchors[self.reference])


def _key_maker(
    anchors,
    names,
    space,
    reference,
    task,
    settings,
    device,
    probe,
    tokenizer,
    dtype=None,
    objective: str | None = None,
    model: dict[str, str] | None = None,
) -> KeyMaker:
    # A probe replaces the head, so head tensors neither take part nor make the key.
    names = [n for n in names if probe is None or not is_head(n)]
    spec = {**settings.spec(), "device": str(device).split(":")[0], **(model or {})}
    if objective == "masked-lm":  # the fixed mask is part of what a masked-LM point computes
        spec["mask"] = mask_spec(settings.mask_seed)
    # The dtype computed in, resolved: "anchors" over bfloat16 files is the bfloat16 point.
    dtype = dtype if dtype is not None else working_dtype(settings.dtype, anchors)
    spec["dtype"] = str(dtype).removeprefix("torch.")
    if probe is not None:
        spec["probe"] = probe.spec()
    return KeyMaker(
        hashes=tuple(c.content_hash() for c in anchors),
        space=space,
        space_is_complete=all(space.takes_part(n) for n in names),
        reference=reference,
        task_fingerprint=task.fingerprint(),
        settings=spec,
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
        evaluation=objective or ("classification" if probe is None else "probe"),
    )


def _built_from(anchors: Sequence[Checkpoint], reference: int, objective: str | None) -> int:
    """A classifier is built from the anchor with a task head (a bare base may come first)."""
    return reference if objective is not None else classifier_anchor(anchors, reference)


def _model_spec(heads_from: str | None, config: Any | None) -> dict[str, str]:
    """Key entries for how the working model reads its anchors and inputs: the head donor of a
    bare base (:mod:`weightscape.models.aliases`), a decoder classifier's padding rule
    (:mod:`weightscape.models.padding`; ``config`` None: not a classifier)."""
    spec = input_rules(config) if config is not None else {}
    if heads_from is not None:
        spec["heads_from"] = heads_from
    return spec


class Engine:
    """Evaluates combinations of a fixed list of anchors on one task.

    Args:
        anchors: The anchor checkpoints, all of one architecture (checked up front).
        task: Examples to evaluate on (already split and subset).
        space: Which tensors are mixed; the others come from ``anchors[reference]``.
        settings: Batch size and truncation length.
        device: ``auto`` (GPU when present), ``cpu``, ``cuda``...
        tokenizer: Directory of the tokenizer; defaults to the reference anchor's folder.
        reference: Index of the anchor that supplies tensors outside the space.
        probe: Report the generalised loss instead of the model's own head's: a new linear head
            fitted on ``probe.train`` over the frozen encoder (:mod:`.probe`). Heads are then
            ignored, so anchors finetuned on tasks with other label counts combine freely.

    A :class:`~weightscape.data.text_task.TextTask` is scored by the anchors' own language-model
    head (causal or masked, chosen by the reference's ``config.architectures``;
    :mod:`.lm_evaluator`), and its points' keys say which (``evaluation``), with the mask seed
    for a masked LM.
    """

    def __init__(
        self,
        anchors: Sequence[Checkpoint],
        task: Task | TextTask,
        *,
        space: ParameterSpace | None = None,
        settings: EvalSettings | None = None,
        device: str = "auto",
        tokenizer: str | Path | None = None,
        reference: int = 0,
        probe: Probe | None = None,
    ) -> None:
        if not 0 <= reference < len(anchors):
            raise WeightscapeError(
                f"The reference anchor index must lie in [0, {len(anchors)}). "
                f"Got {reference} instead."
            )
        self.space = space or ParameterSpace()
        self.settings = settings or EvalSettings()
        self.reference = reference
        self.task = task
        objective = task_objective(task, anchors[reference], probe)
        check_classifiable(task, anchors)
        dtype = working_dtype(self.settings.dtype, anchors)
        built_from = _built_from(anchors, reference, objective)
        self.working = WorkingModel(
            anchors[built_from],
            device=resolve_device(device),
            dtype=dtype,
            task_kind="classification" if objective is None else "text",
        )
        self.anchors = self.working.anchors(
            anchors, ignore=is_head if probe else None, head_from=built_from
        )
        names = list(self.working.state)
        self.space.select(names)  # fails early, naming the space, if it selects nothing
        heads_mixed = any(is_head(n) and self.space.takes_part(n) for n in names)
        if objective is None and probe is None and heads_mixed:
            # Mixed heads must mean the same classes per row (a bare base uses its donor's).
            check_same_label_order([v.checkpoint for v in self.anchors.views if not v.borrowed])
        tok_dir = tokenizer if tokenizer is not None else tokenizer_dir(anchors[reference])
        self.keys = _key_maker(
            anchors,
            names,
            self.space,
            reference,
            task,
            self.settings,
            self.working.device.type,
            probe,
            tok_dir,
            dtype,
            objective=objective,
            model=_model_spec(
                self.anchors.hashes[self.anchors.donor] if self.anchors.borrowed else None,
                self.working.model.config if objective is None else None,
            ),
        )
        self.space_is_complete = self.keys.space_is_complete
        device = self.working.device
        self.evaluator: Evaluator | ProbeEvaluator | LMEvaluator
        if objective is not None:
            self.evaluator = LMEvaluator(
                load_tokenizer(tok_dir), task, objective, self.settings, device
            )
        else:
            tokens = load_tokenizer(tok_dir)
            pad_for_last_token(tokens, self.working.model, anchors[built_from].name)
            if probe is None:
                self.evaluator = Evaluator(tokens, task, self.settings, device)
            else:
                self.evaluator = ProbeEvaluator(tokens, task, probe, self.settings, device)
        _check_vocabulary(self.evaluator, self.working.model, tok_dir, anchors[reference])

    def spec(self, coefficients: Sequence[float]) -> dict[str, Any]:
        """What evaluating ``coefficients`` computes; its hash is the store key."""
        return self.keys.spec(coefficients)

    def evaluate(self, coefficients: Sequence[float]) -> PointResult:
        """Write the point into the working model and evaluate it."""
        self.working.write(self.anchors, coefficients, self.space, self.reference)
        if isinstance(self.evaluator, ProbeEvaluator):
            key = spec_key({"terms": self.spec(coefficients)["terms"]})
            return self.evaluator.evaluate(self.working.model, key)
        return self.evaluator.evaluate(self.working.model)


def _check_vocabulary(evaluator, model, tok_dir, reference: Checkpoint) -> None:
    """Refuse inputs the model cannot read, before any point: token ids past its embedding
    table (another tokenizer's word -> id map), or sequences longer than its position table."""
    batches = [*evaluator.batches, *getattr(evaluator, "train_batches", [])]
    largest = max(int(inputs["input_ids"].max()) for _, inputs in batches)
    rows = model.get_input_embeddings().num_embeddings
    if largest >= rows:
        raise WeightscapeError(
            f"The tokenizer in '{tok_dir}' gives token ids up to {largest}, but checkpoint "
            f"'{reference.name}' has embeddings for {rows} ids only: it is not this model's "
            "tokenizer. Give the tokenizer the model was trained with (--tokenizer)."
        )
    longest = max(int(inputs["input_ids"].shape[1]) for _, inputs in batches)
    positions = usable_positions(model.config)
    if positions is not None and longest > positions:
        raise WeightscapeError(
            f"Inputs reach {longest} tokens (--max-length {evaluator.settings.max_length}), but "
            f"checkpoint '{reference.name}' has positions for {positions}. Give --max-length "
            f"{positions} or less."
        )


def usable_positions(config) -> int | None:
    """How many tokens a model's position table reads (None: no learned absolute positions).

    RoBERTa-style models number positions from ``padding_idx + 1``, so two of their 514 rows
    are never a position.
    """
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return None
    table = getattr(config, "max_position_embeddings", None)
    if not isinstance(table, int):
        return None
    if config.model_type in ("roberta", "xlm-roberta", "camembert", "longformer"):
        return table - (config.pad_token_id or 0) - 1
    return table


def tokenizer_dir(checkpoint: Checkpoint) -> Path:
    """The folder holding the checkpoint's tokenizer (its own folder, else its config's)."""
    folder = checkpoint.path if checkpoint.path.is_dir() else checkpoint.path.parent
    if any(
        (folder / f).is_file() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")
    ):
        return folder
    return checkpoint.config_dir()
