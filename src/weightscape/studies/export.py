"""Write any point as a model folder that ``from_pretrained`` loads (``weightscape export``).

Every point weightscape evaluates is sum_i c_i * theta_i over anchors; this command writes one of
them out with :func:`~weightscape.evaluation.export.save_combination`, the engine's own writer,
so the folder holds exactly the weights the engine evaluates for those coefficients (in the
``dtype`` the points are evaluated in). The point is one of:

* ``--t T`` on ``--path`` between the ANCHORS (linear: any t, as ``interpolate --t`` takes;
  bezier and polychain: t in [0, 1]);
* ``--coefficients c1,...,cN``: one weight per anchor;
* ``--centroid``: 1/N on each of the ANCHORS, or on every model of ``--zoo`` when none is named;
* ``--from-run FOLDER``: a point of a finished ``interpolate``, ``curve`` or ``combine`` run
  (:mod:`weightscape.studies.run_points`): its best point, or ``--t`` on its path, with the
  run's own anchors, parameter space and dtype.

The folder gets ``model.safetensors`` and ``config.json`` (or, with ``--format peft``, a peft
adapter folder for LoRA adapter anchors), the tokenizer, ``weightscape_combination.json`` (the
anchors' content hashes and the coefficients) and ``export.json`` (what the point is).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import Field, model_validator

from weightscape.studies.common import Device, SpaceFields, positional

KINDS = ("--t", "--coefficients", "--centroid", "--from-run")
"""The flags that say which point to export; exactly one (``--t`` may refine ``--from-run``)."""


class Config(SpaceFields):
    """Which point to export, from which anchors, into which folder."""

    anchors: tuple[str, ...] = positional(
        "checkpoints to combine (paths, or names in --zoo); none with --from-run, or with "
        "--zoo --centroid (every model of the zoo)",
        default=(),
    )
    zoo: Path | None = Field(None, description="zoo manifest that resolves anchor names")
    config: Path | None = Field(
        None, description="reference config folder for bare .safetensors/.bin files"
    )
    tokenizer: Path | None = Field(
        None,
        description="tokenizer folder to copy (default: the zoo's, else the reference's)",
    )
    t: float | None = Field(
        None,
        allow_inf_nan=False,
        description="the point at t on --path between the anchors (linear: any t; bezier, "
        "polychain: 0..1); with --from-run, a t on that run's path instead of its best point",
    )
    path: str = Field("linear", description="path type of --t: linear, bezier, polychain")
    coefficients: tuple[Annotated[float, Field(allow_inf_nan=False)], ...] | None = Field(
        None, min_length=1, description="one weight per anchor, e.g. 0.2,0.3,0.5"
    )
    centroid: bool = Field(
        False,
        description="the centroid: 1/N on each anchor (every model of --zoo if none)",
    )
    from_run: Path | None = Field(
        None,
        description="output folder of a finished interpolate, curve or combine run: export its "
        "best point (or --t on its path) with its anchors, space and dtype",
    )
    mix: Literal["line", "curve", "layer", "module", "matrix"] | None = Field(
        None,
        description="with --from-run: the path or mix of the run: curve (a curve run's default) "
        "or line; for a combine run, line (default) or a learned mix: layer, module, matrix",
    )
    reference: int = Field(
        0,
        ge=0,
        description="index of the anchor that gives the config and unmixed tensors",
    )
    ignore_heads: bool = Field(
        False,
        description="take the head from the reference anchor, so that models with other label "
        "counts can be combined",
    )
    dtype: Literal["float32", "bfloat16", "float16", "anchors"] = Field(
        "float32",
        description="dtype of the saved weights (computed in float32, cast once, as evaluation "
        "with --dtype does); with --from-run, the run's",
    )
    format: Literal["model", "peft"] = Field(
        "model",
        description="model (a Hugging Face model folder; LoRA merged) or peft (an adapter "
        "folder, for LoRA adapter anchors)",
    )
    device: Device = Field("auto", description="where the mix is computed: auto, cpu, cuda")
    out: Path = Field(Path("weightscape-out/export"), description="the model folder to write")

    @model_validator(mode="after")
    def _one_point(self) -> Config:
        kinds = (
            self.t is not None and self.from_run is None,
            self.coefficients is not None,
            self.centroid,
            self.from_run is not None,
        )
        given = [flag for flag, on in zip(KINDS, kinds, strict=True) if on]
        if len(given) != 1:
            what = f"not {' and '.join(given)}" if given else "none was given"
            raise ValueError(f"give the point to export: one of {', '.join(KINDS)}; {what}")
        if self.from_run is not None:
            self._check_from_run()
        else:
            self._check_anchors()
        self._check_out()
        return self

    def _check_anchors(self) -> None:
        n = len(self.anchors)
        if self.mix is not None:
            raise ValueError("--mix chooses a path of a --from-run folder; give --from-run")
        if self.t is None and "path" in self.model_fields_set:
            raise ValueError("--path is the path of --t; give --t")
        if self.centroid:
            if n == 1 or (n == 0 and self.zoo is None):
                raise ValueError(
                    "--centroid: name 2 or more ANCHORS, or give --zoo (all its models)"
                )
        elif n == 0:
            raise ValueError("ANCHORS: name the checkpoints to combine")
        if self.coefficients is not None and len(self.coefficients) != n:
            raise ValueError(
                f"--coefficients: give one weight per anchor: {n} anchors, "
                f"{len(self.coefficients)} weights"
            )
        if self.t is not None:
            self.coefficient_row()  # the path and t fit the anchors, or an error naming them
        if n and self.reference >= n:
            raise ValueError(f"--reference: {self.reference} is no anchor index; give 0 to {n - 1}")

    def _check_from_run(self) -> None:
        if self.anchors:
            raise ValueError("--from-run exports with the run's own anchors; name no ANCHORS")
        own = sorted(
            self.flag_of(f)
            for f in ("space", "include", "exclude", "dtype", "zoo", "config", "path")
            if f in self.model_fields_set
        )
        if own:
            raise ValueError(f"--from-run uses the run's settings; leave out {', '.join(own)}")

    def _check_out(self) -> None:
        """Refuse an ``--out`` that holds something other than an export, before any work."""
        out = Path(self.out)
        if not out.is_dir():
            return
        from weightscape.evaluation.export import read_provenance

        if read_provenance(out) is None:
            held = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
            if held:
                raise ValueError(
                    f"--out: '{out}' already exists and holds {', '.join(held[:3])}, not an "
                    "export; give a new folder or delete it"
                )

    def coefficient_row(self) -> list[float]:
        """The coefficients of ``t`` on ``path`` over the anchors."""
        from weightscape.errors import WeightscapeError, unknown_name_error
        from weightscape.geometry.paths import PATHS, get_path

        if self.path not in PATHS:
            raise ValueError(f"--path: {unknown_name_error('path', self.path, PATHS)}")
        try:
            path = get_path(self.path, len(self.anchors))
        except WeightscapeError as err:
            raise ValueError(f"ANCHORS: {len(self.anchors)} given for --path: {err}") from None
        try:
            return [float(c) for c in path.coefficients([self.t])[0]]
        except WeightscapeError as err:
            raise ValueError(f"--t: {err}") from None


class ExportResult(NamedTuple):
    """The exported folder and what it holds.

    Attributes:
        folder: The model folder (as a checkpoint).
        anchors: The anchors' names, in coefficient order.
        coefficients: One weight per anchor, or for a learned mix ``{"group_by", "groups"}``
            (group -> one weight per anchor).
        point: What the point is: ``kind`` and, by kind, ``t``, ``path``, the source run ...
        reused: Whether ``out`` already held this very export.
    """

    folder: Any
    anchors: list[str]
    coefficients: Any
    point: dict[str, Any]
    reused: bool


def run(config: Config) -> ExportResult:
    """Resolve the point and write it into ``config.out`` (an identical export there is kept).

    Raises:
        WeightscapeError: An anchor that cannot be read or does not match the others, a run
            folder that holds no point, or an ``--out`` that holds another export.
    """
    from weightscape.evaluation.export import read_provenance
    from weightscape.provenance import note_anchors

    anchors, coefficients, extra, point = _resolve(config)
    _refuse_bottleneck_adapters(anchors)
    note_anchors(anchors)
    out = Path(config.out)
    reused = out.is_dir() and read_provenance(out) is not None  # else _save refuses it
    folder = _save(anchors, coefficients, out, config, extra)
    names = [a.name for a in anchors]
    return ExportResult(folder, names, _as_json(coefficients), point, reused)


def _refuse_bottleneck_adapters(anchors: list) -> None:
    """A model tuned with bottleneck adapters has no format transformers loads: its
    ``from_pretrained`` would drop the adapters without a word, a silently different model."""
    from weightscape.errors import WeightscapeError
    from weightscape.models.peft_anchor import tuning_spec_of
    from weightscape.models.tuning.adapter import AdapterSpec

    tuned = [a.name for a in anchors if isinstance(tuning_spec_of(a), AdapterSpec)]
    if tuned:
        raise WeightscapeError(
            f"ANCHORS: {', '.join(tuned)} were tuned with bottleneck adapters, which "
            "transformers cannot load (from_pretrained would silently drop them), so no exported "
            "folder would hold the point outside weightscape. Export points of full, BitFit or "
            "LoRA models; within weightscape, weightscape.evaluation.export.save_combination "
            "writes a folder it reads back with its adapters."
        )


def _as_json(coefficients: Any) -> Any:
    """One weight per anchor, or a grouped point as ``{"group_by", "groups"}``."""
    from weightscape.evaluation.grouped import GroupedPoint

    if isinstance(coefficients, GroupedPoint):
        groups = {g: [float(c) for c in v] for g, v in coefficients.coefficients}
        return {"group_by": coefficients.group_by, "groups": groups}
    return [float(c) for c in coefficients]


def _resolve(config: Config) -> tuple[list, Any, dict[str, Any], dict[str, Any]]:
    """Anchors, coefficients, save_combination's settings, and the point's description."""
    from weightscape.errors import WeightscapeError
    from weightscape.studies.common import resolve_checkpoints

    settings: dict[str, Any] = {
        "space": config.parameter_space(),
        "dtype": config.dtype,
    }
    if config.from_run is not None:
        from weightscape.studies.run_points import read_run_point

        found = read_run_point(Path(config.from_run), config.t, config.mix)
        settings.update(space=found.space, dtype=found.dtype, tokenizer=found.tokenizer)
        point = {"kind": "from-run", "run": str(config.from_run), **found.describe}
        return found.anchors, found.coefficients, settings, point
    settings["tokenizer"] = config.tokenizer or _zoo_tokenizer(config.zoo)
    if config.centroid and not config.anchors:
        from weightscape.models.zoo import Zoo

        anchors = list(Zoo.from_manifest(config.zoo))
    else:
        try:
            anchors = resolve_checkpoints(config.anchors, config.zoo, config.config)
        except WeightscapeError as err:
            raise WeightscapeError(f"ANCHORS: {err}") from None
    if config.centroid:
        return (
            anchors,
            [1.0 / len(anchors)] * len(anchors),
            settings,
            {"kind": "centroid"},
        )
    if config.coefficients is not None:
        return anchors, list(config.coefficients), settings, {"kind": "coefficients"}
    point = {"kind": "path", "path": config.path, "t": config.t}
    return anchors, config.coefficient_row(), settings, point


def _zoo_tokenizer(zoo: Path | None) -> Path | None:
    if zoo is None:
        return None
    from weightscape.models.zoo import Zoo

    return Zoo.from_manifest(zoo).tokenizer


def _save(anchors: list, coefficients: Any, out: Path, config: Config, extra: dict):
    """save_combination into ``out``; into a fresh sibling moved in when ``out`` is the empty
    folder the command line made for this run (it holds only its hidden marker)."""
    import shutil

    from weightscape.errors import WeightscapeError
    from weightscape.evaluation.export import read_provenance, save_combination

    def save(folder: Path):
        return save_combination(
            anchors,
            coefficients,
            folder,
            reference=config.reference,
            ignore_heads=config.ignore_heads,
            device=config.device,
            format=config.format,
            **extra,
        )

    if config.reference >= len(anchors):
        raise WeightscapeError(
            f"--reference: {config.reference} is no anchor index; give 0 to {len(anchors) - 1}."
        )
    if not out.exists() or read_provenance(out) is not None:
        try:
            return save(out)
        except WeightscapeError as err:  # an export of another point there: name the flag
            if str(err).startswith(f"'{out}' already exists"):
                raise WeightscapeError(f"--out: {err}") from None
            raise
    staged = out.with_name(f".{out.name}.staged")
    shutil.rmtree(staged, ignore_errors=True)  # left by a process killed mid-export
    save(staged)
    for item in staged.iterdir():
        item.replace(out / item.name)
    staged.rmdir()
    return _exported_checkpoint(out, anchors[config.reference], config.format)


def _exported_checkpoint(out: Path, reference, format: str):
    from weightscape.models.checkpoint import Checkpoint

    base = reference.adapter_base if format == "peft" else None
    return Checkpoint.from_path(out, name=out.name, adapter_base=base)
