"""Curves averaged over seeds with their spread (``weightscape mean-path``), on hand numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from weightscape.analyses.interpolation import PathWalk, WalkPoint
from weightscape.analyses.mean_path import mean_curves
from weightscape.errors import WeightscapeError

TS = (0.0, 0.5, 1.0)


def _walk(name: str, loss, accuracy, barrier: float, ts=TS) -> PathWalk:
    points = [
        WalkPoint(t, [1 - t, t], {"loss": lo, "accuracy": acc}, False, f"{name}{t}")
        for t, lo, acc in zip(ts, loss, accuracy, strict=True)
    ]
    walk = PathWalk("linear", [f"{name}-a", f"{name}-b"], "hand", points, {})
    walk.summary = {"grid_points": 3, "loss": {"barrier_height": barrier, "best_t": 0.5}}
    return walk


# Three seeds: losses 1,2,3 / 2,4,6 / 6,12,18 along t; accuracy constant 0.5, 0.6, 0.7. At t = 0
# the losses are 1, 2, 6: mean 3, deviations -2, -1, 3, sample std sqrt((4 + 1 + 9) / 2) = sqrt(7);
# at t = 0.5 and 1 every value doubles and triples.
WALKS = [
    _walk("s0", [1, 2, 3], [0.5] * 3, 0.1),
    _walk("s1", [2, 4, 6], [0.6] * 3, 0.2),
    _walk("s2", [6, 12, 18], [0.7] * 3, 0.6),
]


def test_mean_and_sample_std_by_hand():
    result = mean_curves(WALKS)
    stats = result.stats("loss")
    root7 = math.sqrt(7)
    assert stats["mean"].tolist() == [3.0, 6.0, 9.0]
    assert stats["std"].tolist() == pytest.approx([root7, 2 * root7, 3 * root7])  # n - 1 = 2
    lower, upper = result.bounds("loss")  # mean -+ std
    assert lower.tolist() == pytest.approx([3 - root7, 6 - 2 * root7, 9 - 3 * root7])
    assert upper.tolist() == pytest.approx([3 + root7, 6 + 2 * root7, 9 + 3 * root7])
    assert result.stats("accuracy")["mean"] == pytest.approx([0.6] * 3)
    assert result.pairs == ["s0-a -> s0-b", "s1-a -> s1-b", "s2-a -> s2-b"]
    barrier = result.summaries["loss"]["barrier_height"]
    assert barrier["mean"] == pytest.approx(0.3)
    # deviations -0.2, -0.1, 0.3: sqrt((0.04 + 0.01 + 0.09) / 2)
    assert barrier["std"] == pytest.approx(math.sqrt(0.07))
    assert (barrier["min"], barrier["max"], barrier["values"]) == (0.1, 0.6, [0.1, 0.2, 0.6])


def test_minmax_band_is_the_range():
    result = mean_curves(WALKS, band="minmax")
    lower, upper = result.bounds("loss")
    assert lower.tolist() == [1.0, 2.0, 3.0] and upper.tolist() == [6.0, 12.0, 18.0]
    saved = json.loads(json.dumps(result.to_dict()))
    assert saved["curves"]["loss"]["max"] == [6.0, 12.0, 18.0] and saved["band"] == "minmax"
    assert saved["curves"]["loss"]["values"][2] == [6.0, 12.0, 18.0]


def test_what_cannot_be_averaged_is_explained():
    with pytest.raises(WeightscapeError, match="at least 2 walks"):
        mean_curves(WALKS[:1])
    other = _walk("x", [1, 2, 3], [0.5] * 3, 0.0, ts=(0.0, 0.4, 1.0))
    with pytest.raises(WeightscapeError, match="share one t grid"):
        mean_curves([WALKS[0], other])
    with pytest.raises(WeightscapeError, match="'band' parameter"):
        mean_curves(WALKS, band="iqr")


def test_mean_path_command(tiny_models, tiny_csv, tmp_path, capsys):
    from weightscape.cli.main import main

    m0, m1, m2 = (str(p) for p in tiny_models)
    argv = ["mean-path", f"{m0}:{m1}", f"{m0}:{m2}", "--task", str(tiny_csv), "--points", "3"]
    argv += ["--out", str(tmp_path), "--no-progress", "--device", "cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    for name in ("mean-path.json", "mean-path.csv", "mean-path.png"):
        assert (tmp_path / name).is_file(), name
    saved = json.loads((tmp_path / "mean-path.json").read_text())
    loss = saved["curves"]["loss"]
    values = np.array(loss["values"])
    assert values.shape == (2, 3) and saved["ts"] == [0.0, 0.5, 1.0]
    assert values[0, 0] == values[1, 0]  # both pairs start at m0
    assert loss["mean"] == pytest.approx(values.mean(axis=0).tolist())
    assert loss["std"] == pytest.approx(values.std(axis=0, ddof=1).tolist())
    assert "loss barrier" in capsys.readouterr().out
    assert main(["mean-path", f"{m0}:{m1}", "--task", str(tiny_csv)]) == 2
    assert "give at least 2 pairs" in capsys.readouterr().err
    assert main(["mean-path", f"{m0}", f"{m0}:{m1}"]) == 2
    assert "write each pair as A:B" in capsys.readouterr().err
