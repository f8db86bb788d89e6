"""Tests for the generated NLI data (weightscape.data.nli) and label maps (evaluation.label_maps).

The numbers asserted here (overlap table, heuristic accuracy, learnability) are measured on the
generated sets and documented in docs/nli.md; the bounds leave a margin below the measurement.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from weightscape.data import nli
from weightscape.data.nli_templates import constituents, lexicon_words, words
from weightscape.data.task import make_task
from weightscape.errors import WeightscapeError
from weightscape.evaluation.label_maps import (
    LABEL_MAPS,
    MNLI_TO_HANS,
    LabelMap,
    get_label_map,
)

N_TRAIN = 6000
N_PER_LABEL = 300


@pytest.fixture(scope="module")
def mnli():
    return nli.generate_mnli_like(N_TRAIN, seed=0)


@pytest.fixture(scope="module")
def suite():
    return nli.hans_like_suite(N_PER_LABEL, seed=0)


def pair_set(task) -> set[tuple[str, str]]:
    return set(zip(task.text_a, task.text_b, strict=True))


def overlap_heuristic(task) -> np.ndarray:
    """McCoy et al.'s lexical overlap heuristic: entailment (0) iff every hypothesis word is in
    the premise, else non-entailment (1)."""
    full = [nli.lexical_overlap(p, h) == 1.0 for p, h in zip(task.text_a, task.text_b, strict=True)]
    return np.where(full, 0, 1)


# --- the MNLI-like training set -------------------------------------------------------------


def test_mnli_like_shape_and_labels(mnli):
    assert len(mnli) == N_TRAIN and mnli.is_pair
    assert mnli.label_names == ("entailment", "neutral", "contradiction")
    assert mnli.ids.tolist() == list(range(N_TRAIN))
    counts = np.bincount(mnli.labels, minlength=3)
    assert counts.max() - counts.min() <= 1, counts  # 2000 each


def test_mnli_like_is_deterministic_and_seeded():
    first, again = nli.generate_mnli_like(600, seed=3), nli.generate_mnli_like(600, seed=3)
    other = nli.generate_mnli_like(600, seed=4)
    assert first == again and first.text_b == again.text_b
    assert first != other
    shared = pair_set(first) & pair_set(other)
    assert len(shared) < 0.5 * len(first)


def test_mnli_like_has_no_duplicate_pairs(mnli):
    assert len(pair_set(mnli)) == len(mnli)


def test_every_family_appears_with_its_label_and_overlap():
    pairs = nli.mnli_like_pairs(3000, seed=1)
    seen = {pair.template for pair in pairs}
    assert seen == {family.name for family in nli.MNLI_TEMPLATES}
    labels = {family.name: family.label for family in nli.MNLI_TEMPLATES}
    groups = {family.name: family.group for family in nli.MNLI_TEMPLATES}
    for pair in pairs:
        assert pair.label == labels[pair.template]
        overlap = nli.lexical_overlap(pair.premise, pair.hypothesis)
        if groups[pair.template] in ("full", "hard"):
            assert overlap == 1.0, (pair.template, pair.premise, pair.hypothesis)
        else:
            assert overlap < 1.0, (pair.template, pair.premise, pair.hypothesis)
        assert set(words(pair.premise + " " + pair.hypothesis)) <= lexicon_words()


def test_overlap_correlates_with_entailment(mnli):
    table = nli.overlap_table(mnli)  # measured at 20k: P(ent | full, partial, low) = .90, .13, .07
    share = {name: counts[0] / counts.sum() for name, counts in table.items()}
    assert 0.85 < share["full"] < 0.95  # 1 - hard_fraction by construction
    assert share["low"] < 0.15
    assert share["partial"] < 0.25
    assert sum(counts.sum() for counts in table.values()) == len(mnli)


@pytest.mark.parametrize("hard_fraction", [0.0, 0.3])
def test_hard_fraction_sets_the_non_entailed_share_of_full_overlap(hard_fraction):
    task = nli.generate_mnli_like(3000, seed=2, hard_fraction=hard_fraction)
    full = nli.overlap_table(task)["full"]
    assert abs(1 - full[0] / full.sum() - hard_fraction) < 0.01


def test_heuristic_classifier_scores_high_on_training_data(mnli):
    collapsed = MNLI_TO_HANS.map_labels(mnli.labels)
    accuracy = np.mean(overlap_heuristic(mnli) == collapsed)
    assert accuracy > 0.85  # measured 0.89


def test_a_bag_of_words_learner_fits_the_training_set(mnli):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    features = CountVectorizer(token_pattern=r"\S+", binary=True)
    x = features.fit_transform(
        [pair_features(p, h) for p, h in zip(mnli.text_a, mnli.text_b, strict=True)]
    )
    train, held_out = slice(0, 4800), slice(4800, None)
    model = LogisticRegression(max_iter=2000).fit(x[train], mnli.labels[train])
    assert model.score(x[train], mnli.labels[train]) > 0.9  # measured 0.996 (chance: 0.33)
    assert model.score(x[held_out], mnli.labels[held_out]) > 0.9  # measured 0.98


def pair_features(premise: str, hypothesis: str) -> str:
    """Premise and hypothesis words and bigrams, hypothesis words absent from the premise."""
    pw, hw = words(premise), words(hypothesis)
    new = [f"new_{w}" for w in hw if w not in set(pw)]
    bigrams = [
        f"{side}_{a}_{b}"
        for side, ws in (("pb", pw), ("hb", hw))
        for a, b in itertools.pairwise(ws)
    ]
    return " ".join([*(f"p_{w}" for w in pw), *(f"h_{w}" for w in hw), *new, *bigrams])


@pytest.mark.parametrize(
    "kwargs",
    [{"n": 0}, {"n": 2.5}, {"n": True}, {"n": 10, "seed": -1}, {"n": 10, "hard_fraction": 0.7}],
)
def test_mnli_like_rejects_bad_arguments(kwargs):
    with pytest.raises(WeightscapeError, match="parameter of generate_mnli_like"):
        nli.generate_mnli_like(**kwargs)


# --- the HANS-like diagnostic sets ------------------------------------------------------------


def test_suite_keys_sizes_and_labels(suite):
    expected = {
        f"hans_like_{h}{s}" for h in nli.HEURISTICS for s in ("", "_entailing", "_non_entailing")
    }
    assert set(suite) == expected
    for key, task in suite.items():
        assert task.name == key and task.label_names == ("entailment", "non-entailment")
        if key.endswith("_non_entailing"):
            assert len(task) == N_PER_LABEL and set(task.labels.tolist()) == {1}
        elif key.endswith("_entailing"):
            assert len(task) == N_PER_LABEL and set(task.labels.tolist()) == {0}
        else:
            assert np.bincount(task.labels).tolist() == [N_PER_LABEL, N_PER_LABEL]
            assert len(pair_set(task)) == len(task)


@pytest.mark.parametrize("heuristic", nli.HEURISTICS)
def test_every_hypothesis_satisfies_its_heuristic(heuristic):
    pairs = nli.hans_like_pairs(heuristic, 200, seed=5)
    for pair in pairs:
        hypothesis = words(pair.hypothesis)
        contiguous = nli.is_contiguous_subsequence(pair.premise, pair.hypothesis)
        constituent = hypothesis in constituents(pair.premise_tree)
        assert set(hypothesis) <= set(words(pair.premise)), pair  # lexical overlap, always
        if heuristic == "lexical_overlap":  # ... and only that, as in HANS
            assert not contiguous, pair
        elif heuristic == "subsequence":
            assert contiguous and not constituent, pair
        else:
            assert constituent, pair
    subcases = {s.name: s.label for s in nli.HANS_TEMPLATES if s.group == heuristic}
    assert {pair.template for pair in pairs} == set(subcases)
    assert all(pair.label == subcases[pair.template] for pair in pairs)


def test_hans_like_is_deterministic_and_seeded():
    first = nli.generate_hans_like("subsequence", 50, seed=1)
    assert first == nli.generate_hans_like("subsequence", 50, seed=1)
    assert first != nli.generate_hans_like("subsequence", 50, seed=2)


def test_exclude_keeps_training_pairs_out():
    first = nli.generate_hans_like("lexical_overlap", 100, seed=0)
    second = nli.generate_hans_like("lexical_overlap", 100, seed=0, exclude=first)
    assert len(second) == 200 and not pair_set(first) & pair_set(second)
    single = make_task("single", ["The doctor slept."], [0], nli.HANS_LABELS)
    with pytest.raises(WeightscapeError, match="'exclude' task must hold sentence pairs"):
        nli.generate_hans_like("constituent", 5, exclude=single)


def test_the_overlap_heuristic_fails_exactly_the_non_entailing_sets(suite):
    for key, task in suite.items():
        accuracy = np.mean(overlap_heuristic(task) == task.labels)
        if key.endswith("_non_entailing"):
            assert accuracy == 0.0, key
        elif key.endswith("_entailing"):
            assert accuracy == 1.0, key
        else:
            assert accuracy == 0.5, key


def test_unknown_heuristic_names_the_valid_ones():
    with pytest.raises(WeightscapeError, match=r"Did you mean 'lexical_overlap'.*constituent"):
        nli.generate_hans_like("lexical_overlab", 10)
    with pytest.raises(WeightscapeError, match="n_per_label"):
        nli.generate_hans_like("constituent", 0)


# --- label maps -----------------------------------------------------------------------------


def test_max_map_takes_the_largest_logit_of_each_group():
    logits = torch.tensor([[2.0, 1.0, 3.0], [0.5, -1.0, -2.0]])
    assert MNLI_TO_HANS.apply(logits).tolist() == [[2.0, 3.0], [0.5, -1.0]]


def test_logsumexp_map_so_probabilities_add():
    sum_map = get_label_map("mnli_to_hans_logsumexp")
    logits = torch.tensor([[2.0, 1.0, 3.0]], dtype=torch.float64)
    mapped = sum_map.apply(logits)
    assert mapped[0, 0].item() == 2.0
    assert math.isclose(mapped[0, 1].item(), math.log(math.e**1 + math.e**3), rel_tol=1e-12)
    probabilities = torch.softmax(logits, dim=1)[0]
    grouped = torch.softmax(mapped, dim=1)[0]
    assert torch.allclose(grouped, torch.stack([probabilities[0], probabilities[1:].sum()]))


def test_logit_sum_map_adds_the_logits_as_junejas_pool_sum():
    # Juneja et al.'s get_logits_converter(pool="sum"): non-entailment = neutral + contradiction
    # logits, entailment kept. Logits (entailment, neutral, contradiction) = (2, 1, 3) -> (2, 4);
    # the HANS loss of a non-entailing example is then -log(e^4 / (e^2 + e^4)) = log(1 + e^-2).
    logit_sum = get_label_map("mnli_to_hans_logit_sum")
    logits = torch.tensor([[2.0, 1.0, 3.0], [-0.5, 0.25, -2.0]], dtype=torch.float64)
    assert logit_sum.apply(logits).tolist() == [[2.0, 4.0], [-0.5, -1.75]]
    loss = -torch.log_softmax(logit_sum.apply(logits[:1]), dim=1)[0, 1].item()
    assert math.isclose(loss, math.log(1 + math.exp(-2.0)), rel_tol=1e-12)


def test_the_three_reductions_differ_where_hand_worked():
    # (entailment, neutral, contradiction) = (1, 0.6, 0.6): max 0.6 < 1 -> entailment;
    # logit_sum 1.2 > 1 -> non-entailment; logsumexp 0.6 + ln 2 = 1.293 > 1 -> non-entailment.
    # Shift every logit by -2 (the model's probabilities do not change): (-1, -1.4, -1.4):
    # max -1.4 < -1 -> entailment; logsumexp -1.4 + ln 2 = -0.707 > -1 -> non-entailment; but
    # logit_sum -2.8 < -1 -> entailment: only the sum of logits depends on the offset.
    logits = torch.tensor([[1.0, 0.6, 0.6], [-1.0, -1.4, -1.4]], dtype=torch.float64)
    predicted = {
        name: get_label_map(name).apply(logits).argmax(1).tolist()
        for name in ("mnli_to_hans", "mnli_to_hans_logit_sum", "mnli_to_hans_logsumexp")
    }
    assert predicted == {
        "mnli_to_hans": [0, 0],
        "mnli_to_hans_logit_sum": [1, 0],
        "mnli_to_hans_logsumexp": [1, 1],
    }


def test_the_retired_sum_names_fail_naming_their_replacements():
    # 'mnli_to_hans_sum' computed logsumexp under a name that says "sum": never answer it with
    # a different number; fail, naming both successors.
    for call in (
        lambda: get_label_map("mnli_to_hans_sum"),
        lambda: LabelMap(groups=((0,), (1, 2)), names=("a", "b"), reduce="sum"),
    ):
        with pytest.raises(WeightscapeError, match="retired") as raised:
            call()
        assert "logsumexp" in str(raised.value) and "logit_sum" in str(raised.value)
    assert "mnli_to_hans_sum" not in LABEL_MAPS


def test_map_labels_collapses_gold_labels():
    assert MNLI_TO_HANS.map_labels(np.array([0, 1, 2, 0])).tolist() == [0, 1, 1, 0]
    partial = LabelMap(groups=((0,), (2,)), names=("a", "b"))
    with pytest.raises(WeightscapeError, match=r"Labels \[1\] belong to no group"):
        partial.map_labels([0, 1])


@pytest.mark.parametrize(
    ("groups", "names", "reduce", "message"),
    [
        (((0,), (0, 1)), ("a", "b"), "max", "more than one group"),
        (((0,), (-1,)), ("a", "b"), "max", "class indices >= 0"),
        (((0,), ()), ("a", "b"), "max", "non-empty"),
        ((), (), "max", "non-empty"),
        (((0,), (1,)), ("a",), "max", "one distinct name per group"),
        (((0,), (1,)), ("a", "a"), "max", "one distinct name per group"),
        (((0,), (1,)), ("a", "b"), "mean", "Unknown label-map reduction 'mean'"),
    ],
)
def test_label_map_validation(groups, names, reduce, message):
    with pytest.raises(WeightscapeError, match=message):
        LabelMap(groups=groups, names=names, reduce=reduce)


def test_apply_checks_the_logits_shape():
    with pytest.raises(WeightscapeError, match=r"k >= 3. Got shape \(1, 2\)"):
        MNLI_TO_HANS.apply(torch.zeros(1, 2))
    with pytest.raises(WeightscapeError, match="shape"):
        MNLI_TO_HANS.apply(torch.zeros(3))


def test_label_map_registry():
    assert get_label_map("mnli_to_hans") is MNLI_TO_HANS
    assert set(LABEL_MAPS) == {
        "mnli_to_hans",
        "mnli_to_hans_logit_sum",
        "mnli_to_hans_logsumexp",
    }
    with pytest.raises(WeightscapeError, match="Did you mean 'mnli_to_hans'"):
        get_label_map("mnli_to_han")


def test_the_retired_map_is_refused_by_settings_and_study_flags():
    from pydantic import ValidationError

    from weightscape.evaluation.evaluator import EvalSettings
    from weightscape.studies.grid import Config

    with pytest.raises(WeightscapeError, match="mnli_to_hans_logit_sum"):
        EvalSettings(label_map="mnli_to_hans_sum")
    with pytest.raises(ValidationError, match="mnli_to_hans_logsumexp"):
        Config(models="runs/*", label_map="mnli_to_hans_sum")
    assert Config(models="runs/*", label_map="mnli_to_hans_logit_sum").eval_settings().label_map


def test_logit_sum_map_through_the_engine_matches_the_sum_by_hand(tokenizer_dir, tmp_path):
    # A 3-class tiny NLI classifier on 2-class HANS-like pairs with --label-map
    # mnli_to_hans_logit_sum: each loss is the cross-entropy of (entailment, neutral +
    # contradiction), computed here from the model's own logits with transformers.
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from conftest import save_tiny_model
    from weightscape.data import subset
    from weightscape.evaluation.engine import Engine
    from weightscape.evaluation.evaluator import EvalSettings
    from weightscape.models.checkpoint import Checkpoint

    folder = save_tiny_model(tmp_path / "mnli", 7, tokenizer_dir, num_labels=3)
    hans = subset(nli.generate_hans_like("lexical_overlap", 20, seed=1), 24, seed=0)
    settings = EvalSettings(label_map="mnli_to_hans_logit_sum", batch_size=8)
    engine = Engine([Checkpoint.from_path(folder)], hans, settings=settings, device="cpu")
    result = engine.evaluate([1.0])
    model = AutoModelForSequenceClassification.from_pretrained(
        str(folder), trust_remote_code=False
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), trust_remote_code=False)
    inputs = tokenizer(list(hans.text_a), list(hans.text_b), padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits  # columns: entailment, neutral, contradiction
    mapped = torch.stack([logits[:, 0], logits[:, 1] + logits[:, 2]], dim=1)
    by_hand = torch.nn.functional.cross_entropy(
        mapped, torch.as_tensor(np.array(hans.labels)), reduction="none"
    )
    np.testing.assert_allclose(result.losses, by_hand.numpy(), atol=1e-5)
    np.testing.assert_array_equal(result.predictions, mapped.argmax(1).numpy())
    assert "binary_f1" in result.metrics  # HANS has 2 classes; positive = non-entailment
