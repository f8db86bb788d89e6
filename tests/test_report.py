"""``weightscape report``: the HTML page of every example study, run on tiny models.

Each example study file of ``examples/studies/`` runs as a user runs it, with ``key=value``
overrides that swap its MiniLM zoos for tiny BERTs (the demo keeps MiniLM, one training step) and
shrink the data, once per module; then ``weightscape report OUT`` writes the page, and the page
is checked against the folder and the store it was drawn from:

- one self-contained file: every ``src``/``href`` is a ``data:`` URI or a fragment, no
  stylesheet link, no ``@import``, plotly.js inlined exactly once;
- every PNG and SVG of every step is embedded (its bytes, by SHA-256 and base64), every CSV is
  a table whose download holds the file's bytes;
- every stored point a step used is listed, in full precision, equal to the store's result;
- the sentences say what the step's JSON says (recomputed here from the files);
- names from users (a model called ``<script>alert(1)</script>``, a tag ``<img src=x
  onerror=alert(1)>``) appear only escaped, and the figures' JSON holds no ``<``.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import generated_texts, save_tiny_model
from weightscape.cli.main import main
from weightscape.runtime.store import ResultStore

EXAMPLES = Path(__file__).parents[1] / "examples" / "studies"
HOSTILE = "<script>alert(1)</script>"
HOSTILE_TAG = "<img src=x onerror=alert(1)>"
TINY = {"steps": 2, "batch_size": 8, "lr": 1e-3, "max_length": 16}


# --- reading a page ---------------------------------------------------------------------------


class Page(HTMLParser):
    """What the checks need of a page: its tags with attributes, per step section; the text of
    each script; the visible text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.sections: dict[str, dict] = {}
        self.text: list[str] = []
        self._section: dict | None = None
        self._script: dict[str, str | None] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "section" and "data-folder" in attributes:
            self._section = {"images": [], "downloads": [], "text": []}
            self.sections[attributes["data-folder"]] = self._section
        if tag == "script":
            self._script = attributes
        if self._section is not None:
            if tag == "img":
                self._section["images"].append(attributes)
            if tag == "a" and "download" in attributes:
                self._section["downloads"].append(attributes)

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self.scripts.append((self._script, data))
            return
        self.text.append(data)
        if self._section is not None:
            self._section["text"].append(data)


def _decoded(href: str) -> bytes:
    assert href.startswith("data:") and ";base64," in href, href[:60]
    return base64.b64decode(href.split(";base64,", 1)[1])


def _text(parts: list[str]) -> str:
    return re.sub(r"\s+", " ", " ".join(parts))


def _step_folders(out: Path) -> list[Path]:
    """The folders with a run.json, in the order their steps ran."""
    if (out / "run.json").is_file():
        return [out]
    found = [p for p in out.rglob("run.json") if len(p.parent.relative_to(out).parts) <= 2]
    runs = {p.parent: json.loads(p.read_text()) for p in found}
    return sorted(runs, key=lambda f: (runs[f]["study"]["step"], runs[f]["started"]))


def _files(step: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The step's files of these kinds, not those of another step inside it."""
    found = []
    for root, dirs, files in os.walk(step):
        dirs[:] = [
            d for d in dirs if not d.startswith(".") and not (Path(root, d) / "run.json").is_file()
        ]
        found += [
            Path(root, f) for f in files if f.lower().endswith(suffixes) and not f.startswith(".")
        ]
    return found


def check_report(out: Path, *options: str, points: bool = True) -> tuple[str, Page]:
    """Write the report of ``out`` with the CLI and check everything a page must hold."""
    assert main(["report", str(out), *options]) == 0
    html_text = (out / "report.html").read_text()
    page = Page(html_text)
    _check_self_contained(html_text, page)
    steps = _step_folders(out)
    assert [*page.sections] == [s.relative_to(out).as_posix() if s != out else "." for s in steps]
    for step in steps:
        section = page.sections[step.relative_to(out).as_posix() if step != out else "."]
        _check_files_embedded(step, section)
        if points:
            _check_points(step, section)
        text = _text(section["text"])
        assert "could not be drawn" not in text, text[:2000]
    return html_text, page


def _check_self_contained(html_text: str, page: Page) -> None:
    for tag, attributes in page.tags:
        for name in ("src", "href", "srcset", "action", "data", "poster"):
            value = attributes.get(name)
            if value is not None:
                assert value.startswith(("data:", "#")), (tag, name, value[:80])
        assert tag not in ("link", "iframe", "object", "embed", "base"), tag
    assert "@import" not in html_text
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html_text)
    from plotly.offline import get_plotlyjs

    assert html_text.count(get_plotlyjs()) == 1
    # every script: plotly.js, the page's own, and JSON figure specs (nothing else)
    kinds = [attributes.get("type") for attributes, _ in page.scripts]
    assert kinds.count(None) == 2 and set(kinds) <= {None, "application/json"}
    for attributes, text in page.scripts:
        if attributes.get("type") == "application/json":
            assert "<" not in text and ">" not in text
            json.loads(text)  # JSON.parse takes it: no NaN, no Infinity


def _check_files_embedded(step: Path, section: dict) -> None:
    images = {(i.get("data-file"), i.get("data-sha256")): i["src"] for i in section["images"]}
    for path in _files(step, (".png", ".svg")):
        data = path.read_bytes()
        key = (path.relative_to(step).as_posix(), hashlib.sha256(data).hexdigest())
        assert key in images, key
        assert _decoded(images[key]) == data
    downloads = [_decoded(a["href"]) for a in section["downloads"]]
    text = _text(section["text"])
    for path in _files(step, (".csv",)):
        assert path.read_bytes() in downloads, path
        assert path.relative_to(step).as_posix() in text  # the table's caption


def _check_points(step: Path, section: dict) -> None:
    run = json.loads((step / "run.json").read_text())
    config = run.get("config") or {}
    store_path = next(
        (p for p in (Path(str(config.get("store"))), step / "results.sqlite") if p.is_file()), None
    )
    store_path = store_path or next(
        (p / "results.sqlite" for p in step.parents if (p / "results.sqlite").is_file()), None
    )
    if store_path is None:
        return
    store = ResultStore(store_path, read_only=True)
    try:
        used = {u["key"]: bool(u["computed"]) for u in store.table("uses") if u["run"] == run["id"]}
        points = [a for a in section["downloads"] if a["download"].endswith("-points.csv")]
        evaluated = run["points"]["computed"] + run["points"]["reused"]
        assert bool(used) == bool(evaluated), (step, evaluated)  # the check is not vacuous
        if not used:
            assert (
                not points
                or len(list(csv.DictReader(io.StringIO(_decoded(points[0]["href"]).decode())))) == 0
            )
            return
        (download,) = points
        rows = list(csv.DictReader(io.StringIO(_decoded(download["href"]).decode())))
        assert {r["key"] for r in rows} == set(used)
        for row in rows:
            stored = store.get(row["key"]).metrics
            for metric in ("loss", "accuracy"):
                assert row[metric] == repr(stored[metric])  # full precision, the same float
            assert row["computed"] == str(used[row["key"]])
    finally:
        store.close()


def _has(text: str, sentence: str) -> None:
    assert sentence in text, f"{sentence!r} not in {text[:3000]!r}"


# --- running the example studies on tiny models -----------------------------------------------


def _zoo_file(folder: Path, name: str, task: str, runs: list[dict], base: Path, **extra) -> Path:
    path = folder / f"{name}.yaml"
    base_run = {"base": str(base), **TINY, **extra}
    data = {"name": name, "task": {"name": task, "split": "train", "subset": 64}, "base": base_run}
    path.write_text(yaml.safe_dump({**data, "runs": runs}))
    return path


def _run(example: str, overrides: list[str]) -> None:
    assert main(["run", str(EXAMPLES / example), *overrides]) == 0


def _seeds(prefix: str, n: int = 2) -> list[dict]:
    return [{"name": f"{prefix}-s{s}", "head_seed": s, "data_seed": s} for s in range(n)]


@pytest.fixture(scope="module")
def juneja(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("juneja")
    zoo = _zoo_file(tmp, "nli", "mnli_like", _seeds("nli", 3), tiny_models[0], save_steps=[1])
    _run(
        "juneja_basins.yaml",
        [
            f"out={tmp / 'out'}", f"steps.0.finetune.zoo_file={zoo}", "evaluation.subset=16",
            "evaluation.device=cpu", "evaluation.max_length=16", "steps.1.grid.points=3",
            "steps.2.basins.sharpness_steps=1", "steps.2.basins.sharpness_examples=8",
            "steps.2.basins.diagnostic=[hans_like_lexical_overlap_non_entailing]",
            "steps.3.trajectories.subset=16", "steps.3.trajectories.points=3",
        ],
    )  # fmt: skip
    return tmp / "out"


def test_juneja_basins_report(juneja):
    _, page = check_report(juneja)
    grid = np.load(juneja / "02-grid" / "grid.npz")
    names = json.loads((juneja / "02-grid" / "grid.json").read_text())["names"]
    barrier = grid["matrix_loss_barrier"]
    pairs = [(barrier[i, j], i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    above = sum(value > 0.1 for value, _, _ in pairs)
    top, i, j = max(pairs)
    text = _text(page.sections["02-grid"]["text"])
    _has(text, f"{above} of {len(pairs)} pairs have a loss barrier above 0.1")
    _has(text, f"the largest is {top:.3g} between {names[i]} and {names[j]}")
    basins = json.loads((juneja / "03-basins" / "basins.json").read_text())
    r = basins["margin_correlations"][basins["margin"]]["id_accuracy"]["pearson_r"]
    _has(_text(page.sections["03-basins"]["text"]), f"r = {r:.2g}")
    zoo_text = _text(page.sections["zoo"]["text"])
    assert "Checkpoints this step trained" in zoo_text
    _has(zoo_text, "This step trained 3 runs, saving 6 checkpoints.")  # 3 seeds x 2 saved steps
    # the grid's heatmaps are interactive, each with its PNG as the printed fallback
    figures = [a for tag, a in page.tags if tag == "div" and a.get("data-figure")]
    assert {"2: loss_barrier", "3: loss_convexity_gap by cluster"} <= {
        f["data-figure"] for f in figures
    }
    for figure in figures:
        assert re.fullmatch(r"height: \d+px", figure["style"])


@pytest.fixture(scope="module")
def qin(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qin")
    zoo = _zoo_file(tmp, "rt", "rotten_tomatoes", _seeds("rt"), tiny_models[0])
    small = ["points=3", "batch_size_train=4", "train_max_length=16", "steps=2"]
    _run(
        "qin_curve.yaml",
        [
            f"out={tmp / 'out'}", f"steps.0.finetune.zoo_file={zoo}", "evaluation.subset=8",
            "evaluation.device=cpu", "evaluation.max_length=16", "steps.1.interpolate.points=3",
            "steps.1.interpolate.anchors=[rt-s0, rt-s1]", "steps.2.curve.anchors=[rt-s0, rt-s1]",
            "steps.3.combine.anchors=[rt-s0, rt-s1]",
            *(f"steps.2.curve.{s}" for s in small), *(f"steps.3.combine.{s}" for s in small),
        ],
    )  # fmt: skip
    return tmp / "out"


def test_qin_curve_report(qin):
    _, page = check_report(qin)
    walk = json.loads((qin / "02-interpolate" / "path.json").read_text())
    barrier = walk["summary"]["loss"]["barrier_height"]
    drop = walk["summary"]["accuracy"]["barrier_height"]
    _has(
        _text(page.sections["02-interpolate"]["text"]),
        f"the loss barrier is {barrier:.3g}",
    )
    _has(_text(page.sections["02-interpolate"]["text"]), f"accuracy drops by {drop:.3g}")
    summary = json.loads((qin / "03-curve" / "curve-summary.json").read_text())
    _has(
        _text(page.sections["03-curve"]["text"]),
        f"The fitted curve's loss barrier is {summary['curve']['loss_barrier']:.3g}",
    )
    rows = json.loads((qin / "04-combine" / "combine.json").read_text())
    best = max(
        (r for r in rows if r["method"].startswith("learned")), key=lambda r: r["test"]["accuracy"]
    )
    _has(
        _text(page.sections["04-combine"]["text"]),
        f"The best learned mix, {best['method']}, reaches test accuracy "
        f"{best['test']['accuracy']:.3g}",
    )


@pytest.fixture(scope="module")
def gueta(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gueta")
    datasets = [("rt", "rotten_tomatoes", "sentiment"), ("amazon", "amazon", "sentiment"),
                ("tweets", "tweets", "sentiment"), ("nyt", "nyt_editorials", "sentiment"),
                ("bbc", "bbc_news", "news"), ("nli", "mnli_like", "nli")]  # fmt: skip
    base = tiny_models[0]
    overrides = [f"out={tmp / 'out'}"]
    for i, (name, task, family) in enumerate(datasets):
        zoo = _zoo_file(tmp, name, task, _seeds(name), base, tags={"family": family})
        overrides.append(f"steps.{i}.finetune.zoo_file={zoo}")
    for i, (name, task) in ((9, ("rtsize", "rotten_tomatoes")), (10, ("nlisize", "mnli_like"))):
        runs = [{"name": f"{name}-n{n}", "train_size": n} for n in (16, 32)]
        zoo = _zoo_file(tmp, name, task, runs, base, tags={"family": "x"})
        overrides.append(f"steps.{i}.finetune.zoo_file={zoo}")
    region = ["hull=2", "random=1", "probe_train=30", "probe_test=8", "max_length=16",
              "max_pairs=1", "extrapolation_steps=2", "reach=2", "radii=[0,1]", "device=cpu",
              "toward=[pretrained]", "progress=false"]  # fmt: skip
    fuse = ["steps=2", "few_shot=[8]", "full=false", "subset=8", "max_length=16", "seeds=[0]",
            "train_max_length=16", "batch_size_train=4", "device=cpu", "progress=false",
            "targets=[rotten_tomatoes, mnli_like]"]  # fmt: skip
    overrides += [f"steps.{i}.similarity.base={base}" for i in (6, 11)]
    overrides += [f"steps.7.region.base={base}", *(f"steps.7.region.{s}" for s in region)]
    overrides += [f"steps.8.fuse.base={base}", *(f"steps.8.fuse.{s}" for s in fuse)]
    _run("gueta_regions.yaml", overrides)
    return tmp / "out"


def test_gueta_regions_report(gueta):
    _, page = check_report(gueta)
    regions = json.loads((gueta / "08-region" / "regions.json").read_text())
    values = [r["pb_in_ex"] for r in regions["comparisons"] if r["level"] == "dataset"]
    _has(
        _text(page.sections["08-region"]["text"]),
        f"At the dataset level, PB(In, Ex) averages {sum(values) / len(values):.3g} over "
        f"{len(values)} groups",
    )
    similarity = json.loads((gueta / "07-similarity" / "similarity.json").read_text())
    accuracy = similarity["clusterings"]["dataset"]["accuracy"]
    _has(
        _text(page.sections["07-similarity"]["text"]),
        f"the tag 'dataset' with clustering accuracy {accuracy:.3g}",
    )
    gains = json.loads((gueta / "09-fuse" / "fuse.json").read_text())["gains"]
    mean = sum(g["gain"] for g in gains) / len(gains)
    _has(_text(page.sections["09-fuse"]["text"]), f"changes test accuracy by {mean:+.3g}")
    scatter = [a["data-figure"] for t, a in page.tags if t == "div" and a.get("data-figure")]
    assert "2: tsne dataset" in scatter or any("tsne dataset" in s for s in scatter)


@pytest.fixture(scope="module")
def knowledge(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("knowledge")
    rt = _zoo_file(
        tmp, "rt", "rotten_tomatoes", [{"name": "rt"}], tiny_models[0], dynamics_examples=16
    )
    amazon = _zoo_file(
        tmp, "amazon", "amazon", [{"name": "amazon"}], tiny_models[0], dynamics_examples=16
    )
    k = "steps.2.knowledge."
    _run(
        "knowledge.yaml",
        [f"out={tmp / 'out'}", f"steps.0.finetune.zoo_file={rt}",
         f"steps.1.finetune.zoo_file={amazon}", k + "steps=2", k + "device=cpu",
         k + "max_length=16", k + "progress=false"],
    )  # fmt: skip
    return tmp / "out"


def test_knowledge_report(knowledge):
    _, page = check_report(knowledge)
    result = json.loads((knowledge / "03-knowledge" / "knowledge.json").read_text())
    last = result["steps"][-1]
    _has(
        _text(page.sections["03-knowledge"]["text"]),
        f"source accuracy ends at {last['source_accuracy']:.3g}",
    )


@pytest.fixture(scope="module")
def pretraining(tokenizer_dir, tiny_csv, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pretraining")
    corpus = tmp / "corpus.txt"
    corpus.write_text("\n".join(generated_texts(64, seed=3)[0]))
    three = tmp / "three.csv"
    texts, _ = generated_texts(60, seed=4)
    three.write_text("text,label\n" + "".join(f"{t},{'xyz'[i % 3]}\n" for i, t in enumerate(texts)))
    p = "steps.0.pretrain."
    settings = {"tokenizer": tokenizer_dir, "text_source": corpus, "texts": 0, "steps": 2,
                "save_steps": "[0]", "hidden": 32, "layers": 2, "heads": 2, "max_length": 16,
                "batch_size": 8, "task_a": tiny_csv, "task_b": three, "finetune_steps": 2,
                "train_size": 0, "eval_size": 8, "probe_train": 40, "points": 3,
                "progress": "false"}  # fmt: skip
    _run("pretraining.yaml", [f"out={tmp / 'out'}", *(f"{p}{k}={v}" for k, v in settings.items())])
    return tmp / "out"


def test_pretraining_report(pretraining):
    _, page = check_report(pretraining)
    result = json.loads((pretraining / "01-pretrain" / "pretraining.json").read_text())
    first = result["checkpoints"][0]["same_task"]["loss_barrier"]
    _has(
        _text(page.sections["01-pretrain"]["text"]),
        f"finetuned copies is {first:.3g} from the checkpoint",
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    d = "steps.0.demo."
    small = ["steps=1", "batch_size=2", "train_max_length=8", "max_length=8", "eval_examples=4",
             "points=3", "progress=false"]  # fmt: skip
    _run("demo.yaml", [f"out={tmp / 'out'}", *(d + s for s in small)])
    return tmp / "out"


def test_demo_report(demo):
    _, page = check_report(demo)
    summary = json.loads((demo / "01-demo" / "summary.json").read_text())
    barrier = summary["pairs"]["data order"]["loss_barrier"]
    _has(_text(page.sections["01-demo"]["text"]), "Data order: Along the linear path")
    _has(_text(page.sections["01-demo"]["text"]), f"the loss barrier is {barrier:.3g}")


# --- names from users, and commands no example runs ------------------------------------------


@pytest.fixture(scope="module")
def hostile(tiny_models, tokenizer_dir, tiny_csv, tmp_path_factory):
    """A hand-written zoo whose model names and tags are HTML, studied by grid, similarity,
    plane, mean-path and interpolate (the commands the examples do not run)."""
    tmp = tmp_path_factory.mktemp("hostile")
    base = save_tiny_model(tmp / "base", 7, tokenizer_dir)
    names = [HOSTILE, "b&c", 'q"uote']
    families = [HOSTILE_TAG, HOSTILE_TAG, "plain"]
    zoo = tmp / "zoo.yaml"
    zoo.write_text(
        yaml.safe_dump(
            {"models": [{"name": n, "path": str(p), "tags": {"family": f}}
                        for n, p, f in zip(names, tiny_models, families, strict=True)]}
        )
    )  # fmt: skip
    study = tmp / "study.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "<b>hostile</b> study",
                "out": str(tmp / "out"),
                "zoo": zoo.name,  # relative to the study file (an absolute one is dropped)
                "evaluation": {
                    "task": str(tiny_csv),
                    "split": "all",
                    "subset": 8,
                    "max_length": 16,
                    "device": "cpu",
                },
                "steps": [
                    {"grid": {"points": 3}},
                    {"similarity": {"base": str(base), "by": ["family"], "k": 2}},
                    {"plane": {"anchors": names, "resolution": [3]}},
                    {"mean-path": {"pairs": [f"{HOSTILE}:b&c", f'{HOSTILE}:q"uote'], "points": 3}},
                    {"interpolate": {"anchors": [HOSTILE, "b&c"], "points": 3}},
                ],
            },
            sort_keys=False,
        )
    )
    assert main(["run", str(study)]) == 0
    return tmp / "out"


def test_names_from_users_show_as_text(hostile):
    html_text, page = check_report(hostile)
    assert "<script>alert" not in html_text and "<img src=x" not in html_text
    assert "<b>hostile" not in html_text
    visible = _text(page.text)
    assert HOSTILE in visible and HOSTILE_TAG in visible and "<b>hostile</b> study" in visible
    raw = [text for a, text in page.scripts if a.get("type") == "application/json"]
    assert all("<" not in text for text in raw)
    # in the figures, a name is an entity plotly shows as text, and its & is escaped in JSON
    assert any("\\u0026lt;script\\u0026gt;alert(1)" in text for text in raw)
    labels = json.dumps([json.loads(text) for text in raw])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in labels and "<script>" not in labels
    assert "&lt;img src=x onerror=alert(1)&gt;" in labels
    script_tags = [a for tag, a in page.tags if tag == "script"]
    assert len(script_tags) == 2 + len(raw)  # plotly.js, the page's script, the figures' data


def test_every_command_of_the_hostile_study_has_its_figures(hostile):
    _, page = check_report(hostile)
    figures = {a["data-figure"] for tag, a in page.tags if a.get("data-figure")}
    for wanted in ("1: loss_barrier", "2: tsne family", "3: plane loss", "4: mean loss", "5: path"):
        assert wanted in figures, sorted(figures)
    plane = np.load(hostile / "03-plane" / "plane.npz")
    loss = plane["surface_loss"]
    _has(
        _text(page.sections["03-plane"]["text"]),
        f"the loss ranges from {loss.min():.3g} to {loss.max():.3g}",
    )


def test_a_folder_without_runs_is_refused_with_what_to_do(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds no weightscape results" in err and "run.json" in err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_report_without_a_store_says_so(hostile, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(hostile / "01-grid", copy)
    missing = tmp_path / "none.sqlite"
    title = ["--title", "Grid <i>only</i>"]
    html_text, page = check_report(copy, "--store", str(missing), *title, points=False)
    assert "No results store was found" in _text(page.text)
    assert not missing.exists()  # read-only: never created
    assert "<title>Grid &lt;i&gt;only&lt;/i&gt;</title>" in html_text


def test_run_distance_is_drawn_from_its_files(tmp_path):
    """run-distance needs saved training steps, which no example keeps: its files, as the
    command writes them, are enough for the page."""
    step = tmp_path / "rd"
    step.mkdir()
    result = {"runs": ["a", "b"], "steps": [1, 2], "parameters": 10, "distance": [0.5, 1.25],
              "per_parameter": [0.1, 0.2], "cosine": [0.99, 0.9], "neurons": {}}  # fmt: skip
    (step / "run-distance.json").write_text(json.dumps(result))
    (step / "run-distance.csv").write_text("step,distance\n1,0.5\n2,1.25\n")
    run = {"id": "x", "command": "run-distance", "command_line": "weightscape run-distance a b",
           "study": None, "config": {"out": str(step)}, "started": "2025-01-01T00:00:00+00:00",
           "finished": "2025-01-01T00:00:01+00:00", "seconds": 1.0, "environment": {},
           "devices": [], "anchors": [], "tasks": [], "points": {"computed": 0, "reused": 0},
           "outputs": ["run-distance.json", "run-distance.csv"]}  # fmt: skip
    (step / "run.json").write_text(json.dumps(run))
    _, page = check_report(step)
    _has(_text(page.sections["."]["text"]), "a and b are 0.5 apart at step 1 and 1.25 at step 2")
    from weightscape.report.html import write_report

    assert write_report(step) == step / "report.html"  # what `weightscape run` calls


# --- the pages in a real browser --------------------------------------------------------------

STUDIES = ("juneja", "qin", "gueta", "knowledge", "pretraining", "demo", "hostile")
SCREENSHOTS = Path(__file__).parents[1] / "weightscape-out" / "report-screenshots"


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for every page (``make browser`` installs it)."""
    from browser import Browser

    session = Browser()
    yield session
    session.close()


@pytest.mark.parametrize("study", STUDIES)
def test_each_report_opens_from_disk_in_chromium(study, request, chromium):
    """No console error, no request leaves the page, every figure has a size, no planted script
    runs (an alert would fail the next browser call), and a full-page screenshot is kept."""
    from browser import describe

    out = request.getfixturevalue(study)
    page = out / "report.html"
    assert page.is_file()  # `weightscape run` ends by writing it
    visit = chromium.visit(page, screenshot=SCREENSHOTS / f"{study}.png")
    assert visit.errors == [], describe(visit)
    assert [r for r in visit.resources if not r.startswith(("data:", "blob:"))] == []
    assert visit.figures, "no figure elements on the page"
    empty = [f for f in visit.figures if not (f["width"] > 0 and f["height"] > 0)]
    assert empty == [], empty
    interactive = [f for f in visit.figures if f["kind"] == "div"]
    assert visit.plots == len(interactive) > 0  # every interactive figure was drawn by plotly
    assert all(f["ready"] == "yes" for f in visit.figures)
    assert not visit.pwned
    assert visit.screenshot is not None and visit.screenshot.stat().st_size > 10_000


def test_hostile_names_render_as_text_in_the_browser(hostile, chromium):
    visit = chromium.visit(hostile / "report.html")
    assert HOSTILE in visit.text and HOSTILE_TAG in visit.text
    assert "<b>hostile</b> study" in visit.text  # the study's name, shown with its tags
    assert any(HOSTILE in text for text in visit.svg_text)  # plotly's labels, as text too
    assert not visit.pwned and visit.errors == []
