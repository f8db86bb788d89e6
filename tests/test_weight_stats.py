"""Streamed Gram matrices, distances and centroid distances against dense numpy references.

The checkpoints are hand-built state dicts of a few small tensors (a matrix, a vector, a scalar
and an integer buffer that must be ignored), saved as bare safetensors files.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from safetensors.torch import save_file

from weightscape.analyses.weight_stats import (
    centroid_distances,
    centroid_distances_from_gram,
    centroid_margin,
    cosine_similarities,
    euclidean_distances,
    gram_matrix,
)
from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace

N_MODELS = 5
FLOAT_NAMES = ("layer.weight", "layer.bias", "scale")


def state_dict(seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "layer.weight": torch.randn(7, 3, generator=generator),
        "layer.bias": torch.randn(7, generator=generator),
        "scale": torch.randn((), generator=generator),
        "position_ids": torch.arange(4),  # an integer buffer: not a weight
    }


def save(folder, name: str, tensors: dict[str, torch.Tensor]) -> Checkpoint:
    path = folder / f"{name}.safetensors"
    save_file(tensors, str(path))
    return Checkpoint.from_path(path)


def flat(tensors: dict[str, torch.Tensor], names=FLOAT_NAMES) -> np.ndarray:
    return np.concatenate([tensors[n].double().numpy().reshape(-1) for n in names])


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Five checkpoints and a base, with their flattened float weights for dense references."""
    folder = tmp_path_factory.mktemp("weights")
    states = [state_dict(seed) for seed in range(N_MODELS)]
    checkpoints = [save(folder, f"m{i}", s) for i, s in enumerate(states)]
    base_state = state_dict(100)
    base = save(folder, "base", base_state)
    dense = np.stack([flat(s) for s in states])
    return checkpoints, base, dense, flat(base_state), states


def test_gram_matches_dense_reference(zoo):
    checkpoints, base, dense, base_vector, _ = zoo
    np.testing.assert_allclose(gram_matrix(checkpoints), dense @ dense.T, rtol=1e-12)
    task = dense - base_vector
    np.testing.assert_allclose(gram_matrix(checkpoints, base=base), task @ task.T, rtol=1e-12)


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 1000])
def test_gram_is_the_same_with_any_chunking(zoo, chunk_rows):
    checkpoints, base, *_ = zoo
    whole = gram_matrix(checkpoints, base=base)
    chunked = gram_matrix(checkpoints, base=base, chunk_rows=chunk_rows)
    np.testing.assert_allclose(chunked, whole, rtol=1e-13, atol=1e-13)


def test_gram_follows_the_parameter_space(zoo):
    checkpoints, _, _, _, states = zoo
    biases = np.stack([flat(s, ["layer.bias"]) for s in states])
    gram = gram_matrix(checkpoints, ParameterSpace(preset="biases"))
    np.testing.assert_allclose(gram, biases @ biases.T, rtol=1e-12)


def test_gram_of_bf16_and_torch_pickles(tmp_path, zoo):
    _, _, _, _, states = zoo
    low = [{k: v.bfloat16() if v.is_floating_point() else v for k, v in s.items()} for s in states]
    checkpoints = [save(tmp_path, f"b{i}", s) for i, s in enumerate(low[:2])]
    torch.save(states[2], tmp_path / "p.pt")
    checkpoints.append(Checkpoint.from_path(tmp_path / "p.pt"))
    dense = np.stack([flat(low[0]), flat(low[1]), flat(states[2])])
    np.testing.assert_allclose(gram_matrix(checkpoints), dense @ dense.T, rtol=1e-12)


def test_gram_names_the_checkpoint_that_does_not_fit(tmp_path, zoo):
    checkpoints, *_ = zoo
    short = save(tmp_path, "short", {"layer.weight": torch.zeros(7, 3)})
    with pytest.raises(WeightscapeError, match=r"Checkpoint 'short' lacks \['layer.bias'"):
        gram_matrix([*checkpoints[:2], short])
    wide = state_dict(0) | {"layer.bias": torch.zeros(8)}
    with pytest.raises(WeightscapeError, match=r"'wide' has other shapes for \['layer.bias'\]"):
        gram_matrix([checkpoints[0], save(tmp_path, "wide", wide)])
    with pytest.raises(WeightscapeError, match="'chunk_rows' parameter of gram_matrix"):
        gram_matrix(checkpoints, chunk_rows=0)


def test_distances_do_not_depend_on_the_base(zoo):
    checkpoints, base, dense, *_ = zoo
    brute = np.linalg.norm(dense[:, None, :] - dense[None, :, :], axis=-1)
    raw = euclidean_distances(gram_matrix(checkpoints))
    task = euclidean_distances(gram_matrix(checkpoints, base=base))
    np.testing.assert_allclose(raw, brute, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(task, brute, rtol=1e-10, atol=1e-12)
    assert np.all(np.diag(raw) == 0)


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, (4, 3), elements=st.floats(-10, 10)),
    arrays(np.float64, (3,), elements=st.floats(-10, 10)),
)
def test_distances_from_gram_are_translation_invariant(points, shift):
    moved = points - shift
    np.testing.assert_allclose(
        euclidean_distances(moved @ moved.T),
        euclidean_distances(points @ points.T),
        atol=1e-5,
    )


def test_cosine_similarities_hand_case_and_zero_norm():
    # Vectors (1, 0), (1, 1), (0, 0): cos = 1/sqrt(2); the zero vector has no direction.
    vectors = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    cosines = cosine_similarities(vectors @ vectors.T)
    assert cosines[0, 1] == pytest.approx(2**-0.5) and cosines[1, 1] == 1.0
    assert np.isnan(cosines[2]).all() and np.isnan(cosines[:, 2]).all()


@pytest.mark.parametrize("labels", [[0, 0, 1, 1, 1], [2, 0, 1, 0, 2]])
def test_centroid_distances_match_explicit_centroids(zoo, labels):
    checkpoints, base, dense, *_ = zoo
    labels = np.array(labels)
    centroids = np.stack([dense[labels == c].mean(axis=0) for c in np.unique(labels)])
    brute = np.linalg.norm(dense[:, None, :] - centroids[None, :, :], axis=-1)
    np.testing.assert_allclose(centroid_distances(checkpoints, labels), brute, rtol=1e-10)
    with_base = centroid_distances(checkpoints, labels, base=base)
    np.testing.assert_allclose(with_base, brute, rtol=1e-10)


def test_centroid_distances_reject_labels_of_the_wrong_length():
    with pytest.raises(WeightscapeError, match=r"one label per model \(2\)"):
        centroid_distances_from_gram(np.eye(2), [0, 1, 1])


def test_centroid_margin_two_and_three_clusters():
    two = np.array([[1.0, 3.0], [2.0, 2.0], [4.0, 1.0]])
    np.testing.assert_array_equal(centroid_margin(two), two[:, 0] - two[:, 1])  # Juneja Fig. 3a
    three = np.array([[1.0, 3.0, 2.0], [5.0, 4.0, 1.0]])
    np.testing.assert_array_equal(centroid_margin(three, cluster=1), [2.0, 3.0])
    np.testing.assert_array_equal(centroid_margin(three, cluster=0), [-1.0, 4.0])
    with pytest.raises(WeightscapeError, match=r"'cluster' in \[0, k - 1\]"):
        centroid_margin(three, cluster=3)


def test_gram_of_hugging_face_model_folders(tiny_models):
    from safetensors.torch import load_file

    space = ParameterSpace(preset="no-head")
    states = [load_file(str(folder / "model.safetensors")) for folder in tiny_models]
    names = [n for n in space.select(states[0]) if states[0][n].is_floating_point()]
    dense = np.stack([flat(s, names) for s in states])
    checkpoints = [Checkpoint.from_path(folder) for folder in tiny_models]
    np.testing.assert_allclose(gram_matrix(checkpoints, space), dense @ dense.T, rtol=1e-10)


def test_task_vectors_against_a_bare_base_model(tiny_models, tmp_path):
    """A pretrained encoder saved as BertModel has no 'bert.' prefix and no head: task vectors
    map the names and leave the head out."""
    from safetensors.torch import load_file, save_file

    from weightscape.analyses.weight_stats import gram_matrix
    from weightscape.models.checkpoint import Checkpoint

    full = load_file(tiny_models[0] / "model.safetensors")
    bare = {k.removeprefix("bert."): v for k, v in full.items() if k.startswith("bert.")}
    save_file(bare, str(tmp_path / "base.safetensors"))
    base = Checkpoint.from_path(tmp_path / "base.safetensors")
    models = [Checkpoint.from_path(p) for p in tiny_models[1:]]
    gram = gram_matrix(models, base=base, skip_missing_in_base=True)
    states = [load_file(p / "model.safetensors") for p in tiny_models[1:]]
    vectors = [
        torch.cat(
            [
                (s[k].double() - full[k].double()).flatten()
                for k in sorted(full)
                if k.startswith("bert.") and s[k].is_floating_point()
            ]
        )
        for s in states
    ]
    expected = torch.stack(vectors) @ torch.stack(vectors).T
    np.testing.assert_allclose(gram, expected.numpy(), rtol=1e-10)
    with pytest.raises(WeightscapeError, match="lacks"):
        gram_matrix(models, base=base)  # the head has no pretrained counterpart


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, (6, 4), elements=st.floats(-10, 10)),
    st.lists(st.integers(0, 2), min_size=6, max_size=6),
)
def test_centroid_distances_from_distances_match_the_gram_route(points, labels):
    """Centroid distances from pairwise distances alone equal those from inner products."""
    from weightscape.analyses.weight_stats import (
        centroid_distances_from_distances,
        centroid_distances_from_gram,
    )

    gram = points @ points.T
    pairwise = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(
        centroid_distances_from_distances(pairwise, labels),
        centroid_distances_from_gram(gram, labels),
        atol=1e-6,
    )
