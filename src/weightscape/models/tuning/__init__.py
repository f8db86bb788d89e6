"""Tuning methods as plug-ins: one module each, registered by one line in :data:`_MODULES`.

A method module defines a :class:`~weightscape.models.tuning.base.TuningSpec` subclass (its
options, which parameters train, which modules it adds and how they start) and names it
``SPEC``. Registering it here makes it a choice of ``FinetuneConfig.tuning`` (a pydantic union
discriminated by ``method``), of ``weightscape finetune --method`` (its options become
``--<method>-<option>`` flags and flat zoo-file keys), of the checkpoint sidecars the engine
rebuilds models from, and a row of the conformance suite (``tests/test_tuning_methods.py``).

Lives in ``models/`` (not ``training/``) because the engine rebuilds tuned models from their
sidecars and ``models/`` may not import ``training/``; what trains is a rule on tensor names.
"""

from __future__ import annotations

import functools
import importlib
import operator
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from weightscape.models.tuning.base import TuningSpec
from weightscape.settings import problem_lines

# The registry: one line per method, the name of its module in this package (in the order the
# methods are listed to users).
_MODULES = (
    "full",
    "bitfit",
    "lora",
    "adapter",
)

SPECS: dict[str, type[TuningSpec]] = {}
for _module in _MODULES:
    _spec = importlib.import_module(f"{__name__}.{_module}").SPEC
    _name = _spec.model_fields["method"].default
    if _name in SPECS:  # a copied module that kept its model's method name
        raise ImportError(
            f"tuning methods '{_module}' and '{SPECS[_name].__module__}' share the name '{_name}'"
        )
    SPECS[_name] = _spec

METHODS: tuple[str, ...] = tuple(SPECS)
MethodName = Literal[METHODS]  # type: ignore[valid-type]
# A spec of any registered method, told apart by its ``method`` key.
AnySpec = Annotated[functools.reduce(operator.or_, SPECS.values()), Field(discriminator="method")]

__all__ = ["METHODS", "SPECS", "AnySpec", "MethodName", "TuningSpec", "flat_options", "fold"]


def flat_options() -> dict[str, tuple[str, str]]:
    """Every method's options as flat keys: ``lora_r`` -> ``("lora", "r")``, in registry order.

    The flat keys are the ``--lora-r`` flags and the ``lora_r:`` zoo-file keys.
    """
    return {
        f"{method}_{option}": (method, option)
        for method, spec in SPECS.items()
        for option in spec.model_fields
        if option != "method"
    }


def fold(method: Any, values: dict[str, Any]) -> TuningSpec | dict[str, Any]:
    """The spec named by ``method`` from flat keys (``lora_r``...); the other methods' keys are
    checked and then ignored, so one sweep can vary the method over shared settings.

    Returns:
        The spec; for an unknown method, ``{"method": method}`` for pydantic to report.

    Raises:
        ValueError: Naming every bad flat key, e.g. ``lora_r: Input should be greater than or
            equal to 1 (got 0)``.
    """
    flat = flat_options()
    unknown = sorted(set(values) - set(flat))
    if unknown:
        raise ValueError(f"unknown tuning option(s) {', '.join(unknown)}")
    groups: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        owner, option = flat[key]
        groups.setdefault(owner, {})[option] = value
    problems, specs = [], {}
    for owner, options in groups.items():
        try:
            specs[owner] = SPECS[owner](**options)
        except ValidationError as err:
            problems += problem_lines(err, prefix=f"{owner}_")
    if problems:
        raise ValueError("; ".join(problems))
    if method not in SPECS:
        return {"method": method}
    return specs.get(method) or SPECS[method]()
