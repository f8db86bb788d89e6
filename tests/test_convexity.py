"""Juneja et al.'s epsilon-convexity check on tiny BERTs, against plain transformers.

For one Dirichlet combination of three models the expected Jensen gap is computed without
weightscape's engine: the three state dicts are mixed by hand, loaded into a fresh
BertForSequenceClassification, and the mean cross-entropy of the mix and of each model on the
task is computed with the tokenizer and torch directly (eq. 2 of the paper:
L(sum a_k w_k) - sum a_k L(w_k)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from weightscape.analyses.convexity import epsilon_convexity
from weightscape.evaluation.engine import EngineSpec
from weightscape.models.checkpoint import Checkpoint

GAPS = np.array([[0.0, 0.1, 0.3, 9.0], [0.1, 0.0, 0.2, 9.0], [0.3, 0.2, 0.0, 9.0], [9, 9, 9, 0]])


def plain_loss(state: dict, folder, tokenizer_dir, task) -> float:
    """Mean cross-entropy of a state dict on the task, with transformers and torch only."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    model = BertForSequenceClassification(BertConfig.from_pretrained(str(folder))).eval()
    model.load_state_dict(state, strict=False)
    tokenizer = BertTokenizerFast.from_pretrained(str(tokenizer_dir))
    encoded = tokenizer(list(task.text_a), padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**encoded).logits
    return float(torch.nn.functional.cross_entropy(logits, torch.tensor(task.labels)))


@pytest.fixture(scope="module")
def checkpoints(tiny_models):
    # three random tiny BERTs (one cluster) and a fourth model alone in its cluster
    return [Checkpoint.from_path(p) for p in [*tiny_models, tiny_models[0]]]


def test_jensen_gap_of_a_combination_matches_plain_transformers(
    checkpoints, tiny_models, tokenizer_dir, tiny_task
):
    spec = EngineSpec(tuple(checkpoints), tiny_task, device="cpu")
    rows = epsilon_convexity(spec, [0, 0, 0, 1], GAPS, samples=2, seed=3)
    first, alone = rows
    assert (first["size"], first["samples"], alone["size"], alone["samples"]) == (3, 2, 1, 0)
    assert first["max_convexity_gap"] == 0.3 and first["max_gap_pair"] == ["m0", "m2"]
    assert math.isnan(alone["max_convexity_gap"]) and math.isnan(alone["epsilon"])

    weights = np.array(first["weights"][1])
    assert weights.min() >= 0 and weights.sum() == pytest.approx(1.0)
    states = [load_file(p / "model.safetensors") for p in tiny_models]
    mixed = {
        name: sum(float(a) * s[name].double() for a, s in zip(weights, states, strict=True)).float()
        if states[0][name].is_floating_point()
        else states[0][name]
        for name in states[0]
    }
    mix_loss = plain_loss(mixed, tiny_models[0], tokenizer_dir, tiny_task)
    member_losses = [plain_loss(s, tiny_models[0], tokenizer_dir, tiny_task) for s in states]
    mean_loss = float(weights @ np.array(member_losses))

    np.testing.assert_allclose(first["member_losses"], member_losses, rtol=1e-5)
    assert first["losses"][1] == pytest.approx(mix_loss, rel=1e-5)
    assert first["mean_losses"][1] == pytest.approx(mean_loss, rel=1e-5)
    gaps = np.array(first["losses"]) - np.array(first["mean_losses"])
    assert first["jensen_gap_max"] == pytest.approx(gaps.max(), abs=1e-12)
    assert gaps[1] == pytest.approx(mix_loss - mean_loss, abs=1e-5)
    assert first["epsilon"] == pytest.approx(max(0.3, gaps.max()))


def test_no_samples_only_reads_the_grid(checkpoints, tiny_task):
    spec = EngineSpec(tuple(checkpoints), tiny_task, device="cpu")
    rows = epsilon_convexity(spec, [0, 0, 1, 1], GAPS, samples=0)
    assert [(r["max_convexity_gap"], r["samples"], r["epsilon"]) for r in rows] == [
        (0.1, 0, 0.1),
        (9.0, 0, 9.0),
    ]
