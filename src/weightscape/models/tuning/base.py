"""What a tuning method is: a frozen spec holding its options and saying what it trains and adds.

A method module defines one subclass of :class:`TuningSpec` and names it ``SPEC``:

- ``method: Literal["name"] = "name"``, the discriminator: the method's name in configs, flags,
  zoo tags and sidecars;
- its options as fields, each with a description and its constraints (they become the flat
  ``--name-option`` flags and zoo-file keys, e.g. LoRA's ``r`` is ``--lora-r``);
- :meth:`~TuningSpec.trains`: whether a parameter of the (tuned) model trains, by name;
- for a method that adds modules: :meth:`~TuningSpec.add_modules` and
  :meth:`~TuningSpec.init_modules`. Training and the engine both build the model through
  ``add_modules``, so a checkpoint's tensor names match the working model's by construction; a
  ``weightscape_tuning.json`` sidecar (:mod:`weightscape.models.tuning_spec`) records the spec.

Specs import no torch at module level: a config validates without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import torch


class TuningSpec(BaseModel):
    """A tuning method with its options.

    Attributes:
        method: The method's name (each subclass narrows it to one ``Literal``).
        tagged: Options written into every run's zoo tags as ``<method>_<option>``.
        start_options: Options that say only how the added modules start (an init scheme), not
            what the model is: a checkpoint's sidecar names them only when they differ from their
            default, so sidecars of models built the default way keep their bytes (and their
            fingerprints).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    method: str
    tagged: ClassVar[tuple[str, ...]] = ()
    start_options: ClassVar[tuple[str, ...]] = ()

    def trains(self, name: str) -> bool:
        """Whether the parameter called ``name`` (in the tuned model) trains."""
        raise NotImplementedError(f"{type(self).__name__} must say which parameters train")

    def add_modules(self, model: torch.nn.Module) -> torch.nn.Module:
        """Add the method's modules to ``model`` in place and return it (none by default)."""
        return model

    def init_modules(self, model: torch.nn.Module, generator: torch.Generator) -> int:
        """Redraw the added modules' random tensors from ``generator``; returns how many.

        Called under ``torch.no_grad()`` with a generator seeded by the run's ``module_seed``, so
        a run's start depends on that seed alone, not on torch's global generator.
        """
        return 0

    @classmethod
    def adds_modules(cls) -> bool:
        """Whether the method changes the architecture (then checkpoints carry a sidecar)."""
        return cls.add_modules is not TuningSpec.add_modules

    def options(self) -> dict[str, Any]:
        """The options, JSON types, without ``method``."""
        return self.model_dump(mode="json", exclude={"method"})

    def tags(self) -> dict[str, Any]:
        """Zoo tags of a run tuned with this spec, beyond ``method``."""
        return {f"{self.method}_{option}": getattr(self, option) for option in self.tagged}
