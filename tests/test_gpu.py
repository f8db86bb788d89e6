"""Checks that need a CUDA device (run with ``-m gpu`` on a machine that has one).

The engine's results must not depend on where the working model lives beyond float rounding:
the own-head loss and the generalised loss (features leave the GPU before the probe is fitted).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import generated_texts
from weightscape.data import make_task, split
from weightscape.evaluation.engine import Engine
from weightscape.evaluation.probe import Probe
from weightscape.models.checkpoint import Checkpoint

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module", autouse=True)
def _needs_cuda():
    if not torch.cuda.is_available():
        pytest.fail("these tests need a CUDA device; run them with -m gpu on a GPU machine")


@pytest.fixture(scope="module")
def parts():
    texts, labels = generated_texts(160, seed=9)
    return split(make_task("gpu", texts, labels, ("negative", "positive")))


@pytest.mark.parametrize("probed", [False, True])
def test_cuda_and_cpu_engines_agree(tiny_models, parts, probed):
    anchors = [Checkpoint.from_path(p) for p in tiny_models[:2]]
    probe = Probe(parts["train"]) if probed else None
    results = {}
    for device in ("cpu", "cuda"):
        engine = Engine(anchors, parts["test"], device=device, probe=probe)
        results[device] = [engine.evaluate(row) for row in ([1, 0], [0.5, 0.5], [-0.5, 1.5])]
    for cpu, gpu in zip(results["cpu"], results["cuda"], strict=True):
        assert np.allclose(cpu.losses, gpu.losses, rtol=1e-3, atol=1e-4)
        assert cpu.metrics["accuracy"] == pytest.approx(gpu.metrics["accuracy"], abs=0.02)


def test_finetune_on_cuda_saves_a_model_that_evaluates_on_cpu(tiny_models, tiny_task, tmp_path):
    from weightscape.training.finetune import FinetuneConfig, finetune

    # The settings of conftest's trained_tiny, which solve the generated task on CPU.
    config = FinetuneConfig(name="g", base=str(tiny_models[0]), steps=120, batch_size=16, lr=1e-3)
    saved = finetune(config, tiny_task, tmp_path, device="cuda")[-1]
    metrics = Engine([saved], tiny_task, device="cpu").evaluate([1.0]).metrics
    assert metrics["accuracy"] > 0.9 and metrics["loss"] < 0.6  # chance: ln 2 = 0.69
