"""The settings of one finetuning run: :class:`FinetuneConfig`, light to import (pydantic only).

The tuning method is a discriminated ``tuning`` field over the registered methods
(:mod:`weightscape.models.tuning`), e.g. ``{"method": "lora", "r": 4}``. The flat spelling of
earlier versions still works everywhere a config is read (Python, zoo files, flags, training
logs): ``method: lora`` with ``lora_r: 4`` (each method's options as ``<method>_<option>``) is
folded into ``tuning``; the other methods' flat options are checked and ignored, so one sweep can
vary the method over shared settings.
"""

from __future__ import annotations

from copy import copy
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from weightscape.models.tuning import (
    METHODS,
    SPECS,
    AnySpec,
    MethodName,
    flat_options,
    fold,
)
from weightscape.models.tuning.full import FullSpec

__all__ = ["RESERVED_TAGS", "FinetuneConfig", "RunName", "flat_fields", "flat_options"]


def _one_folder(name: str) -> str:
    # Every route (CLI flag, zoo file, Python) builds this config, so this check covers all.
    from weightscape.validation import check_folder_name

    return check_folder_name(name)


def _own_names(tags: dict[str, str | int | float]) -> dict[str, str | int | float]:
    clashes = sorted(set(tags) & RESERVED_TAGS)
    if clashes:
        raise ValueError(
            f"{clashes} are tags weightscape sets itself; give your own tags other names"
        )
    return tags


def _positive(steps: tuple[int, ...]) -> tuple[int, ...]:
    if any(s < 1 for s in steps):
        raise ValueError("save steps must be >= 1")
    return tuple(sorted(set(steps)))


# Validators travel with the types, so configs derived from these fields (the finetune study's
# flags, zoo-file overrides) check the same rules.
RunName = Annotated[str, AfterValidator(_one_folder)]
Tags = Annotated[dict[str, str | int | float], AfterValidator(_own_names)]
SaveSteps = Annotated[tuple[int, ...], AfterValidator(_positive)]

# Tags every run's zoo entry gets from its config; free ``tags`` may not reuse these names.
RESERVED_TAGS = frozenset(
    (
        "dataset",
        "method",
        "head_seed",
        "data_seed",
        "lr",
        "batch_size",
        "steps",
        "base",
        "run",
        "step",
        "module_seed",
        "init_noise_std",
        "init_noise_seed",
        "data_half",
        "data_half_seed",
        "train_size",
        "train_size_seed",
        *flat_options(),  # lora_r, adapter_bottleneck, ...
    )
)


class FinetuneConfig(BaseModel):
    """Hyperparameters of one finetuning run."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: RunName = Field(description="name of the run (its folder and zoo entry)")
    base: str = Field("minilm", description="pretrained model folder or 'minilm'")
    tuning: AnySpec = Field(
        default_factory=FullSpec,
        description="the tuning method and its options, e.g. {method: lora, r: 4}",
    )
    steps: int = Field(100, ge=1, description="training steps")
    batch_size: int = Field(32, ge=1, description="training batch size")
    lr: float = Field(5e-5, gt=0, description="peak learning rate (AdamW, linear warmup/decay)")
    warmup_ratio: float = Field(
        0.1, ge=0, lt=1, description="fraction of the steps the learning rate warms up over"
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    max_length: int = Field(64, ge=8, description="truncate training inputs to N tokens")
    head_seed: int = Field(0, description="seed of the new head's init")
    data_seed: int = Field(0, description="seed of data order and dropout")
    module_seed: int | None = Field(
        None, description="seed of the added modules' init (LoRA, adapters); none: the head seed"
    )
    init_noise_std: float = Field(
        0.0,
        ge=0,
        description="std of Gaussian noise added to the pretrained weights before training "
        "(0: none; Qin et al. 2022, App. C.1, vary the initialisation of finetuning with std 2e-4)",
    )
    init_noise_seed: int = Field(0, description="seed of that noise")
    data_half: int | None = Field(
        None, ge=0, le=1, description="train on half 0 or 1 of the data (disjoint, seeded)"
    )
    data_half_seed: int = Field(0, description="seed of the halves")
    train_size: int | None = Field(
        None, ge=1, description="train on a seeded subsample of N examples"
    )
    train_size_seed: int = Field(0, description="seed of the subsample")
    tags: Tags = Field(
        default_factory=dict, description="free zoo tags, e.g. family=sentiment,size=small"
    )
    save_steps: SaveSteps = Field((), description="also save checkpoints at these steps")
    dynamics_examples: int | None = Field(
        None,
        ge=1,
        description="record p(true label) of N seeded training examples into "
        "OUT/NAME/dynamics.npz (dataset cartography, for `weightscape knowledge`); off by default",
    )
    dynamics_every: int | None = Field(
        None,
        ge=1,
        description="record every K steps and at the last (default: steps // 10); short runs "
        "see less than an epoch, so records are per K steps, not per epoch",
    )

    @field_validator("save_steps")
    @classmethod
    def _within_the_run(cls, steps: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        total = info.data.get("steps")
        beyond = [s for s in steps if total is not None and s > total]
        if beyond:
            raise ValueError(
                f"steps {', '.join(map(str, beyond))} lie beyond the run's {total} steps, so no "
                "checkpoint would be saved there; give save steps up to the steps"
            )
        return steps

    @model_validator(mode="before")
    @classmethod
    def _flat_tuning(cls, data: Any) -> Any:
        """Fold the flat spelling (``method``, ``lora_r``...) into ``tuning``."""
        if not isinstance(data, dict):
            return data
        options = flat_options()
        flat = [key for key in data if key == "method" or key in options]
        if not flat:
            return data
        if "tuning" in data:
            raise ValueError(
                f"give the tuning method either as 'tuning' or as flat keys ({', '.join(flat)}), "
                "not both"
            )
        rest = {key: value for key, value in data.items() if key not in flat}
        values = {key: data[key] for key in flat if key != "method"}
        return {**rest, "tuning": fold(data.get("method", "full"), values)}

    @property
    def method(self) -> str:
        """The tuning method's name."""
        return self.tuning.method

    def effective_module_seed(self) -> int:
        """The seed of the added modules: ``module_seed``, else ``head_seed``."""
        return self.head_seed if self.module_seed is None else self.module_seed

    def flat(self) -> dict[str, Any]:
        """The settings with the tuning spec spelled flat (``method``, ``lora_r``...), JSON
        types: what zoo files and flags name, and how differing settings are reported."""
        settings = self.model_dump(mode="json", exclude={"tuning"})
        tuning = {f"{self.method}_{k}": v for k, v in self.tuning.options().items()}
        return {**settings, "method": self.method, **tuning}


def flat_fields() -> dict[str, tuple[Any, FieldInfo]]:
    """FinetuneConfig's fields with ``tuning`` spelled flat, for ``create_model``.

    ``method`` stands where ``tuning`` is, and every registered method's options (``lora_r``...)
    just before ``save_steps``: the field order of the flat config, from which zoo files' run
    names take their order (a resumed sweep finds its finished runs by name).
    """
    fields: dict[str, tuple[Any, FieldInfo]] = {}
    for option, info in FinetuneConfig.model_fields.items():
        if option == "save_steps":
            for key, (method, name) in flat_options().items():
                spec_field = SPECS[method].model_fields[name]
                fields[key] = (spec_field.annotation, copy(spec_field))
        if option == "tuning":
            description = f"tuning method: {', '.join(METHODS)}"
            fields["method"] = (MethodName, Field("full", description=description))
        else:
            fields[option] = (info.annotation, copy(info))
    return fields
