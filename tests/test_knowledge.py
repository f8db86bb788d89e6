"""Knowledge along a path: flip bookkeeping, recorded training dynamics, the analysis and CLI.

The end-to-end tests train two tiny models from one base: ``a`` on generated sentences, ``b`` on
the same sentences with every label flipped. Both track the same seeded examples, so along the
line from ``a`` to ``b`` each source example forgotten is a target example learned.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import generated_texts
from weightscape.analyses.knowledge import knowledge_along_path, resolve_head, tracked_task
from weightscape.cli.main import main
from weightscape.data import load_task, make_task, subset
from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import Engine
from weightscape.metrics.knowledge import flips, set_means
from weightscape.runtime.store import ResultStore
from weightscape.training.dynamics import DYNAMICS_SEED, load_dynamics
from weightscape.training.finetune import FinetuneConfig, finetune
from weightscape.training.sweeps import ZooFile, expand

STEPS, TRACKED, EVERY = 120, 32, 10

# 5 points (4 steps) x 4 examples, hand-worked below.
CORRECT = np.array(
    [
        # ex0 ex1 ex2 ex3
        [1, 1, 1, 0],
        [1, 0, 0, 0],
        [1, 0, 1, 1],
        [1, 0, 0, 1],
        [1, 0, 1, 0],
    ],
    dtype=bool,
)


def test_flip_bookkeeping_on_a_constructed_sequence():
    # ex0 never flips; ex1 is forgotten at step 1 for good; ex2 goes 1 0 1 0 1: forgotten at
    # 1, back at 2 (re-learned: right at point 0), forgotten again at 3 (re-forgotten: wrong at
    # point 1), back at 4 (re-learned); ex3 goes 0 0 1 1 0: learned at 2 (not re-learned: never
    # right before), forgotten at 4 (re-forgotten: wrong at points 0-1).
    f = flips(CORRECT)
    assert f.counts() == {
        "forgotten": [2, 0, 1, 1],
        "learned": [0, 2, 0, 1],
        "relearned": [0, 1, 0, 1],
        "reforgotten": [0, 0, 1, 1],
    }
    assert f.forgotten[:, 2].tolist() == [True, False, True, False]
    assert f.relearned[:, 3].tolist() == [False, False, False, False]
    assert f.reforgotten[:, 3].tolist() == [False, False, False, True]


def test_set_means_of_the_flipped_sets():
    conf = [0.9, 0.3, 0.5, 0.6]
    means = set_means(flips(CORRECT).forgotten, conf)
    assert means[[0, 2, 3]] == pytest.approx([0.4, 0.5, 0.6])  # (0.3 + 0.5) / 2, 0.5, 0.6
    assert np.isnan(means[1])  # nothing forgotten at step 2


def test_flips_need_two_points_of_booleans():
    with pytest.raises(WeightscapeError, match="at least 2 points"):
        flips([[1, 0, 1]])
    with pytest.raises(WeightscapeError, match="booleans"):
        flips([[1, 0], [2, 0]])


@pytest.fixture(scope="module")
def pair(tiny_models, tmp_path_factory):
    """Two tasks (labels flipped), one run on each with dynamics: (csvs, tasks, zoo folder)."""
    root = tmp_path_factory.mktemp("knowledge")
    texts, labels = generated_texts(64, seed=3)
    csvs = {"src": root / "src.csv", "tgt": root / "tgt.csv"}
    for name, labs in (("src", labels), ("tgt", [1 - y for y in labels])):
        with csvs[name].open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(zip(texts, labs, strict=True))
    tasks = {name: load_task(str(path)) for name, path in csvs.items()}
    zoo = root / "zoo"
    for run, task in (("a", tasks["src"]), ("b", tasks["tgt"])):
        config = FinetuneConfig(
            name=run,
            base=str(tiny_models[0]),
            steps=STEPS,
            batch_size=16,
            lr=1e-3,
            max_length=16,
            dynamics_examples=TRACKED,
            dynamics_every=EVERY,
        )
        finetune(config, task, zoo)
    return csvs, tasks, zoo


def _checkpoint(zoo, run):
    from weightscape.models.zoo import Zoo

    return Zoo.from_manifest(zoo / "zoo.yaml")[run]


def test_recorder_writes_dynamics_of_the_seeded_subset(pair):
    _, tasks, zoo = pair
    dynamics = load_dynamics(zoo / "a" / "dynamics.npz")
    expected = subset(tasks["src"], TRACKED, seed=DYNAMICS_SEED)
    assert dynamics.ids.tolist() == expected.ids.tolist()
    assert dynamics.labels.tolist() == expected.labels.tolist()
    assert dynamics.steps.tolist() == list(range(EVERY, STEPS + 1, EVERY))
    assert dynamics.p_true.shape == dynamics.predictions.shape == (STEPS // EVERY, TRACKED)
    assert np.all((dynamics.p_true >= 0) & (dynamics.p_true <= 1))
    assert dynamics.task == "src"
    stats = dynamics.cartography()
    assert stats.confidence[stats.correctness == 1].min() > 0.5  # always right: p_true > 1/2
    assert list(zoo.joinpath("a").glob(".*partial*")) == []  # the atomic write left nothing


def test_recording_does_not_change_training(tiny_models, tiny_task, tmp_path):
    settings = {"base": str(tiny_models[0]), "steps": 3, "batch_size": 8, "max_length": 16}
    plain = finetune(FinetuneConfig(name="plain", **settings), tiny_task, tmp_path)[-1]
    config = FinetuneConfig(name="rec", dynamics_examples=8, dynamics_every=1, **settings)
    recorded = finetune(config, tiny_task, tmp_path)[-1]
    a, b = (load_file(str(c.path / "model.safetensors")) for c in (plain, recorded))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_dynamics(tmp_path / "rec" / "dynamics.npz").steps.tolist() == [1, 2, 3]
    assert not (tmp_path / "plain" / "dynamics.npz").exists()


def test_knowledge_matches_direct_per_point_correctness(pair, tmp_path):
    _, tasks, zoo = pair
    a, b = _checkpoint(zoo, "a"), _checkpoint(zoo, "b")
    store = ResultStore(tmp_path / "results.sqlite")
    result = knowledge_along_path(
        a, b, tasks["src"], tasks["tgt"], steps=4, device="cpu", store=store
    )
    assert result.head == "own"  # one label set
    assert result.ts.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    for examples, task, run in (
        (result.source_examples, tasks["src"], "a"),
        (result.target_examples, tasks["tgt"], "b"),
    ):
        tracked = tracked_task(task, load_dynamics(zoo / run / "dynamics.npz"), run)
        engine = Engine([a, b], tracked, device="cpu")
        direct = np.stack([engine.evaluate([1 - t, t]).correct(tracked.labels) for t in result.ts])
        assert examples.correct.tolist() == direct.tolist()
        assert examples.flips.counts() == flips(direct).counts()
    src, tgt = result.source_examples, result.target_examples
    # The target labels flip the source ones on the same tracked examples.
    assert src.ids.tolist() == tgt.ids.tolist()
    assert tgt.correct.tolist() == (~src.correct).tolist()
    rows = result.steps()
    assert [r["forgotten"] for r in rows] == [r["learned"] for r in rows]
    assert [r["forgotten"] for r in rows] == src.flips.counts()["forgotten"]
    assert src.accuracy()[0] > 0.7 > src.accuracy()[-1]  # source knowledge is forgotten
    assert sum(r["forgotten"] for r in rows) >= 1
    again = knowledge_along_path(
        a, b, tasks["src"], tasks["tgt"], steps=4, device="cpu", store=store
    )
    assert again.computed == 0 and result.computed == 10


def test_probe_heads_classify_the_tracked_examples(pair):
    _, tasks, zoo = pair
    a, b = _checkpoint(zoo, "a"), _checkpoint(zoo, "b")
    result = knowledge_along_path(
        a, b, tasks["src"], tasks["tgt"], steps=2, head="probe", probe_train=32, device="cpu"
    )
    assert result.head == "probe"
    assert result.source_examples.correct.shape == (3, TRACKED)
    assert len(result.steps()) == 2


def test_head_choice():
    sentiment = make_task("s", ["a", "b"], [0, 1], ("neg", "pos"))
    topics = make_task("t", ["a", "b"], [0, 1], ("sport", "politics"))
    nli = make_task("n", ["a", "b", "c"], [0, 1, 2], ("e", "n", "c"))
    assert resolve_head("auto", sentiment, sentiment) == "own"
    assert resolve_head("auto", sentiment, topics) == "probe"
    assert resolve_head("own", sentiment, topics) == "own"  # the user's choice, counts agree
    with pytest.raises(WeightscapeError, match="--head probe"):
        resolve_head("own", sentiment, nli)
    with pytest.raises(WeightscapeError, match=r"Unknown head 'prob'\. Did you mean 'probe'"):
        resolve_head("prob", sentiment, nli)


def test_wrong_data_and_bad_steps_are_named(pair, tiny_task):
    _, tasks, zoo = pair
    a, b = _checkpoint(zoo, "a"), _checkpoint(zoo, "b")
    dynamics = load_dynamics(zoo / "a" / "dynamics.npz")
    with pytest.raises(WeightscapeError, match=r"labels .* otherwise"):
        tracked_task(tasks["tgt"], dynamics, "a")  # same ids, flipped labels
    with pytest.raises(WeightscapeError, match="lacks"):
        tracked_task(tasks["src"].select([0, 1]), dynamics, "a")
    with pytest.raises(WeightscapeError, match="The 'steps' parameter of knowledge"):
        knowledge_along_path(a, b, tasks["src"], tasks["tgt"], steps=0)


def test_knowledge_cli_writes_the_report(pair, tmp_path, capsys):
    csvs, _, zoo = pair
    args = ["knowledge", "a", "b", "--zoo", str(zoo / "zoo.yaml"), "--steps", "2"]
    args += ["--source-task", str(csvs["src"]), "--target-task", str(csvs["tgt"])]
    assert main([*args, "--out", str(tmp_path), "--device", "cpu", "--no-progress"]) == 0
    names = ("knowledge.json", "knowledge.md", "knowledge-steps.png", "cartography-source.png")
    for name in (*names, "cartography-target.png", "results.sqlite"):
        assert (tmp_path / name).is_file(), name
    summary = json.loads((tmp_path / "knowledge.json").read_text())
    assert summary["ts"] == [0.0, 0.5, 1.0] and len(summary["steps"]) == 2
    assert set(summary["ordering"]) == {
        "forgotten_confidence",
        "forgotten_variability",
        "learned_confidence",
        "learned_variability",
    }
    assert "| j | t | F_j |" in (tmp_path / "knowledge.md").read_text()
    assert "points: computed 6, reused " in capsys.readouterr().out


def test_knowledge_cli_needs_a_source_and_a_target(tmp_path, capsys):
    args = ["knowledge", "a", "b", "c", "--source-task", "x", "--target-task", "y"]
    assert main([*args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "ANCHORS: give exactly 2 checkpoints, the source and the target; got 3" in err
    assert not any(tmp_path.iterdir())  # nothing ran


def test_knowledge_cli_without_dynamics_says_how_to_record_them(
    tiny_models, tiny_csv, tmp_path, capsys
):
    args = ["knowledge", str(tiny_models[0]), str(tiny_models[1]), "--out", str(tmp_path)]
    args += ["--source-task", str(tiny_csv), "--target-task", str(tiny_csv), "--device", "cpu"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no training dynamics" in err and "--dynamics-examples N" in err


def test_finetune_cli_and_zoo_files_take_the_dynamics_options(tiny_models, tiny_csv, tmp_path):
    args = ["finetune", "--name", "d", "--base", str(tiny_models[0]), "--steps", "2"]
    args += ["--batch-size", "8", "--max-length", "16", "--task", str(tiny_csv), "--split", "all"]
    args += ["--dynamics-examples", "8", "--dynamics-every", "1", "--out", str(tmp_path)]
    assert main([*args, "--no-progress"]) == 0
    dynamics = load_dynamics(tmp_path / "d" / "dynamics.npz")
    assert dynamics.steps.tolist() == [1, 2] and dynamics.p_true.shape == (2, 8)
    text = "name: z\nbase: {steps: 5, dynamics_examples: 16}\nsweep: {head_seed: [0, 1]}\n"
    configs = expand(ZooFile.model_validate(yaml.safe_load(text)))
    assert [c.dynamics_examples for c in configs] == [16, 16]
    assert main([*args[:-2], "--dynamics-every", "0", "--out", str(tmp_path / "x")]) == 2
