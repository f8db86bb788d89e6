"""Epsilon-sharpness on losses whose maximum over the box is worked out by hand.

For a loss that is convex in the weights the maximum over the box
C = {z : |z_i| <= eps (|w_i| + 1)} lies at a corner:

* separable quadratic f(w) = 1/2 sum a_i w_i^2 (a_i > 0): each term grows with |w_i + z_i|, so
  z_i = sign(w_i) eps (|w_i| + 1) and f_max = 1/2 sum a_i (|w_i| + eps (|w_i| + 1))^2;
* one-sample linear regression f(w, b) = 1/2 (w.x + b - y)^2 with residual r: the residual moves
  by z.x + z_b, at most sum_i |x_i| eps (|w_i| + 1) + eps (|b| + 1) in the direction of r, so
  f_max = 1/2 (|r| + that)^2.
"""

from __future__ import annotations

import pytest
import torch

from weightscape.analyses.sharpness import epsilon_sharpness
from weightscape.errors import WeightscapeError
from weightscape.models.space import ParameterSpace

W = torch.tensor([1.5, -0.5, 2.0, -3.0], dtype=torch.float64)
A = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)


class Quadratic(torch.nn.Module):
    """f(w) = 1/2 sum scale * a_i w_i^2, where each batch is the scale."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(W.clone())
        self.register_buffer("a", A.clone())


def quadratic_loss(model: Quadratic, scale: float) -> torch.Tensor:
    return 0.5 * scale * (model.a * model.w**2).sum()


def quadratic_max(eps: float, scale: float = 1.0) -> float:
    return float(0.5 * scale * (A * (W.abs() + eps * (W.abs() + 1)) ** 2).sum())


def sharpness_of(loss: float, max_loss: float) -> float:
    return 100 * (max_loss - loss) / (1 + loss)


@pytest.mark.parametrize(
    ("eps", "lr", "steps"),
    [(1e-2, 0.5, 20), (1e-5, 8e-5, 10)],  # a wide box, and Juneja et al.'s eps and rate
)
def test_quadratic_reaches_the_analytic_corner(eps, lr, steps):
    model = Quadratic()
    result = epsilon_sharpness(
        model, quadratic_loss, [1.0], eps=eps, lr=lr, steps=steps, accumulation=1
    )
    loss = float(quadratic_loss(model, 1.0).detach())
    assert result["loss"] == loss
    assert result["max_loss"] == pytest.approx(quadratic_max(eps), rel=1e-6)
    assert result["sharpness"] == pytest.approx(sharpness_of(loss, result["max_loss"]), rel=1e-9)
    # The rise itself (1e-5 of the loss for the small box) matches to 1e-6 too.
    assert result["sharpness"] == pytest.approx(sharpness_of(loss, quadratic_max(eps)), rel=1e-6)
    assert result["steps"] == steps and result["eps"] == eps and result["n_parameters"] == 4


def test_accumulation_over_batches_averages_their_losses():
    # Batches scale the loss by 1 and 3: f is twice the plain quadratic, same corner.
    model = Quadratic()
    result = epsilon_sharpness(model, quadratic_loss, [1.0, 3.0], eps=1e-2, lr=0.5, steps=10)
    assert result["loss"] == pytest.approx(float(quadratic_loss(model, 2.0).detach()))
    assert result["max_loss"] == pytest.approx(quadratic_max(1e-2, scale=2.0), rel=1e-6)


def test_zero_steps_give_zero_sharpness():
    result = epsilon_sharpness(Quadratic(), quadratic_loss, [1.0], steps=0)
    assert result["sharpness"] == 0.0 and result["max_loss"] == result["loss"]


def linear_model() -> torch.nn.Linear:
    model = torch.nn.Linear(3, 1).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, -1.0, 2.0]]))
        model.bias.fill_(0.25)
    return model


X = torch.tensor([[1.0, 2.0, -0.5]], dtype=torch.float64)
Y = torch.tensor([[1.0]], dtype=torch.float64)


def regression_loss(model: torch.nn.Module, batch) -> torch.Tensor:
    inputs, targets = batch
    return 0.5 * ((model(inputs) - targets) ** 2).mean()


@pytest.mark.parametrize("params", [None, ["weight"], ParameterSpace(preset="biases")])
def test_linear_regression_reaches_the_analytic_corner(params):
    # w.x + b - y = 0.5 - 2 - 1 + 0.25 - 1 = -3.25. Radii eps (|w_i| + 1) = eps (1.5, 2, 3) and
    # eps (|b| + 1) = 1.25 eps; |x| = (1, 2, 0.5): the weights move the residual by 7 eps at most,
    # the bias by 1.25 eps.
    eps = 1e-3
    reach = {None: 8.25 * eps, ("weight",): 7 * eps, "biases": 1.25 * eps}
    key = "biases" if isinstance(params, ParameterSpace) else params and tuple(params)
    result = epsilon_sharpness(
        linear_model(),
        regression_loss,
        [(X, Y)],
        eps=eps,
        lr=0.1,
        steps=50,
        accumulation=1,
        params=params,
    )
    assert result["loss"] == pytest.approx(0.5 * 3.25**2)
    max_loss = 0.5 * (3.25 + reach[key]) ** 2
    assert result["max_loss"] == pytest.approx(max_loss, rel=1e-9)
    assert result["sharpness"] == pytest.approx(sharpness_of(0.5 * 3.25**2, max_loss), rel=1e-6)


def test_model_state_is_restored():
    model = linear_model()
    model.train()
    model.bias.requires_grad_(False)
    model.weight.grad = torch.full_like(model.weight, 7.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    epsilon_sharpness(model, regression_loss, [(X, Y)], eps=0.1, lr=0.1, steps=5)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert model.training and not model.bias.requires_grad and model.weight.requires_grad
    assert torch.equal(model.weight.grad, torch.full_like(model.weight, 7.0))
    assert model.bias.grad is None


def test_weights_are_restored_after_an_error():
    model = linear_model()
    before = model.weight.detach().clone()
    calls = []

    def failing_loss(m, batch):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("out of memory")
        return regression_loss(m, batch)

    with pytest.raises(RuntimeError, match="out of memory"):
        epsilon_sharpness(model, failing_loss, [(X, Y)], eps=0.1, lr=1.0, steps=5, accumulation=1)
    assert torch.equal(model.weight.detach(), before)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"eps": 0.0}, "The 'eps' parameter of epsilon_sharpness must be a finite number > 0. "),
        ({"lr": float("nan")}, "The 'lr' parameter of epsilon_sharpness must be a finite number"),
        ({"steps": -1}, "The 'steps' parameter of epsilon_sharpness must be an int >= 0. Got -1"),
        ({"accumulation": 0}, "The 'accumulation' parameter of epsilon_sharpness must be an int"),
        ({"params": ["wieght"]}, "Unknown parameter 'wieght' in epsilon_sharpness. Did you mean"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(WeightscapeError, match=message.replace(".", r"\.")):
        epsilon_sharpness(linear_model(), regression_loss, [(X, Y)], **settings)


def test_no_batches_and_non_finite_loss_are_refused():
    with pytest.raises(WeightscapeError, match="at least one batch"):
        epsilon_sharpness(linear_model(), regression_loss, [])
    with pytest.raises(WeightscapeError, match="non-finite loss"):
        epsilon_sharpness(linear_model(), lambda m, b: m.weight.sum() * float("nan"), [0])


def test_tiny_bert_is_measured_and_restored(tiny_models):
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(
        str(tiny_models[0]), trust_remote_code=False
    ).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    batches = [
        (torch.randint(5, 25, (4, 6), generator=generator), torch.tensor([0, 1, 1, 0]))
        for _ in range(2)
    ]

    def loss_fn(m, batch):
        ids, labels = batch
        return m(input_ids=ids, labels=labels).loss

    result = epsilon_sharpness(
        model,
        loss_fn,
        batches,
        eps=1e-3,
        lr=1e-2,
        steps=3,
        accumulation=2,
        params=ParameterSpace(preset="no-head"),
    )
    assert result["max_loss"] > result["loss"] > 0 and result["sharpness"] > 0
    assert result["n_parameters"] < sum(p.numel() for p in model.parameters())
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name


# --- how the ascent runs: train mode, summed accumulation, the named presets -----------------

C = torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64)  # sign(W) but for w_2


def mode_dependent_loss(model: Quadratic, scale: float) -> torch.Tensor:
    """In train mode a linear loss sum c_i w_i (its ascent goes to the corner sign(c)); in eval
    mode the quadratic 1/2 sum a_i w_i^2 (whose ascent goes to the corner sign(w))."""
    if model.training:
        return (C * model.w).sum()
    return quadratic_loss(model, scale)


def test_train_mode_ascends_the_train_mode_loss_and_measures_in_eval_mode():
    # The linear train-mode gradient (lr 0.5 x |c_i| = 0.5) crosses the box (radius <= 0.04) in
    # one step, so the ascent ends at w + sign(c) eps (|w| + 1); the maximum is then read in eval
    # mode: 1/2 sum a_i (w_i + sign(c_i) eps (|w_i| + 1))^2 = 16.2606625 for these numbers.
    eps = 1e-2
    corner = W + torch.sign(C) * eps * (W.abs() + 1)
    expected = float(0.5 * (A * corner**2).sum())
    assert expected == pytest.approx(16.2606625)
    model = Quadratic()
    result = epsilon_sharpness(
        model, mode_dependent_loss, [1.0], eps=eps, lr=0.5, steps=3, accumulation=1, mode="train"
    )
    assert result["loss"] == pytest.approx(15.875)  # f(x) in eval mode: the quadratic at W
    assert result["max_loss"] == pytest.approx(expected, rel=1e-12)
    assert result["mode"] == "train" and model.training  # a new module trains: restored
    # In eval mode the same call climbs the quadratic itself, to its own corner.
    evaluated = epsilon_sharpness(
        Quadratic(), mode_dependent_loss, [1.0], eps=eps, lr=0.5, steps=20, accumulation=1
    )
    assert evaluated["max_loss"] == pytest.approx(quadratic_max(eps), rel=1e-6)


@pytest.mark.parametrize(("accumulate", "factor"), [("mean", 2.0), ("sum", 4.0)])
def test_summed_accumulation_takes_the_sum_of_the_batch_gradients(accumulate, factor):
    # Batches scale the quadratic by 1 and 3: their gradients are a w and 3 a w, whose mean is
    # 2 a w and sum 4 a w. One step of lr 0.01 inside a wide box (eps 10) moves w to
    # w (1 + 0.01 factor a); f there is the mean over the batches, sum a w'^2.
    model = Quadratic()
    result = epsilon_sharpness(
        model,
        quadratic_loss,
        [1.0, 3.0],
        eps=10.0,
        lr=0.01,
        steps=1,
        accumulation=2,
        accumulate=accumulate,
    )
    moved = W * (1 + 0.01 * factor * A)
    assert result["max_loss"] == pytest.approx(float((A * moved**2).sum()), rel=1e-12)
    assert result["accumulate"] == accumulate


def test_dropout_in_train_mode_is_seeded_and_leaves_the_global_generator_alone():
    def dropout_loss(model, batch):
        return torch.nn.functional.dropout(model.w, 0.5, model.training).sum() * batch

    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    runs = [
        epsilon_sharpness(
            Quadratic(), dropout_loss, [1.0], eps=0.5, lr=0.1, steps=3, accumulation=1, mode=m
        )["max_loss"]
        for m in ("train", "train")
    ]
    assert runs[0] == runs[1]  # the same seed, the same masks
    assert torch.equal(torch.rand(1), expected_next)  # the caller's random stream is untouched


def test_unknown_mode_and_accumulation_are_named():
    with pytest.raises(WeightscapeError, match="'mode' parameter of epsilon_sharpness must be"):
        epsilon_sharpness(linear_model(), regression_loss, [(X, Y)], mode="training")
    with pytest.raises(WeightscapeError, match=r"'accumulate' parameter .* mean, sum"):
        epsilon_sharpness(linear_model(), regression_loss, [(X, Y)], accumulate="avg")


def test_the_juneja_preset_is_the_papers_setting():
    """Juneja et al., appendix F.4: eps 1e-5, SGD lr 8e-5, batch size 32, gradients accumulated
    over 4 batches, 8192 updates, 32768 samples; their flatness_measure ascends after
    model.train() and backpropagates each batch loss undivided (a sum)."""
    from weightscape.analyses.sharpness import SHARPNESS_PRESETS, SharpnessSettings

    assert SHARPNESS_PRESETS["juneja"] == SharpnessSettings(
        steps=8192,
        examples=32768,
        batch_size=32,
        eps=1e-5,
        lr=8e-5,
        accumulation=4,
        mode="train",
        accumulate="sum",
    )
    # weightscape's quick look is what the basins study did before the presets existed
    assert SHARPNESS_PRESETS["quick"] == SharpnessSettings(
        steps=0, examples=128, batch_size=None, mode="eval", accumulate="mean"
    )


def test_the_basins_config_resolves_presets_and_overrides():
    import typing

    from weightscape.analyses.sharpness import SHARPNESS_PRESETS
    from weightscape.studies.basins import Config

    choices = typing.get_args(Config.model_fields["sharpness_preset"].annotation)
    assert set(choices) == set(SHARPNESS_PRESETS)
    assert Config(grid="g").sharpness_settings().steps == 0  # off unless asked for
    juneja = Config(grid="g", sharpness_preset="juneja").sharpness_settings()
    assert (juneja.steps, juneja.examples, juneja.mode) == (8192, 32768, "train")
    short = Config(
        grid="g", sharpness_preset="juneja", sharpness_steps=2, sharpness_examples=16
    ).sharpness_settings()
    assert (short.steps, short.examples, short.batch_size, short.accumulate) == (2, 16, 32, "sum")
