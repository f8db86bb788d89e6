"""Task-vector similarity (Gueta et al. 2023): hand-computed cosines and distances, planted
clusters recovered, clustering accuracy under relabelling, embeddings, and the CLI end to end.

The zoos are hand-built: a base of a few small tensors saved as a bare encoder (names without
the ``bert.`` prefix, no head), and finetuned models that add chosen task vectors to it and carry
a classification head whose shape depends on their dataset, as real zoos do.
"""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from weightscape.analyses.similarity import (
    Similarity,
    analyse_similarity,
    cluster_by_tag,
    direction_distances,
    pca_embedding,
    task_vector_similarity,
    tsne_embedding,
)
from weightscape.cli.main import main
from weightscape.errors import WeightscapeError
from weightscape.metrics.clustering import clustering_accuracy, per_group_f1
from weightscape.models.checkpoint import Checkpoint

SHAPES = {"layer.weight": (4, 5), "layer.bias": (4,), "norm.weight": (6,)}  # 30 numbers
DIM = sum(int(np.prod(s)) for s in SHAPES.values())


def unflatten(vector: np.ndarray) -> dict[str, torch.Tensor]:
    """A flat vector of DIM numbers as the encoder's tensors."""
    out, start = {}, 0
    for name, shape in SHAPES.items():
        size = int(np.prod(shape))
        out[name] = torch.tensor(vector[start : start + size], dtype=torch.float32).reshape(shape)
        start += size
    return out


def save_base(folder, base: np.ndarray) -> Checkpoint:
    """The pretrained encoder: bare names, no head."""
    path = folder / "base.safetensors"
    save_file(unflatten(base), str(path))
    return Checkpoint.from_path(path, name="base")


def save_model(folder, name: str, weights: np.ndarray, tags: dict, labels: int = 2) -> Checkpoint:
    """A finetuned classifier: ``bert.``-prefixed encoder plus a head of ``labels`` rows."""
    tensors = {f"bert.{k}": v for k, v in unflatten(weights).items()}
    tensors["classifier.weight"] = torch.randn(labels, 6)
    tensors["position_ids"] = torch.arange(3)  # an integer buffer: no part of a task vector
    path = folder / f"{name}.safetensors"
    save_file(tensors, str(path))
    return Checkpoint.from_path(path, name=name, tags=tags)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """12 models, 4 per dataset a, b, c; a and b share a family direction, c has its own, so
    datasets form tight clusters and families looser ones. Lengths range from 0.5 to 4, so
    norm growth differs within a dataset."""
    folder = tmp_path_factory.mktemp("planted")
    rng = np.random.default_rng(0)
    base = rng.normal(size=DIM)
    family_x, family_y, *own = np.linalg.qr(rng.normal(size=(DIM, 5)))[0].T  # orthonormal
    directions = [family_x + 0.6 * own[0], family_x + 0.6 * own[1], family_y + 0.6 * own[2]]
    models, vectors = [], []
    for i in range(12):
        group = i // 4
        vector = rng.uniform(0.5, 4.0) * (directions[group] + 0.05 * rng.normal(size=DIM))
        tags = {"dataset": "abc"[group], "family": "x" if group < 2 else "y", "seed": i % 4}
        models.append(save_model(folder, f"m{i}", base + vector, tags, labels=2 + group))
        vectors.append(vector)
    return folder, save_base(folder, base), models, np.array(vectors)


def test_hand_made_task_vectors_give_hand_computed_cosines_and_distances(tmp_path):
    base = np.linspace(-1, 1, DIM)
    e1, e2 = np.eye(DIM)[0], np.eye(DIM)[7]
    steps = {"p": e1, "q": e2, "r": 2 * e1, "s": -e1 + e2}
    models = [
        save_model(tmp_path, n, base + v, {}, labels=2 + i)
        for i, (n, v) in enumerate(steps.items())
    ]
    similarity = task_vector_similarity(models, save_base(tmp_path, base))
    root2, root5 = np.sqrt(2), np.sqrt(5)
    expected_cosine = [
        [1, 0, 1, -1 / root2],
        [0, 1, 0, 1 / root2],
        [1, 0, 1, -1 / root2],
        [-1 / root2, 1 / root2, -1 / root2, 1],
    ]
    expected_euclidean = [
        [0, root2, 1, root5],
        [root2, 0, root5, 1],
        [1, root5, 0, np.sqrt(10)],
        [root5, 1, np.sqrt(10), 0],
    ]
    np.testing.assert_allclose(similarity.cosine, expected_cosine, atol=1e-6)
    np.testing.assert_allclose(similarity.euclidean, expected_euclidean, atol=1e-6)
    np.testing.assert_allclose(similarity.norms, [1, 1, 2, root2], atol=1e-6)
    assert similarity.space["preset"] == "no-head"  # heads of 2..5 rows were left out
    # Unit vectors e1, e2 are sqrt(2) apart; e1 and 2 e1 have one direction.
    np.testing.assert_allclose(
        direction_distances(similarity.cosine)[0, 1:3], [root2, 0], atol=1e-6
    )


def test_hf_folders_match_a_dense_reference(tiny_models):
    models = [Checkpoint.from_path(p) for p in tiny_models[1:]]
    similarity = task_vector_similarity(models, Checkpoint.from_path(tiny_models[0]))
    states = [load_file(p / "model.safetensors") for p in tiny_models]
    names = [n for n, t in states[0].items() if t.is_floating_point() and "classifier" not in n]
    vectors = [
        torch.cat([(s[n] - states[0][n]).double().reshape(-1) for n in names]).numpy()
        for s in states[1:]
    ]
    expected = (
        np.dot(vectors[0], vectors[1]) / np.linalg.norm(vectors[0]) / np.linalg.norm(vectors[1])
    )
    assert similarity.cosine[0, 1] == pytest.approx(expected, abs=1e-9)


def test_planted_clusters_are_recovered_by_cosine(planted):
    _, base, models, vectors = planted
    similarity = task_vector_similarity(models, base)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(similarity.cosine, unit @ unit.T, atol=1e-5)
    for tag, k in (("dataset", 3), ("family", 2)):
        clustering = cluster_by_tag(similarity, tag)
        assert clustering.k == k
        assert clustering.accuracy == 1.0
        assert set(clustering.f1.values()) == {1.0}


def test_clustering_accuracy_ignores_label_names():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 4, size=40)
    pred = rng.integers(0, 4, size=40)
    renamed = rng.permutation(4)[pred] + 10  # other names for the same partition
    assert clustering_accuracy(truth, renamed) == clustering_accuracy(truth, pred)
    assert per_group_f1(truth, renamed) == per_group_f1(truth, pred)


def test_clustering_accuracy_hand_case():
    truth = list("aaaabbbb")
    pred = [0, 0, 0, 1, 1, 1, 1, 0]  # best matching 0 -> a, 1 -> b: 3 + 3 of 8 agree
    assert clustering_accuracy(truth, pred) == 0.75
    assert clustering_accuracy(truth, [5, 5, 5, 7, 7, 7, 7, 5]) == 0.75
    # Each group: 3 true positives, 1 false positive, 1 false negative -> F1 = 6 / 8.
    assert per_group_f1(truth, pred) == {"a": 0.75, "b": 0.75}


def test_embeddings_are_finite_and_pca_of_collinear_vectors_is_one_dimensional(tmp_path, planted):
    _, base, models, _ = planted
    similarity = task_vector_similarity(models, base)
    for points in (tsne_embedding(similarity.distances()), pca_embedding(similarity.gram)):
        assert points.shape == (12, 2)
        assert np.isfinite(points).all()
    direction = np.random.default_rng(1).normal(size=DIM)
    line = [save_model(tmp_path, f"c{i}", c * direction, {}) for i, c in enumerate((1, 2, -1))]
    collinear = task_vector_similarity(line, save_base(tmp_path, np.zeros(DIM)))
    points = pca_embedding(collinear.gram)
    scale = np.linalg.norm(direction)
    np.testing.assert_allclose(points[:, 1], 0.0, atol=1e-6 * scale)
    # Centred scores along the line: c - mean(c) = (1, 2, -1) - 2/3, times |direction|.
    np.testing.assert_allclose(
        np.abs(points[:, 0]), np.abs([1 / 3, 4 / 3, -5 / 3]) * scale, rtol=1e-5
    )


def test_analysis_round_trips_through_files(tmp_path, planted):
    _, base, models, _ = planted
    similarity = analyse_similarity(models, base, by=("dataset", "seed"))
    loaded = Similarity.load(similarity.save(tmp_path / "out"))
    np.testing.assert_array_equal(loaded.gram, similarity.gram)
    np.testing.assert_array_equal(loaded.embeddings["tsne"], similarity.embeddings["tsne"])
    assert loaded.names == similarity.names and loaded.tags == similarity.tags
    assert loaded.clusterings["seed"].truth == ["0", "1", "2", "3"] * 3
    np.testing.assert_array_equal(
        loaded.clusterings["dataset"].labels, similarity.clusterings["dataset"].labels
    )


def test_errors_name_the_problem(tmp_path, planted):
    _, base, models, _ = planted
    with pytest.raises(WeightscapeError, match=r"Unknown tag 'datset'\. Did you mean 'dataset'"):
        analyse_similarity(models, base, by=("datset",))
    untagged = [*models[:2], Checkpoint.from_path(models[2].path, name="bare")]
    with pytest.raises(WeightscapeError, match="bare have no tag 'dataset'"):
        analyse_similarity(untagged, base)
    with pytest.raises(WeightscapeError, match="same 'family'"):
        cluster_by_tag(task_vector_similarity(models[:4], base), "family")
    zero = save_model(tmp_path, "zero", np.zeros(DIM), {"dataset": "z"})
    flat = task_vector_similarity([models[0], zero], save_base(tmp_path, np.zeros(DIM)))
    with pytest.raises(WeightscapeError, match="task vectors of zero are zero"):
        flat.distances("cosine")


def write_zoo(folder, base, models) -> object:
    manifest = {
        "base": str(base.path),
        "models": [{"name": m.name, "path": str(m.path), "tags": m.tags} for m in models],
    }
    path = folder / "zoo.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def test_cli_writes_matrices_plots_and_summary(tmp_path, planted, capsys):
    _, base, models, _ = planted
    out = tmp_path / "out"
    zoo = write_zoo(tmp_path, base, models)
    assert (
        main(
            [
                "similarity",
                "--zoo",
                str(zoo),
                "--by",
                "dataset",
                "--by",
                "family",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "dataset: k=3, clustering accuracy 1.000" in printed
    assert "family: k=2, clustering accuracy 1.000" in printed
    for name in (
        "similarity.npz",
        "similarity.json",
        "cosine.csv",
        "euclidean.csv",
        "cosine.png",
        "euclidean.png",
        "tsne-dataset.png",
        "pca-family.png",
        "models.csv",
        "clustering.csv",
        "summary.md",
    ):
        assert (out / name).is_file(), name
    cosine = np.loadtxt(out / "cosine.csv", delimiter=",", skiprows=1, usecols=range(1, 13))
    assert cosine.shape == (12, 12) and np.isfinite(cosine).all()
    assert "| dataset | 3 | cosine | 1.000 |" in (out / "summary.md").read_text()


def test_cli_bad_tag_exits_2_and_lists_tags(tmp_path, planted, capsys):
    _, base, models, _ = planted
    zoo = write_zoo(tmp_path, base, models)
    code = main(["similarity", "--zoo", str(zoo), "--by", "size", "--out", str(tmp_path / "o")])
    error = capsys.readouterr().err
    assert code == 2
    assert "Unknown tag 'size'" in error
    assert "Available: dataset, family, seed." in error
    assert not (tmp_path / "o").exists()


def test_cli_takes_one_source_of_models(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["similarity", "--zoo", "z.yaml", "--models", "m*", "--out", str(out)]) == 2
    assert "give one of --zoo, --models, not both" in capsys.readouterr().err
    assert main(["similarity", "--zoo", "z.yaml", "--k", "1", "--out", str(out)]) == 2
    assert "--k: Input should be greater than or equal to 2. Got '1'." in capsys.readouterr().err
    assert main(["similarity", "--out", str(out)]) == 2
    assert "Give the models: --zoo" in capsys.readouterr().err
    assert not out.exists()


def test_by_is_repeated_once_each():
    from weightscape.studies.similarity import Config

    assert Config().by == ("dataset",)
    assert Config(by=["family", "dataset", "family"]).by == ("family", "dataset")


def test_help_imports_no_torch():
    code = (
        "import sys; from weightscape.cli.main import build_parser; build_parser('similarity'); "
        "print(sorted(m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_per_model_bases_give_hand_computed_cosines_and_distances(tmp_path):
    """Two bases far apart; each model's task vector is planted about its own base."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    base_a, base_b = np.linspace(-1, 1, DIM), 5.0 + np.cos(np.arange(DIM))
    e1, e2 = np.eye(DIM)[0], np.eye(DIM)[7]
    planted = {"p": (base_a, e1), "q": (base_a, e2), "r": (base_b, 2 * e1), "s": (base_b, e2 - e1)}
    models = [
        save_model(tmp_path, n, b + v, {"base": "a" if b is base_a else "b"})
        for n, (b, v) in planted.items()
    ]
    a, b = save_base(one, base_a), save_base(two, base_b)
    similarity = task_vector_similarity(models, [a, a, b, b])
    root2 = np.sqrt(2)
    expected_cosine = [  # of e1, e2, 2 e1, e2 - e1
        [1, 0, 1, -1 / root2],
        [0, 1, 0, 1 / root2],
        [1, 0, 1, -1 / root2],
        [-1 / root2, 1 / root2, -1 / root2, 1],
    ]
    np.testing.assert_allclose(similarity.cosine, expected_cosine, atol=1e-6)
    np.testing.assert_allclose(similarity.norms, [1, 1, 2, root2], atol=1e-6)
    # |e1 - 2 e1| = 1: distances between task vectors, not between the models' weights.
    assert similarity.euclidean[0, 2] == pytest.approx(1.0, abs=1e-6)
    assert similarity.base == f"per model: {a.path}, {b.path}"
    with pytest.raises(WeightscapeError, match=r"one per model \(4\)\. Got 2 instead"):
        task_vector_similarity(models, [a, b])


@pytest.fixture
def untagged_zoo(tmp_path, planted):
    """Datasets a and c of the planted zoo (4 models each, far apart in direction), saved in a
    manifest with no tags at all; the expected partition is the planted one."""
    _, base, models, _ = planted
    chosen = [*models[:4], *models[8:]]
    bare = [Checkpoint.from_path(m.path, name=m.name) for m in chosen]
    assert all(not m.tags for m in bare)
    return write_zoo(tmp_path, base, bare)


def test_untagged_zoo_is_clustered_by_k_and_scored_against_nothing(tmp_path, untagged_zoo, capsys):
    zoo = untagged_zoo
    out = tmp_path / "out"
    assert main(["similarity", "--zoo", str(zoo), "--k", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "k=2 clusters (cosine): {m0, m1, m2, m3} {m8, m9, m10, m11}" in printed
    assert "clustering accuracy" not in printed
    result = Similarity.load(out)
    assert result.clusterings == {}
    assert result.clusters.k == 2
    assert result.clusters.labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert set(result.embeddings) == {"tsne", "pca"}
    assert np.isfinite(result.embeddings["tsne"]).all() and result.cosine.shape == (8, 8)
    for name in ("cosine.png", "euclidean.png", "tsne.png", "pca.png", "models.csv"):
        assert (out / name).is_file(), name
    with (out / "models.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["cluster"] for r in rows] == ["0"] * 4 + ["1"] * 4
    summary = (out / "summary.md").read_text()
    assert "No tags to score the clusters against." in summary
    assert "- cluster 1: m8, m9, m10, m11" in summary
    assert "accuracy" not in summary
    # The HTML report reads the clusters: a sentence and scatters coloured by cluster.
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "fall into 2 clusters of 4, 4 models (no tags to score them against)" in html
    assert "t-SNE of task vectors, coloured by cluster" in html


@pytest.mark.parametrize(
    ("k", "message"),
    [
        ("0", "--k: Input should be greater than or equal to 2. Got '0'."),
        ("1", "--k: Input should be greater than or equal to 2. Got '1'."),
        ("9", "--k: 9 clusters of 8 models; give --k from 2 to 8."),
        (None, "--k: the 8 models have no tags"),
    ],
)
def test_bad_or_missing_k_exits_2_naming_k(tmp_path, untagged_zoo, capsys, k, message):
    zoo = untagged_zoo
    out = tmp_path / "o"
    argv = ["similarity", "--zoo", str(zoo), "--out", str(out)]
    assert main(argv + (["--k", k] if k is not None else [])) == 2
    error = capsys.readouterr().err
    assert message in error
    assert "Traceback" not in error
    assert not out.exists()


def test_explicit_by_on_an_untagged_zoo_still_names_the_missing_tags(
    tmp_path, untagged_zoo, capsys
):
    zoo = untagged_zoo
    argv = ["similarity", "--zoo", str(zoo), "--by", "dataset", "--k", "2"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert "the models have no tags" in capsys.readouterr().err


def test_k_with_tags_scores_the_same_partition_it_keeps(planted):
    _, base, models, _ = planted
    result = analyse_similarity(models, base, by=("dataset", "family"), k=3)
    assert result.clusterings["dataset"].k == result.clusterings["family"].k == 3
    assert result.clusterings["dataset"].accuracy == 1.0  # k = 3 is the datasets' number
    truth = [0] * 4 + [1] * 4 + [2] * 4
    assert result.clusters.labels.tolist() == truth
    assert result.clusters.labels.tolist() == result.clusterings["dataset"].labels.tolist()
    with pytest.raises(
        WeightscapeError, match=r"'k' parameter .* from 2 to the number of models, 12\."
    ):
        analyse_similarity(models, base, k=13)
    with pytest.raises(WeightscapeError, match="pass k"):
        analyse_similarity(models, base, by=())


def test_reading_says_how_the_untagged_clusters_split():
    from weightscape.report.html.reading import similarity

    result = {
        "names": ["a", "b", "c"],
        "clusterings": {},
        "clusters": {"k": 2, "labels": [0, 1, 0]},
    }
    assert similarity(result) == [
        "The 3 task vectors fall into 2 clusters of 2, 1 models (no tags to score them against)."
    ]
