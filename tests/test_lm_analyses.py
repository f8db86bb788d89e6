"""Language models through the analyses beyond a single path: plane, basins, sharpness,
mean path, and the commands that refuse text tasks (curve, combine, region).

The tiny Llama causal LMs, their tokenizer and the documents are :mod:`test_lm_tasks`'s
fixtures. Every expected number is recomputed with plain transformers, one unpadded document at
a time (:func:`test_lm_tasks._causal_reference`), on weights combined here by hand from the
saved state dicts.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from test_lm_tasks import (  # noqa: F401  (fixtures)
    _causal_reference,
    _load,
    _texts,
    docs,
    llama_tokenizer_dir,
    llamas,
    mlms,
)
from weightscape.cli.main import main

COMMON = ("--split", "all", "--no-progress", "--device", "cpu")


@pytest.fixture(scope="module")
def four_llamas(llamas, tmp_path_factory, llama_tokenizer_dir):  # noqa: F811
    """The three fixture Llamas and a fourth (seed 3), in one folder for a glob."""
    from transformers import LlamaForCausalLM

    from test_lm_tasks import _llama_config, _save

    torch.manual_seed(3)
    folder = llamas[0].parent / "llama3"
    if not folder.exists():
        _save(LlamaForCausalLM(_llama_config()), folder, llama_tokenizer_dir)
    return [*llamas, folder]


def _mixed_loss(folders, coefficients, texts) -> dict[str, float]:
    """Plain transformers' causal-LM loss of sum_i c_i * theta_i (hand-combined state dicts)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    states = [load_file(str(f / "model.safetensors")) for f in folders]
    model = _load(AutoModelForCausalLM, folders[0])
    mixed = {
        k: sum(float(c) * s[k].double() for c, s in zip(coefficients, states, strict=True))
        for k in states[0]
    }
    model.load_state_dict({k: v.float() for k, v in mixed.items()}, strict=False)
    tokenizer = AutoTokenizer.from_pretrained(
        str(folders[0]), local_files_only=True, trust_remote_code=False
    )
    return _causal_reference(model, tokenizer, texts)


def test_plane_of_three_causal_lms(llamas, docs, tmp_path, capsys):  # noqa: F811
    from weightscape.analyses.plane import PlaneResult

    out = tmp_path / "plane"
    argv = ["plane", *map(str, llamas), "--task", f"text:{docs}", "--resolution", "3"]
    assert main([*argv, *COMMON, "--out", str(out)]) == 0, capsys.readouterr().err
    plane = PlaneResult.load(out)
    assert set(plane.surfaces) == set(plane.model_metrics) == {"loss", "accuracy", "perplexity"}
    texts = _texts(docs)
    # The corners are the anchors' own LM losses.
    for i, folder in enumerate(llamas):
        expected = _mixed_loss([folder], [1.0], texts)
        assert plane.model_metrics["loss"][i] == pytest.approx(expected["loss"], rel=1e-5)
        assert plane.model_metrics["accuracy"][i] == pytest.approx(expected["accuracy"])
    # A grid node off the models: theta_1 + x u + y v, combined by hand.
    x, y = plane.xs[0], plane.ys[-1]
    row = np.array([1.0, 0.0, 0.0]) + x * plane.u + y * plane.v
    expected = _mixed_loss(llamas, row, texts)
    assert plane.surfaces["loss"][-1, 0] == pytest.approx(expected["loss"], rel=1e-4)
    np.testing.assert_allclose(plane.surfaces["perplexity"], np.exp(plane.surfaces["loss"]), 1e-6)


def test_basins_cluster_a_grid_of_causal_lms(four_llamas, docs, tmp_path, capsys):  # noqa: F811
    from sklearn.cluster import SpectralClustering

    grid = tmp_path / "grid"
    pattern = str(four_llamas[0].parent / "llama*")
    argv = ["grid", "--models", pattern, "--task", f"text:{docs}", "--points", "3"]
    assert main([*argv, *COMMON, "--out", str(grid)]) == 0, capsys.readouterr().err
    argv = ["basins", str(grid), "--task", f"text:{docs}", "--diagnostic", f"text:{docs}"]
    argv += ["--k", "2", "--sharpness-steps", "2", "--sharpness-examples", "12"]
    assert main([*argv, *COMMON]) == 0, capsys.readouterr().err
    texts = _texts(docs)
    with np.load(grid / "grid.npz") as data:
        gaps = data["matrix_loss_convexity_gap"]
    names = json.loads((grid / "grid.json").read_text())["names"]
    folders = {f.name: f for f in four_llamas}
    own = {n: _mixed_loss([folders[n]], [1.0], texts) for n in names}
    # With 3 points the convexity gap is max(0, loss(midpoint) - mean of the ends' losses).
    for i, a in enumerate(names):
        for j, b in enumerate(names[i + 1 :], i + 1):
            mid = _mixed_loss([folders[a], folders[b]], [0.5, 0.5], texts)["loss"]
            gap = max(0.0, mid - (own[a]["loss"] + own[b]["loss"]) / 2)
            assert gaps[i, j] == pytest.approx(gap, rel=1e-4, abs=1e-6)
    basins = json.loads((grid / "basins" / "basins.json").read_text())
    models = {m["name"]: m for m in basins["models"]}
    for n in names:  # the diagnostic is the LM's token accuracy, the ID loss its LM loss
        assert models[n]["docs_accuracy"] == pytest.approx(own[n]["accuracy"])
        assert models[n]["id_loss"] == pytest.approx(own[n]["loss"], rel=1e-5)
        assert np.isfinite(models[n]["sharpness"]) and models[n]["sharpness"] >= 0
    # The clusters are scikit-learn's on the documented Gaussian affinity of that matrix.
    positive = gaps[np.triu_indices(len(names), 1)]
    delta = np.median(positive[positive > 0])
    affinity = np.exp(-(gaps**2) / (2 * delta**2))
    labels = SpectralClustering(
        2, affinity="precomputed", assign_labels="cluster_qr", random_state=0
    ).fit_predict(affinity)
    found = [models[n]["cluster"] for n in names]
    same = lambda ls: {(i, j) for i in range(len(ls)) for j in range(len(ls)) if ls[i] == ls[j]}  # noqa: E731
    assert same(found) == same(labels.tolist())


def test_sharpness_objective_of_a_text_task_is_the_lm_loss(llamas, docs):  # noqa: F811
    from transformers import AutoModelForCausalLM

    from weightscape.analyses.model_metrics import models_sharpness, sharpness_objective
    from weightscape.data import load_task
    from weightscape.evaluation.engine import EngineSpec
    from weightscape.models.checkpoint import Checkpoint

    spec = EngineSpec(tuple(map(Checkpoint.from_path, llamas[:2])), load_task(f"text:{docs}"))
    engine = spec.build()
    batches, loss_fn = sharpness_objective(engine, spec)
    model = _load(AutoModelForCausalLM, llamas[0])
    expected = _mixed_loss([llamas[0]], [1.0], _texts(docs))["loss"]
    # Each batch loss is the mean NLL of its target tokens: weighted by their counts, the batch
    # losses make the token-weighted loss of every document.
    with torch.no_grad():
        losses = [float(loss_fn(model, batch)) for batch in batches]
    counts = [int((target != -100).sum()) for _, target in batches]
    assert sum(counts) == sum(len(t.split()) - 1 for t in _texts(docs))
    assert np.dot(losses, counts) / sum(counts) == pytest.approx(expected, rel=1e-5)
    sharp = models_sharpness(spec, steps=3, lr=1e-2, eps=1e-3)
    assert sharp.shape == (2,) and np.all(np.isfinite(sharp)) and np.all(sharp >= 0)
    assert np.any(sharp > 0)  # the ascent moved the loss up


def test_mean_path_of_causal_lm_pairs(four_llamas, docs, tmp_path, capsys):  # noqa: F811
    a, b, c, d = four_llamas
    argv = ["mean-path", f"{a}:{b}", f"{c}:{d}", "--task", f"text:{docs}", "--points", "3"]
    assert main([*argv, *COMMON, "--out", str(tmp_path)]) == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "mean-path.json").read_text())
    texts = _texts(docs)
    mids = [_mixed_loss(pair, [0.5, 0.5], texts)["loss"] for pair in ((a, b), (c, d))]
    assert result["curves"]["loss"]["mean"][1] == pytest.approx(np.mean(mids), rel=1e-5)
    assert result["curves"]["perplexity"]["values"][0][1] == pytest.approx(np.exp(mids[0]), 1e-5)


def test_combine_trains_on_the_lm_loss(llamas, docs, tmp_path):  # noqa: F811
    from weightscape.data import make_text_task
    from weightscape.models.checkpoint import Checkpoint
    from weightscape.models.space import ParameterSpace
    from weightscape.training.learned_mix import CombineConfig, learn_combination

    text = _texts(docs)[4]
    a, b = (Checkpoint.from_path(f) for f in llamas[:2])
    config = CombineConfig(steps=2, init=1.0, group_by="layer")
    _, history = learn_combination(
        a, b, make_text_task("one", [text]), config=config, space=ParameterSpace("all")
    )
    # Step 1's loss is the token-mean NLL of sigmoid(1) * theta_a + (1 - sigmoid(1)) * theta_b
    # on the one document, before any update.
    alpha = 1.0 / (1.0 + np.exp(-1.0))
    expected = _mixed_loss(llamas[:2], [alpha, 1.0 - alpha], [text])["loss"]
    assert history[0]["loss"] == pytest.approx(expected, rel=1e-5)
    assert history[1]["loss"] < history[0]["loss"]  # the same batch again, after a step down


def test_curve_fit_on_a_text_task_evaluates_the_lm_loss(llamas, docs, tmp_path):  # noqa: F811
    from weightscape.data import make_text_task
    from weightscape.models.checkpoint import Checkpoint
    from weightscape.models.space import ParameterSpace
    from weightscape.training.curve_fit import CurveConfig, fit_curve

    texts = _texts(docs)
    a, b = (Checkpoint.from_path(f) for f in llamas[:2])
    config = CurveConfig(steps=2, eval_every=2, eval_ts=(0.5,), lr=1e-2)
    anchors, history = fit_curve(
        a,
        b,
        make_text_task("train", texts[:8]),
        tmp_path / "curve",
        config=config,
        dev=make_text_task("dev", texts[8:]),
        space=ParameterSpace("all"),
    )
    assert [c.name for c in anchors] == ["llama0", "llama0~control-1", "llama1"]
    control = tmp_path / "curve" / "control-1"
    # The curve's midpoint, 1/4 a + 1/2 control + 1/4 b, scored by plain transformers.
    expected = _mixed_loss([llamas[0], control, llamas[1]], [0.25, 0.5, 0.25], texts[8:])
    evaluated = history[-1]["eval"]["0.5"]
    assert evaluated["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert evaluated["perplexity"] == pytest.approx(np.exp(expected["loss"]), rel=1e-5)


@pytest.mark.parametrize("command", ["curve", "combine"])
def test_training_commands_run_on_a_text_task(llamas, docs, tmp_path, capsys, command):  # noqa: F811
    argv = [command, str(llamas[0]), str(llamas[1]), "--task", f"text:{docs}", "--steps", "2"]
    argv += ["--points", "3", "--no-progress", "--device", "cpu", "--out", str(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    from weightscape.data import load_task, split, subset

    table = {"curve": "curve-table.json", "combine": "combine.json"}[command]
    rows = json.loads((tmp_path / table).read_text())
    endpoint = next(r for r in rows if "endpoint" in r)
    folder = next(f for f in llamas[:2] if f.name == endpoint["endpoint"])
    parts = split(load_task(f"text:{docs}"), seed=0)
    for name, part in (("dev", "validation"), ("test", "test")):
        texts = subset(parts[part], 512, seed=0).texts
        expected = _mixed_loss([folder], [1.0], texts)["loss"]
        assert endpoint[name]["loss"] == pytest.approx(expected, rel=1e-5)
        assert endpoint[name]["perplexity"] == pytest.approx(np.exp(expected), rel=1e-5)
    assert len(rows) >= 3 and all(np.isfinite(r["test"]["loss"]) for r in rows)
    # On a text task t and the better endpoint are chosen by the LM loss, not token accuracy.
    test_texts = subset(parts["test"], 512, seed=0).texts
    losses = {f.name: _mixed_loss([f], [1.0], test_texts)["loss"] for f in llamas[:2]}
    assert endpoint["endpoint"] == min(losses, key=losses.get)
    assert endpoint["method"].startswith("better endpoint on test loss")
    line = next(r for r in rows if r["method"].startswith("linear"))
    assert "on dev loss)" in line["method"]


def test_region_refuses_text_targets(llamas, docs, tmp_path, capsys):  # noqa: F811
    from weightscape.models.zoo import append_to_manifest

    manifest = tmp_path / "zoo.yaml"
    for folder in llamas[1:]:
        append_to_manifest(
            manifest,
            {"name": folder.name, "path": str(folder), "tags": {"dataset": f"text:{docs}"}},
        )
    argv = ["region", "--zoo", str(manifest), "--base", str(llamas[0]), "--quick"]
    assert main([*argv, "--no-progress", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "`weightscape region`" in err and f"text:{docs}" in err and "Traceback" not in err


# --- reports ---------------------------------------------------------------------------------


def test_walk_table_and_html_report_read_a_causal_lm_walk(llamas, docs, tmp_path, capsys):  # noqa: F811
    import yaml

    study = tmp_path / "lm.yaml"
    anchors = [str(llamas[0]), str(llamas[1])]
    steps = [{"interpolate": {"anchors": anchors, "task": f"text:{docs}", "points": 3}}]
    study.write_text(
        yaml.safe_dump(
            {
                "name": "lm",
                "out": str(tmp_path / "out"),
                "evaluation": {"split": "all", "device": "cpu"},
                "steps": steps,
            }
        )
    )
    assert main(["run", str(study)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    texts = _texts(docs)
    mid = _mixed_loss(llamas[:2], [0.5, 0.5], texts)
    # The terminal table has a perplexity column: exp of the token-mean loss.
    header = next(line for line in out.splitlines() if line.split()[:2] == ["t", "loss"])
    assert header.split()[:4] == ["t", "loss", "acc", "ppl"]
    row = next(line for line in out.splitlines() if line.split()[:1] == ["0.5"])
    assert float(row.split()[3]) == pytest.approx(np.exp(mid["loss"]), abs=1e-4)
    assert main(["report", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert "token-mean negative log likelihood" in page
    ends = [_mixed_loss([f], [1.0], texts)["loss"] for f in llamas[:2]]
    assert f"Perplexity (exp of that loss) is {np.exp(ends[0]):.3g} at t = 0" in page
    assert f"{np.exp(ends[1]):.3g} at t = 1" in page
    assert "token accuracy (fraction of targets predicted)" in page  # the path figure's axis


def test_pretraining_report_shows_the_mlm_paths(tmp_path, docs, tokenizer_dir):  # noqa: F811
    from transformers import AutoModelForMaskedLM, AutoTokenizer, BertForMaskedLM

    from test_lm_tasks import _masked_reference, _midpoint, _mlm_config, _save
    from weightscape.analyses.pretraining import PretrainingStudy, mlm_paths
    from weightscape.data import load_task, subset
    from weightscape.models.checkpoint import Checkpoint
    from weightscape.report.html import reading
    from weightscape.report.pretrain_report import write_pretraining_report
    from weightscape.runtime.store import ResultStore

    folders = []
    for step in range(3):
        torch.manual_seed(step)
        folders.append(_save(BertForMaskedLM(_mlm_config()), tmp_path / f"s{step}", tokenizer_dir))
    checkpoints = [Checkpoint.from_path(f, tags={"step": 10 * i}) for i, f in enumerate(folders)]
    study = PretrainingStudy(points=3, mlm_eval_size=8, max_length=64)
    store = ResultStore(tmp_path / "results.sqlite")
    rows = mlm_paths(checkpoints, _texts(docs), study, store=store)
    store.close()
    result = {"checkpoints": [], "mlm_paths": rows}
    files = write_pretraining_report(result, tmp_path / "report")
    assert files["mlm paths"].is_file()
    # The table's midpoint loss of the first line is the hand-averaged model's masked-LM loss.
    chosen = subset(load_task(f"text:{docs}"), 8, seed=0)
    tokenizer = AutoTokenizer.from_pretrained(
        str(folders[0]), local_files_only=True, trust_remote_code=False
    )
    mid = _midpoint(AutoModelForMaskedLM, folders[0], folders[1])
    expected = _masked_reference(mid, tokenizer, chosen.texts, chosen.ids.tolist())["loss"]
    table = (tmp_path / "report" / "pretraining.md").read_text()
    line = next(x for x in table.splitlines() if x.startswith("| 0 -> 10 |"))
    assert float(line.split("|")[4]) == pytest.approx(expected, rel=1e-3)
    assert "| 10 -> 20 | 8 |" in table
    sentence = reading.pretraining({"checkpoints": [{"step": 0}], "mlm_paths": rows})[-1]
    assert "masked-LM loss" in sentence and "between steps" in sentence


def test_walk_figure_labels_a_language_model_per_token(tmp_path, monkeypatch):
    from weightscape.analyses.interpolation import PathWalk, WalkPoint
    from weightscape.report import walk_outputs

    def walk(metrics: list[str]) -> PathWalk:
        points = [
            WalkPoint(t, [1 - t, t], {m: 1.0 + t for m in metrics}, False, str(t))
            for t in (0.0, 1.0)
        ]
        return PathWalk("linear", ["a", "b"], "docs", points, {})

    labels: list[str] = []
    monkeypatch.setattr(walk_outputs, "label_axes", lambda ax, x, y, *a: labels.append(y))
    walk_outputs.plot_walks([walk(["loss", "accuracy", "perplexity"])], tmp_path / "lm.png")
    walk_outputs.plot_walks([walk(["loss", "accuracy", "macro_f1"])], tmp_path / "cls.png")
    assert labels[:2] == [walk_outputs.LM_LABELS["loss"], walk_outputs.LM_LABELS["accuracy"]]
    assert "token-mean negative log likelihood" in labels[0]
    assert labels[2:] == ["loss (mean cross-entropy, nats)", "accuracy (fraction correct)"]


def test_combine_groups_a_tied_masked_lm_by_matrix(mlms, docs, tmp_path, capsys):  # noqa: F811
    """A BERT masked LM's decoder is its word-embedding table (one tensor, two names): a learned
    mix by matrix gives the group one coefficient, and the engine writes it once, so the mixed
    decoder still equals the mixed embeddings."""
    argv = ["combine", str(mlms[0]), str(mlms[1]), "--task", f"text:{docs}", "--steps", "2"]
    argv += ["--points", "3", "--group-by", "matrix", "--no-progress", "--device", "cpu"]
    argv += ["--out", str(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    rows = json.loads((tmp_path / "combine.json").read_text())
    assert all(np.isfinite(r["test"]["loss"]) for r in rows)

    from weightscape.data import load_task
    from weightscape.evaluation.engine import Engine
    from weightscape.evaluation.grouped import GroupedPoint
    from weightscape.models.checkpoint import Checkpoint
    from weightscape.models.space import group_of

    engine = Engine(
        [Checkpoint.from_path(m) for m in mlms], load_task(f"text:{docs}"), device="cpu"
    )
    groups = {group_of(n, "matrix"): [0.3, 0.7] for n in engine.working.state}
    point = GroupedPoint.from_mapping("matrix", groups)
    engine.working.write(engine.anchors, point, engine.space)
    model = engine.working.model
    assert (
        model.cls.predictions.decoder.weight.data_ptr()
        == model.bert.embeddings.word_embeddings.weight.data_ptr()
    )
    a, b = (load_file(str(m / "model.safetensors")) for m in mlms)
    key = "bert.embeddings.word_embeddings.weight"
    torch.testing.assert_close(
        model.cls.predictions.decoder.weight, 0.3 * a[key] + 0.7 * b[key], rtol=0, atol=1e-6
    )
