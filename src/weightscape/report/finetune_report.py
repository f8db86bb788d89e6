"""What ``weightscape finetune`` prints: the checkpoints saved (or runs trained) and the zoo."""

from __future__ import annotations


def render_finetune(result, config) -> list[str]:
    """The terminal lines; the checkpoints and ``zoo.yaml`` were written by the run itself."""
    if config.zoo_file is not None:
        lines = [f"skipped {name}: already trained" for name in result.skipped]
        lines += [f"trained {name}" for name in result.trained]
    else:
        lines = [f"saved {checkpoint.name}: {checkpoint.path}" for checkpoint in result.saved]
    return [*lines, f"zoo manifest: {result.manifest}"]
