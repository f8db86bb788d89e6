"""Learned mixes and fitted curves on T5, BART and a bare base beside its classifier.

The mixers (``weightscape.training``) read their anchors as the engine does: T5's and BART's token
table is one tensor saved under one name (``shared``) and used under three, and a bare pretrained
``BertModel`` is read under its classifier's names and takes that classifier's head. Checked three
ways: a mixer with coefficients or control points set by hand equals the combination computed
here from the anchors' files, with the names resolved here by hand; the model run with a mixer's
weights gives the logits of a plain transformers model loaded with that combination; and the
learned mix or fitted curve written by the engine is the mixer's own weights, tensor by tensor.
The ``combine`` and ``curve`` commands then run end to end on each pair.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch

from conftest import LABEL_NAMES
from test_families import LABELS, TEXTS, _base_and_classifiers, save_family
from weightscape.data import make_task
from weightscape.evaluation.engine import Engine
from weightscape.geometry import get_path
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace, group_of
from weightscape.training.curve_fit import CurveMixer, save_controls
from weightscape.training.learned_mix import GroupMixer
from weightscape.training.mixing import (
    MixTraining,
    PairSetup,
    functional_model,
    prepare_pair,
    train_mixer,
)

PAIRS = ("t5", "bart", "base-first", "base-second")
HEAD = "classifier."  # the tiny BERT classifier's head, which a bare base borrows


@pytest.fixture(scope="module")
def task():
    return make_task("families", TEXTS, LABELS, LABEL_NAMES[2])


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, tokenizer_dir):
    """pair name -> (a, b): two T5 or BART classifiers, or a bare BERT base and a classifier
    finetuned from it, in either order; built on first use."""
    built: dict[str, tuple[Checkpoint, Checkpoint]] = {}

    def get(name: str) -> tuple[Checkpoint, Checkpoint]:
        if name not in built:
            root = tmp_path_factory.mktemp(name)
            if name.startswith("base"):
                base, ft, _ = _base_and_classifiers(root, tokenizer_dir)
                built[name] = (base, ft) if name == "base-first" else (ft, base)
            else:
                built[name] = tuple(
                    save_family(name, root / f"s{s}", s, tokenizer_dir) for s in (0, 1)
                )
        return built[name]

    return get


@functools.cache
def _file(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """The checkpoint's safetensors file, as saved (read once; never modified by the tests)."""
    from safetensors.torch import load_file

    return load_file(str(checkpoint.path / "model.safetensors"))


def _classifier(a: Checkpoint, b: Checkpoint) -> Checkpoint:
    """The one of the pair that has a head (both for T5 and BART: then ``a``)."""
    return b if "classifier.weight" not in _file(a) and "classifier.weight" in _file(b) else a


def by_hand(a: Checkpoint, b: Checkpoint, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The two anchors' tensors for the model's ``name``, resolved here without the aliases
    module: the file's own tensor; else the token table saved as ``*shared.weight`` for an
    ``embed_tokens`` name; else a bare base's tensor saved without ``bert.``; else, for the
    head, the classifier's."""
    donor = _file(_classifier(a, b))

    def one(checkpoint: Checkpoint) -> torch.Tensor:
        tensors = _file(checkpoint)
        if name in tensors:
            return tensors[name]
        table = [k for k in tensors if k.endswith("shared.weight")]
        if name.endswith("embed_tokens.weight") and len(table) == 1:
            return tensors[table[0]]
        if name.startswith("bert.") and name.removeprefix("bert.") in tensors:
            return tensors[name.removeprefix("bert.")]
        if name.startswith(HEAD):
            return donor[name]
        raise KeyError(f"{checkpoint.name} has no tensor for {name}")

    return one(a).float(), one(b).float()


def _setup(a: Checkpoint, b: Checkpoint, task) -> PairSetup:
    return prepare_pair(a, b, task, ParameterSpace(), batch_size=4, max_length=32, seed=0)


def _inputs(setup: PairSetup) -> dict[str, torch.Tensor]:
    inputs, _ = next(setup.batches)
    return inputs


def _plain_logits(
    classifier: Checkpoint, state: dict[str, torch.Tensor], inputs: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Logits of the classifier's folder loaded with plain transformers, every floating tensor
    of its state dict (tied names each) replaced by ``state``'s."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        str(classifier.path), local_files_only=True, trust_remote_code=False
    ).eval()
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                value.copy_(state[key])
        return model(**inputs).logits


def _floating_names(setup: PairSetup) -> list[str]:
    return [n for n, t in setup.model.state_dict().items() if t.is_floating_point()]


def _names_are_resolved(name: str, a: Checkpoint, b: Checkpoint, setup: PairSetup) -> None:
    """The pair really has model names its files lack (T5/BART's tied tables, a base's names),
    so the test exercises the views."""
    names = _floating_names(setup)
    missing = [n for n in names if n not in _file(a) or n not in _file(b)]
    assert missing
    if name in ("t5", "bart"):
        tied = [n for n in names if n.endswith("embed_tokens.weight")]
        assert len(tied) == 2 and set(tied) <= set(missing)
        assert all(setup.anchors.primary[n].endswith("shared.weight") for n in tied)


@pytest.mark.parametrize("name", PAIRS)
def test_fixed_mix_is_the_hand_computed_combination(name, pairs, task):
    """Per-layer coefficients set by hand: every tensor of the model (each tied name, a base's
    un-prefixed names and borrowed head) is alpha_g * A + (1 - alpha_g) * B of the files, and
    the model run with the mix gives plain transformers' logits for that combination."""
    a, b = pairs(name)
    setup = _setup(a, b, task)
    _names_are_resolved(name, a, b, setup)
    mixer = GroupMixer(setup.anchors, "layer", 0.0)
    with torch.no_grad():
        mixer.logits.copy_(torch.linspace(-2.0, 3.0, len(mixer.groups)))
    alpha = dict(zip(mixer.groups, torch.sigmoid(mixer.logits.detach()), strict=True))
    weights = mixer.weights()
    expected = {}
    for n in _floating_names(setup):
        ta, tb = by_hand(a, b, n)
        g = alpha[group_of(n, "layer")]
        expected[n] = g * ta + (1 - g) * tb
        torch.testing.assert_close(
            weights[setup.anchors.primary[n]], expected[n], rtol=1e-6, atol=1e-7, msg=n
        )
    if name.startswith("base"):  # the head is the classifier's, whatever the coefficients
        head = by_hand(a, b, "classifier.weight")[0]
        torch.testing.assert_close(weights["classifier.weight"], head, rtol=1e-6, atol=1e-7)
    inputs = _inputs(setup)
    with torch.no_grad():
        mixed = functional_model(setup.model, weights, setup.anchors.outside)(**inputs).logits
    plain = _plain_logits(_classifier(a, b), expected, inputs)
    torch.testing.assert_close(mixed, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", PAIRS)
def test_fixed_curve_is_the_hand_computed_bezier(name, pairs, task, tmp_path):
    """A control point set by hand: the curve at t is (1-t)^2 A + 2t(1-t) C + t^2 B of the
    files (a base's head: the classifier's at every t); the saved control holds C once per
    tensor, and, beside a bare base, is a bare base itself (no head, the base's config)."""
    a, b = pairs(name)
    setup = _setup(a, b, task)
    mixer = CurveMixer(setup.anchors, "bezier", 1)
    own = dict(zip(mixer.trained, mixer.controls[0], strict=True))
    control = {}
    with torch.no_grad():
        for n in _floating_names(setup):
            ta, tb = by_hand(a, b, n)
            primary = setup.anchors.primary[n]
            control[n] = ta if primary not in own else 0.25 * ta + 0.75 * tb + 0.01
            if primary == n and n in own:
                own[n].copy_(control[n])
    t = 0.3
    weights = mixer.weights(t)
    for n in _floating_names(setup):
        ta, tb = by_hand(a, b, n)
        expected = (1 - t) ** 2 * ta + 2 * t * (1 - t) * control[n] + t**2 * tb
        torch.testing.assert_close(
            weights[setup.anchors.primary[n]], expected, rtol=1e-5, atol=1e-6, msg=n
        )

    (saved,) = save_controls(mixer, a, tmp_path)
    tensors = _file(saved)
    assert not any(n.endswith("embed_tokens.weight") for n in tensors)  # one name per tensor
    for n in _floating_names(setup):
        if n in tensors:
            torch.testing.assert_close(tensors[n], control[n], rtol=1e-6, atol=1e-7, msg=n)
    architectures = json.loads((saved.path / "config.json").read_text())["architectures"]
    if name.startswith("base"):
        assert not any(n.startswith(HEAD) for n in tensors)
        assert architectures == ["BertModel"]
    else:
        assert architectures == json.loads((a.path / "config.json").read_text())["architectures"]


def _engine_state(engine: Engine) -> dict[str, torch.Tensor]:
    return {n: t.float() for n, t in engine.working.state.items()}


def _assert_engine_wrote(engine: Engine, setup: PairSetup, weights: dict[str, torch.Tensor]):
    """Every floating tensor the engine wrote (each tied name) is the mixer's."""
    written = _engine_state(engine)
    everything = {**setup.anchors.outside, **weights}
    for n in _floating_names(setup):
        torch.testing.assert_close(
            written[n], everything[setup.anchors.primary[n]].detach(), rtol=1e-6, atol=1e-7, msg=n
        )


@pytest.mark.parametrize("name", PAIRS)
def test_learned_mix_written_by_the_engine_is_the_mixers(name, pairs, task):
    """A few steps of a per-matrix mix, then its point written by the engine: the working model
    holds the mixer's weights (the point's coefficients are the mixer's alphas)."""
    a, b = pairs(name)
    setup = _setup(a, b, task)
    mixer = GroupMixer(setup.anchors, "matrix", 0.0)
    train_mixer(setup.model, mixer, setup.anchors, setup.batches, MixTraining(steps=3, lr=0.5))
    assert mixer.logits.detach().abs().max() > 0.1  # it trained: the alphas left 0.5
    engine = Engine([a, b], task, device="cpu")
    point = mixer.point()
    engine.working.write(engine.anchors, point, engine.space)
    with torch.no_grad():
        _assert_engine_wrote(engine, setup, mixer.weights())


@pytest.mark.parametrize("name", PAIRS)
def test_fitted_curve_written_by_the_engine_is_the_mixers(name, pairs, task, tmp_path):
    """A few steps of a Bezier fit, its control saved: the engine's curve over
    (a, control, b) holds the mixer's weights at t, and starts and ends at the line's ends."""
    a, b = pairs(name)
    setup = _setup(a, b, task)
    mixer = CurveMixer(setup.anchors, "bezier", 1)
    before = [p.detach().clone() for p in mixer.controls[0]]
    train_mixer(setup.model, mixer, setup.anchors, setup.batches, MixTraining(steps=3, lr=1e-2))
    assert any(not torch.equal(p, q) for p, q in zip(mixer.controls[0], before, strict=True))
    anchors = [a, *save_controls(mixer, a, tmp_path), b]
    curve = Engine(anchors, task, device="cpu")
    line = Engine([a, b], task, device="cpu")
    bezier = get_path("bezier", 3)
    for t in (0.0, 0.4, 1.0):
        curve.working.write(curve.anchors, bezier.coefficients([t])[0], curve.space)
        with torch.no_grad():
            _assert_engine_wrote(curve, setup, mixer.weights(t))
    for t in (0.0, 1.0):
        at_curve = curve.evaluate(bezier.coefficients([t])[0]).losses
        assert (at_curve == line.evaluate([1.0 - t, t]).losses).all()


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("command", ["combine", "curve"])
def test_commands_run_on_the_pair(command, name, pairs, tiny_csv, tmp_path, capsys):
    """``weightscape combine`` and ``weightscape curve`` train and walk each pair."""
    from weightscape.cli.main import main

    a, b = pairs(name)
    extra = ["--group-by", "layer"] if command == "combine" else ["--eval-every", "2"]
    argv = [command, str(a.path), str(b.path), "--task", str(tiny_csv), "--steps", "2"]
    argv += ["--points", "3", "--subset", "8", "--batch-size-train", "4", "--max-length", "32"]
    argv += ["--train-max-length", "16", "--out", str(tmp_path), "--no-progress"]
    assert main([*argv, "--device", "cpu", *extra]) == 0, capsys.readouterr().err
    table_file = "curve-table.json" if command == "curve" else "combine.json"
    table = json.loads((tmp_path / table_file).read_text())
    assert len(table) == 3 and all("test" in row for row in table)
    if command == "curve":
        line = json.loads((tmp_path / "path-line.json").read_text())
        curve = json.loads((tmp_path / "path-curve.json").read_text())
        for end in (0, -1):  # the fitted curve starts and ends where the line does
            assert curve["points"][end]["metrics"] == line["points"][end]["metrics"]
        assert Path(tmp_path / "curve" / "control-1" / "model.safetensors").is_file()
