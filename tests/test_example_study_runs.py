"""An example study file run end to end on tiny models: killed midway, rerun, nothing recomputed.

``examples/studies/juneja_basins.yaml`` itself (zoo -> grid -> basins -> trajectories), with
``key=value`` overrides that swap its MiniLM zoo for tiny BERTs and shrink the data: the same
file a user runs, at test size.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from weightscape.cli.main import main
from weightscape.runtime.store import ResultStore

EXAMPLE = Path(__file__).parents[1] / "examples" / "studies" / "juneja_basins.yaml"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def _overrides(tmp_path: Path, base: Path) -> list[str]:
    zoo = tmp_path / "tiny_nli.yaml"
    zoo.write_text(
        yaml.safe_dump(
            {
                "name": "nli",
                "task": {"name": "mnli_like", "split": "train"},
                "base": {
                    "base": str(base),
                    "steps": 4,
                    "batch_size": 8,
                    "lr": 1e-3,
                    "max_length": 32,
                    "save_steps": [2],
                },
                "runs": [{"name": f"nli-s{s}", "head_seed": s, "data_seed": s} for s in range(3)],
            }
        )
    )
    return [
        f"out={tmp_path / 'out'}",
        f"steps.0.finetune.zoo_file={zoo}",
        "evaluation.subset=16",
        "evaluation.device=cpu",
        "evaluation.max_length=32",
        "steps.1.grid.points=3",
        "steps.2.basins.sharpness_steps=1",
        "steps.2.basins.sharpness_examples=8",
        "steps.2.basins.diagnostic=[hans_like_lexical_overlap_non_entailing]",
        "steps.3.trajectories.subset=16",
        "steps.3.trajectories.points=3",
    ]


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from weightscape.runtime.store import ResultStore
    from weightscape.cli.main import main

    limit, put, count = int(sys.argv[1]), ResultStore.put, [0]

    def put_then_maybe_die(self, *args, **kwargs):
        put(self, *args, **kwargs)
        count[0] += 1
        if count[0] == limit:  # the K-th point is stored: die as a killed process does
            os.kill(os.getpid(), signal.SIGKILL)

    ResultStore.put = put_then_maybe_die
    sys.exit(main(["run", *sys.argv[2:]]))
    """
)


@pytest.fixture(scope="module")
def finished(tiny_models, tmp_path_factory):
    """The study run once, whole, without interruption: the reference."""
    tmp = tmp_path_factory.mktemp("whole")
    assert main(["run", str(EXAMPLE), *_overrides(tmp, tiny_models[0])]) == 0
    return tmp / "out"


def test_the_example_runs_every_step(finished):
    assert (finished / "zoo" / "zoo.yaml").is_file()
    assert (finished / "02-grid" / "grid.json").is_file()
    assert (finished / "03-basins" / "basins.json").is_file()
    assert (finished / "04-trajectories" / "trajectory.json").is_file()
    models = yaml.safe_load((finished / "zoo" / "zoo.yaml").read_text())["models"]
    assert len(models) == 6  # 3 runs x (step 2, step 4)
    import json

    grid = json.loads((finished / "02-grid" / "grid.json").read_text())
    assert sorted(grid["names"]) == ["nli-s0", "nli-s1", "nli-s2"]  # final_only


@pytest.mark.parametrize("kill_after", [3, 11])
def test_a_killed_example_study_resumes_and_recomputes_nothing_stored(
    kill_after, finished, tiny_models, tmp_path, monkeypatch
):
    overrides = _overrides(tmp_path, tiny_models[0])
    child = subprocess.run(
        [sys.executable, "-c", KILLER, str(kill_after), str(EXAMPLE), *overrides],
        env=ENV,
        capture_output=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-3000:]
    store = ResultStore(tmp_path / "out" / "results.sqlite")
    assert len(store) == kill_after
    stored = {row[0] for row in store._db.execute("SELECT key FROM points")}

    computed: list[str] = []
    put = ResultStore.put

    def counting_put(self, key, *args, **kwargs):
        computed.append(key)
        put(self, key, *args, **kwargs)

    monkeypatch.setattr(ResultStore, "put", counting_put)
    assert main(["run", str(EXAMPLE), *overrides]) == 0
    assert not stored & set(computed)  # nothing stored was computed again
    assert len(store) == len(ResultStore(finished / "results.sqlite"))
    assert len(set(computed)) == len(computed) == len(store) - kill_after
