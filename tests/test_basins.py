"""Basins end to end on a constructed zoo whose two groups are known by construction.

A tiny BERT is finetuned once (model A, fixture ``trained_tiny``). Its twin B computes the same
function from other weights (``permuted_twin``: feed-forward neurons permuted, attention heads
swapped). Group 0 is A plus small noise (3 models), group 1 is B
plus small noise (3 models). Lines within a group stay in one basin; lines between the groups
cross a barrier, since averaging A with its permuted twin averages unrelated neurons.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import permuted_twin
from weightscape.analyses.basins import analyse_basins
from weightscape.analyses.connectivity import connectivity_grid
from weightscape.cli.main import main
from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import EngineSpec
from weightscape.metrics import clustering_accuracy
from weightscape.models.checkpoint import Checkpoint

PLANTED = np.array([0, 0, 0, 1, 1, 1])


@pytest.fixture(scope="module")
def planted_zoo(trained_tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    state = load_file(trained_tiny.path / "model.safetensors")
    twin = permuted_twin(state)
    checkpoints = []
    for i, (source, group) in enumerate([(state, 0)] * 3 + [(twin, 1)] * 3):
        folder = root / f"g{group}-{i}"
        shutil.copytree(trained_tiny.path, folder)
        save_file(_noisy(source, i), str(folder / "model.safetensors"), metadata={"format": "pt"})
        checkpoints.append(Checkpoint.from_path(folder, tags={"group": group}))
    return checkpoints


def _noisy(state, seed: int, std: float = 2e-3):
    generator = torch.Generator().manual_seed(seed)
    return {
        k: v + std * torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
        for k, v in state.items()
    }


@pytest.fixture(scope="module")
def planted_grid(planted_zoo, tiny_task):
    return connectivity_grid(EngineSpec(tuple(planted_zoo), tiny_task, device="cpu"), points=5)


def test_the_twin_computes_the_same_function(planted_zoo, planted_grid):
    accuracy = planted_grid.endpoint_metrics["accuracy"]
    assert accuracy.min() > 0.9  # every model, permuted or not, solves the task
    np.testing.assert_allclose(
        planted_grid.endpoint_metrics["loss"][:3],
        planted_grid.endpoint_metrics["loss"][3:],
        atol=0.02,
    )


def test_between_group_gaps_dominate(planted_grid):
    gaps = planted_grid.matrices["loss_convexity_gap"]
    same = PLANTED[:, None] == PLANTED[None, :]
    off = ~np.eye(6, dtype=bool)
    assert gaps[~same].min() > 10 * max(gaps[same & off].max(), 1e-4)


def test_pipeline_returns_the_planted_groups(planted_zoo, planted_grid):
    analysis = analyse_basins(planted_grid, planted_zoo)  # k chosen by the eigengap
    assert analysis.k == 2
    assert clustering_accuracy(PLANTED, analysis.labels) == 1.0
    # The centroid margin is negative for group 0 and positive for group 1.
    assert np.all(analysis.margin[PLANTED == 0] < 0) and np.all(analysis.margin[PLANTED == 1] > 0)


def test_a_diagnostic_tied_to_the_groups_is_explained(planted_zoo, planted_grid):
    diagnostic = PLANTED + 0.01 * np.arange(6)  # a measurement that follows the basin
    analysis = analyse_basins(
        planted_grid, planted_zoo, k=2, model_metrics={"diagnostic": diagnostic}
    )
    assert abs(analysis.correlations["diagnostic"]["pearson_r"]) > 0.95
    assert analysis.regressions["diagnostic"]["r2"] > 0.99
    table = {row["cluster"]: row for row in analysis.table}
    assert table[0]["size"] == table[1]["size"] == 3
    assert table[0]["metrics"]["diagnostic"]["overlap"] == 0.0
    json.dumps(analysis.to_dict())  # everything is JSON-able


def test_basins_command_end_to_end(planted_zoo, planted_grid, tiny_csv, tmp_path, capsys):
    planted_grid.save(tmp_path / "grid")
    code = main(
        [
            "basins",
            str(tmp_path / "grid"),
            "--task",
            str(tiny_csv),
            "--split",
            "all",
            "--diagnostic",
            str(tiny_csv),
            "--k",
            "2",
            "--no-progress",
            "--device",
            "cpu",
            "--sharpness-steps",
            "2",
        ]
    )
    assert code == 0, capsys.readouterr().err
    out = tmp_path / "grid" / "basins"
    for name in (
        "basins.json",
        "clusters.csv",
        "clusters.md",
        "cluster_curves.png",
        "loss_convexity_gap_by_cluster.png",
    ):
        assert (out / name).is_file(), name
    result = json.loads((out / "basins.json").read_text())
    labels = np.array([m["cluster"] for m in result["models"]])
    assert clustering_accuracy(PLANTED, labels) == 1.0
    assert all(np.isfinite(m["sharpness"]) and m["sharpness"] >= 0 for m in result["models"])
    assert "generated_accuracy" in result["models"][0]


def test_centroid_distances_from_the_grid_equal_the_streamed_ones(planted_zoo, planted_grid):
    """With a Euclidean matrix in the grid, basins reuse it instead of re-reading the weights."""
    from weightscape.analyses.weight_stats import euclidean_distances, gram_matrix

    streamed = analyse_basins(planted_grid, planted_zoo, k=2)
    planted_grid.matrices["euclidean"] = euclidean_distances(gram_matrix(planted_zoo))
    try:
        reused = analyse_basins(planted_grid, planted_zoo, k=2)
    finally:
        del planted_grid.matrices["euclidean"]
    np.testing.assert_array_equal(reused.labels, streamed.labels)
    np.testing.assert_allclose(reused.centroid_distances, streamed.centroid_distances, rtol=1e-6)


def test_basins_writes_next_to_the_grid_unless_told():
    from pathlib import Path

    from weightscape.studies.basins import Config

    assert Config(grid="runs/grid").out == Path("runs/grid/basins")
    assert Config(grid="runs/grid", out="elsewhere").out == Path("elsewhere")


def test_basins_refuses_an_unknown_matrix_before_evaluating(planted_grid, tmp_path, capsys):
    planted_grid.save(tmp_path / "grid")
    code = main(["basins", str(tmp_path / "grid"), "--matrix", "loss_convexty_gap"])
    assert code == 2
    err = capsys.readouterr().err
    assert "Unknown grid matrix (--matrix) 'loss_convexty_gap'" in err
    assert "Did you mean 'loss_convexity_gap'?" in err
    assert not (tmp_path / "grid" / "basins").exists()


def _hand_spectral_margin(distances, delta, labels):
    """Juneja et al.'s margin by hand: Laplacian eigenmap of the Gaussian affinity (numpy eigh of
    I - D^-1/2 W D^-1/2 without self-loops, rows divided by sqrt(degree)), distances to the two
    clusters' means there, d_0 - d_1."""
    w = np.exp(-(distances**2) / (2 * delta**2))
    np.fill_diagonal(w, 0.0)
    degree = w.sum(axis=1)
    _, vectors = np.linalg.eigh(np.eye(len(w)) - w / np.sqrt(np.outer(degree, degree)))
    points = vectors[:, :2] / np.sqrt(degree)[:, None]
    d = [np.linalg.norm(points - points[labels == c].mean(axis=0), axis=1) for c in (0, 1)]
    return d[0] - d[1]


def _hand_weight_margin(checkpoints, labels):
    """The weight-space margin by hand: every tensor flattened, the clusters' mean vectors."""
    vectors = np.stack(
        [
            np.concatenate(
                [
                    t.double().numpy().ravel()
                    for t in load_file(c.path / "model.safetensors").values()
                ]
            )
            for c in checkpoints
        ]
    )
    d = [np.linalg.norm(vectors - vectors[labels == c].mean(axis=0), axis=1) for c in (0, 1)]
    return d[0] - d[1]


def test_both_centroid_margins_match_hand_computations(planted_zoo, planted_grid):
    analysis = analyse_basins(planted_grid, planted_zoo, k=2)
    assert analysis.margin_kind == "spectral"  # Juneja et al.'s, the default
    gaps = planted_grid.matrices["loss_convexity_gap"]
    spectral = _hand_spectral_margin(gaps, analysis.delta, analysis.labels)
    np.testing.assert_allclose(analysis.margins["spectral"], spectral, atol=1e-8)
    np.testing.assert_array_equal(analysis.margin, analysis.margins["spectral"])
    weights = _hand_weight_margin(planted_zoo, analysis.labels)
    np.testing.assert_allclose(analysis.margins["weights"], weights, rtol=1e-6, atol=1e-9)
    by_weights = analyse_basins(planted_grid, planted_zoo, k=2, margin="weights")
    np.testing.assert_array_equal(by_weights.margin, analysis.margins["weights"])


def test_both_margins_are_correlated_with_each_metric(planted_zoo, planted_grid):
    diagnostic = PLANTED + 0.01 * np.arange(6)
    analysis = analyse_basins(
        planted_grid, planted_zoo, k=2, model_metrics={"diagnostic": diagnostic}
    )
    assert set(analysis.margin_correlations) == {"spectral", "weights"}
    for kind in ("spectral", "weights"):
        r = analysis.margin_correlations[kind]["diagnostic"]["pearson_r"]
        expected = np.corrcoef(analysis.margins[kind], diagnostic)[0, 1]
        assert r == pytest.approx(expected, abs=1e-12)
    assert (
        analysis.correlations["diagnostic"]
        == analysis.margin_correlations["spectral"]["diagnostic"]
    )
    out = analysis.to_dict()
    assert out["margin"] == "spectral" and "margin_weights" in out["models"][0]
    with pytest.raises(WeightscapeError, match="Unknown margin 'weight'"):
        analyse_basins(planted_grid, planted_zoo, k=2, margin="weight")


def test_basins_command_runs_the_juneja_additions(
    planted_zoo, planted_grid, tiny_csv, tmp_path, capsys
):
    """--margin, --convexity-samples, --top-bottom and --sharpness-preset juneja end to end."""
    planted_grid.save(tmp_path / "grid")
    code = main(
        [
            "basins",
            str(tmp_path / "grid"),
            "--task",
            str(tiny_csv),
            "--split",
            "all",
            "--diagnostic",
            str(tiny_csv),
            "--k",
            "2",
            "--margin",
            "weights",
            "--convexity-samples",
            "2",
            "--top-bottom",
            "2",
            "--sharpness-preset",
            "juneja",
            "--sharpness-steps",
            "1",
            "--sharpness-examples",
            "16",
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = tmp_path / "grid" / "basins"
    for name in ("extreme_groups.json", "extreme_groups.png", "margin_spectral_vs_id_loss.png"):
        assert (out / name).is_file(), name
    result = json.loads((out / "basins.json").read_text())
    assert result["margin"] == "weights"
    assert set(result["margin_correlations"]) == {"spectral", "weights"}

    # epsilon-convexity: two clusters of three, two combinations each
    assert [(c["size"], c["samples"]) for c in result["convexity"]] == [(3, 2), (3, 2)]
    for row in result["convexity"]:
        assert np.isfinite(row["jensen_gap_max"])
        assert row["epsilon"] >= row["max_convexity_gap"]
    assert "Jensen gap over 2 convex combinations" in captured.out

    # sharpness as the preset says, with the overrides
    record = result["settings"]["sharpness"]
    assert (record["preset"], record["mode"], record["accumulate"]) == ("juneja", "train", "sum")
    assert (record["steps"], record["examples_used"], record["batch_size"]) == (1, 16, 32)

    # Fig. 1: the 2 best and 2 worst models on the diagnostic, by Juneja et al.'s rule
    accuracy = {m["name"]: m["generated_accuracy"] for m in result["models"]}
    ranked = sorted(accuracy, key=accuracy.get)  # stable, as their sorted()
    groups = json.loads((out / "extreme_groups.json").read_text())
    assert groups["bottom"] == ranked[:2] and groups["top"] == ranked[-2:]
    # the curve from a top model to a bottom model starts at the top models' mean accuracy
    # and ends at the bottom models' (each endpoint is the model itself)
    between = groups["curves"]["diagnostics"]["generated"]["accuracy"]["gen-heur"]
    assert between["pairs"] == 4
    assert between["mean"][0] == pytest.approx(np.mean([accuracy[n] for n in groups["top"]]))
    assert between["mean"][-1] == pytest.approx(np.mean([accuracy[n] for n in groups["bottom"]]))
    within = groups["curves"]["in_distribution"]["loss"]["gen-gen"]
    assert within["pairs"] == 1 and within["mean"] == pytest.approx(within["mean"][::-1])
