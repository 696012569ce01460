"""Paper 004: dynamic gradient modulation (eq. 6-9) on hand-computed scores and gradients, the parameters each
model names per modality, the modality-separated decision unit (eq. 11) and its loss, and training runs that
log omega and mu."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional
from train_helpers import make_splits, one_torch_thread, random_features, train_overrides  # noqa: F401

from avvp.data.dataset import Batch
from avvp.errors import InputError
from avvp.models import ParserConfig, build_model
from avvp.training.config import load_config
from avvp.training.gradient_modulation import (
    GradientModulation,
    GradientModulationConfig,
    balance_coefficients,
    imbalance_ratio,
    modality_progress,
    modulate_gradients,
)
from avvp.training.losses import LossConfig, Objective
from avvp.training.trainer import train

TINY = {"d_model": 32, "feedforward": 48, "dropout": 0.0}
MSDU = {"heads": {"modality_separated": {}}}

# Two clips of three classes: clip 0 has class 0, clip 1 classes 1 and 2.
HAND_LABELS = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
HAND_AUDIO = torch.tensor([[0.9, 0.2, 0.1], [0.4, 0.6, 0.3]])
HAND_VISUAL = torch.tensor([[0.5, 0.5, 0.2], [0.1, 0.9, 0.7]])
# audio:  score 0.9 + 0.6 + 0.3 = 1.8; discrepancy (0.9 - 0.15) + (0.45 - 0.4) = 0.8
# visual: score 0.5 + 0.9 + 0.7 = 2.1; discrepancy (0.5 - 0.35) + (0.8 - 0.1) = 0.85
HAND_PROGRESS = {"score": (1.8, 2.1), "discrepancy": (0.8, 0.85), "both": (2.6, 2.95)}


def tiny(seed: int = 0, **settings: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(ParserConfig.model_validate({**TINY, **settings})).eval()


def make_batch(labels: torch.Tensor, seed: int = 0) -> Batch:
    n = len(labels)
    return Batch(torch.arange(n), [f"clip{i}" for i in range(n)], random_features(n, seed), labels)


def grouped_scores(labels: torch.Tensor, true: float, wrong: float) -> torch.Tensor:
    """Scores ``true`` on the labelled classes and ``wrong`` elsewhere."""
    return torch.where(labels > 0.5, true, wrong)


def names(model: torch.nn.Module, parameters: list[torch.nn.Parameter]) -> set[str]:
    by_id = {id(p): name for name, p in model.named_parameters()}
    return {by_id[id(p)] for p in parameters}


@pytest.mark.parametrize("metric", ["score", "discrepancy", "both"])
def test_progress_and_omega_of_each_metric_on_hand_computed_scores(metric: str) -> None:
    audio, visual = HAND_PROGRESS[metric]
    assert modality_progress(HAND_AUDIO, HAND_LABELS, metric).item() == pytest.approx(audio)
    assert modality_progress(HAND_VISUAL, HAND_LABELS, metric).item() == pytest.approx(visual)
    omega, defined = imbalance_ratio(torch.tensor(audio), torch.tensor(visual))
    assert defined and omega.item() == pytest.approx(visual / audio)


def test_omega_is_undefined_unless_both_progresses_are_positive() -> None:
    for audio, visual in ((-0.2, 1.0), (1.0, 0.0), (-1.0, -2.0)):
        omega, defined = imbalance_ratio(torch.tensor(audio), torch.tensor(visual))
        assert not defined and omega.item() == 1.0


@pytest.mark.parametrize(
    ("omega", "gamma", "mu_audio", "mu_visual"),
    [
        (1.0, 0.1, 1.0, 1.0),
        (0.9, 0.1, 1 - math.tanh(0.1 / 0.9), 1.0),
        (2.0, 0.1, 1.0, 1 - math.tanh(0.2)),
        (4.0, 0.5, 1.0, 1 - math.tanh(2.0)),
        (0.25, 0.5, 1 - math.tanh(2.0), 1.0),
    ],
)
def test_coefficients_are_one_up_to_balance_and_the_tanh_branch_beyond(
    omega: float, gamma: float, mu_audio: float, mu_visual: float
) -> None:
    got_audio, got_visual = balance_coefficients(torch.tensor(omega), gamma)
    assert got_audio.item() == pytest.approx(mu_audio)
    assert got_visual.item() == pytest.approx(mu_visual)


def test_modulation_scales_exactly_without_noise_and_adds_the_gradients_spread_with_it() -> None:
    torch.manual_seed(0)
    parameter = torch.nn.Parameter(torch.zeros(400, 500))
    gradient = 3.0 * torch.randn(400, 500)
    mu = torch.tensor(0.25)
    parameter.grad = gradient.clone()
    modulate_gradients([parameter], mu, noise=False)
    assert torch.equal(parameter.grad, mu * gradient)
    parameter.grad = gradient.clone()
    modulate_gradients([parameter], mu, noise=True)
    added = parameter.grad - mu * gradient
    # the added noise has the unscaled gradient's spread (not mu times it) and no mean, so the modulated
    # gradient's variance is (mu^2 + 1) sigma^2: eq. 9 as we read it
    assert added.std().item() == pytest.approx(gradient.std().item(), rel=0.01)
    assert abs(added.mean().item()) < 0.02
    assert parameter.grad.var().item() == pytest.approx((0.25**2 + 1) * gradient.var().item(), rel=0.02)
    assert abs(torch.corrcoef(torch.stack((added.flatten(), gradient.flatten())))[0, 1].item()) < 0.01


@pytest.mark.parametrize(
    ("settings", "audio", "visual"),
    [
        (
            {},
            {"projections.audio"},
            {"projections.frames", "projections.motion", "projections.visual_fusion"},
        ),
        (
            {"block": "base"},
            {"projections.audio", "block.audio_self"},
            {"projections.frames", "projections.motion", "projections.visual_fusion", "block.visual_self"},
        ),
        (
            {"input_encoder": {"d_model": 16, "num_heads": 2, "feedforward": 16, "layers": 1}, **MSDU},
            {"projections.audio", "input_encoder.audio"},
            {
                "projections.frames",
                "projections.motion",
                "projections.visual_fusion",
                "input_encoder.visual",
            },
        ),
    ],
)
def test_each_model_names_its_modality_specific_parameters(
    settings: dict, audio: set[str], visual: set[str]
) -> None:
    model = tiny(**settings)
    parameters = model.modality_parameters()
    for modality, modules in (("audio", audio), ("visual", visual)):
        expected = {n for n, _ in model.named_parameters() if n.startswith(tuple(f"{m}." for m in modules))}
        assert names(model, parameters[modality]) == expected
        assert len(parameters[modality]) == len(expected)  # each parameter once


def _backward(model: torch.nn.Module, batch: Batch, terms: dict[str, float]):
    output = model.train()(batch.features)
    total, _ = Objective(LossConfig(terms=terms))(output, batch)
    total.backward()
    return output, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("with_msdu", [True, False])
def test_step_scales_only_the_named_parameters_by_the_coefficient_of_their_modality(with_msdu: bool) -> None:
    labels = torch.zeros(2, 25)
    labels[0, 0] = labels[1, 1] = labels[1, 2] = 1.0
    model = tiny(block="base", **(MSDU if with_msdu else {}))
    terms = {"wsl": 1.0, "audio": 1.0, "visual": 1.0, **({"modality_separated": 1.0} if with_msdu else {})}
    batch = make_batch(labels)
    output, before = _backward(model, batch, terms)
    # the measured scores: audio true 0.8 / wrong 0.2, visual true 0.6 / wrong 0.1 ->
    # audio progress 3 * 0.8 + 2 * 0.6 = 3.6, visual 3 * 0.6 + 2 * 0.5 = 2.8: omega_{v-a} = 7/9
    measured = (grouped_scores(labels, 0.8, 0.2), grouped_scores(labels, 0.6, 0.1))
    other = (grouped_scores(labels, 0.1, 0.9), grouped_scores(labels, 0.9, 0.1))
    if with_msdu:  # DGM reads the MSDU head, not the main probabilities
        output.heads["modality_separated"] = torch.stack(measured, dim=1)
        output.audio_prob, output.visual_prob = other
    else:
        output.audio_prob, output.visual_prob = measured
    gamma = 0.5
    monitors = GradientModulation(GradientModulationConfig(gamma=gamma, noise_compensation=False))(
        model, output, batch
    )
    mu_audio = 1 - math.tanh(gamma * 9 / 7)
    assert monitors["omega"].item() == pytest.approx(7 / 9)
    assert monitors["mu_audio"].item() == pytest.approx(mu_audio)
    assert monitors["mu_visual"].item() == 1.0 and monitors["omega_undefined"].item() == 0.0
    parameters = model.modality_parameters()
    audio, visual = names(model, parameters["audio"]), names(model, parameters["visual"])
    for name, parameter in model.named_parameters():
        if name in audio:
            torch.testing.assert_close(parameter.grad, mu_audio * before[name])
        else:  # visual (mu 1), shared layers, pooling and MSDU heads: untouched
            assert torch.equal(parameter.grad, before[name]), name
    assert visual and all(before[n].abs().sum() > 0 for n in audio)  # the scaling was visible


def test_noise_compensation_perturbs_only_the_modality_parameters() -> None:
    labels = torch.zeros(4, 25)
    labels[:, 3] = 1.0
    model = tiny()
    batch = make_batch(labels)
    output, before = _backward(model, batch, {"wsl": 1.0, "audio": 1.0, "visual": 1.0})
    GradientModulation(GradientModulationConfig())(model, output, batch)
    parameters = model.modality_parameters()
    modulated = names(model, parameters["audio"]) | names(model, parameters["visual"])
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter.grad, before[name]) != (name in modulated), name


def test_msdu_heads_leave_the_main_predictions_unchanged() -> None:
    plain, separated = tiny(seed=3), tiny(seed=3, **MSDU)
    shared = separated.state_dict()
    missing, unexpected = plain.load_state_dict(shared, strict=False)
    assert not missing and all(k.startswith("heads.modality_separated.") for k in unexpected)
    inputs = random_features(3, seed=1)
    fields = ("global_prob", "audio_prob", "visual_prob", "frame_prob", "temporal_attention")
    for mode in ("eval", "train"):
        outputs = []
        for model in (plain, separated):
            getattr(model, mode)()
            torch.manual_seed(5)  # the same dropout masks in train mode
            outputs.append(model(inputs))
        for name in (*fields, "modality_attention", "audio_embedding", "visual_embedding"):
            assert torch.equal(getattr(outputs[0], name), getattr(outputs[1], name)), (mode, name)
        assert outputs[1].heads["modality_separated"].shape == (3, 2, 25)


def test_msdu_reads_each_modality_alone_before_any_attention() -> None:
    model = tiny(**MSDU)
    inputs = random_features(2, seed=0)
    head = model.heads["modality_separated"]
    with torch.no_grad():
        audio, visual = model.projections(inputs["vggish"], inputs["resnet152"], inputs["r2plus1d"])
        expected = [
            (torch.softmax(head.attentions[i](x), dim=1) * torch.sigmoid(head.classifiers[i](x))).sum(dim=1)
            for i, x in enumerate((audio, visual))
        ]
        got = model(inputs).heads["modality_separated"]
        torch.testing.assert_close(got, torch.stack(expected, dim=1))
        other_visual = {**inputs, "resnet152": inputs["resnet152"] + 1.0, "r2plus1d": -inputs["r2plus1d"]}
        changed = model(other_visual).heads["modality_separated"]
    assert torch.equal(changed[:, 0], got[:, 0]) and not torch.equal(changed[:, 1], got[:, 1])


@pytest.mark.parametrize("detach", [False, True])
def test_msdu_loss_uses_the_modality_targets_and_reaches_the_projections_unless_detached(
    detach: bool,
) -> None:
    labels = torch.zeros(2, 25)
    labels[0, 0] = labels[1, 4] = labels[1, 7] = 1.0
    model = tiny(heads={"modality_separated": {"detach": detach}})
    batch = make_batch(labels)
    batch.dropped = {"visual": torch.zeros(2, 25, dtype=torch.bool)}
    batch.dropped["visual"][1, 4] = True
    output = model.train()(batch.features)
    total, logged = Objective(LossConfig(terms={"modality_separated": 1.0}))(output, batch)
    prob = output.heads["modality_separated"]
    visual_targets = (0.9 * labels + 0.05).masked_fill(batch.dropped["visual"], 0.0)  # LS-V, label removed
    expected = functional.binary_cross_entropy(prob[:, 0], labels) + functional.binary_cross_entropy(
        prob[:, 1], visual_targets
    )
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(logged["L_ms"], expected.detach())
    total.backward()
    projection_grad = model.projections.audio.weight.grad
    assert (projection_grad is None) == detach
    assert model.heads["modality_separated"].classifiers[1].weight.grad.abs().sum() > 0
    assert model.pooling.classifier.weight.grad is None  # the main heads are not trained by L_ms


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.heads.modality_separated": {}}, "add it to loss.terms"),
        ({"loss.terms.modality_separated": 1.0}, "needs the head model.heads.modality_separated"),
        ({"gradient_modulation.metric": "fusion"}, "gradient_modulation.metric"),
        ({"gradient_modulation.gamma": 0.0}, "gradient_modulation.gamma"),
    ],
)
def test_inconsistent_modulation_configs_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_config(None, {"loss.terms": {"wsl": 1.0, "audio": 1.0, "visual": 1.0}, **overrides})


def test_defaults_are_the_papers() -> None:
    config = load_config(None, {"gradient_modulation": {}})
    assert config.gradient_modulation == GradientModulationConfig(
        metric="both", gamma=0.1, noise_compensation=True
    )
    assert load_config(None).gradient_modulation is None


@pytest.mark.parametrize(
    ("block", "msdu", "modulation"),
    [("han", True, {}), ("base", False, {"metric": "score", "noise_compensation": False})],
)
def test_training_with_dgm_logs_omega_and_mu_per_epoch(
    tmp_path: Path, block: str, msdu: bool, modulation: dict
) -> None:
    splits = make_splits(tmp_path / "data", num_train=16, num_val=8)
    overrides = train_overrides(splits, tmp_path / "run", epochs=2, gradient_modulation=modulation)
    overrides["model.block"] = block
    if msdu:
        overrides["model.heads.modality_separated"] = {}
        overrides["loss.terms"] = {"wsl": 1.0, "audio": 1.0, "visual": 1.0, "modality_separated": 1.0}
    train(load_config(None, overrides))
    records = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for record in records:
        assert record["omega"] > 0 and 0 <= record["omega_undefined"] <= 1
        assert 0 < record["mu_audio"] <= 1 and 0 < record["mu_visual"] <= 1
        assert ("L_ms" in record) == msdu
    assert np.isfinite([r["loss"] for r in records]).all()


def test_a_resumed_run_with_dgm_noise_ends_with_the_same_weights(tmp_path: Path) -> None:
    splits = make_splits(tmp_path / "data", num_train=16, num_val=8)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    extra = {"gradient_modulation": {}, "model.heads.modality_separated": {}}
    extra["loss.terms"] = {"wsl": 1.0, "audio": 1.0, "visual": 1.0, "modality_separated": 1.0}
    train(load_config(None, train_overrides(splits, straight, epochs=2, **extra)))
    train(load_config(None, train_overrides(splits, resumed, epochs=1, **extra)))
    train(load_config(None, train_overrides(splits, resumed, epochs=2, **extra)), resume=True)
    a = torch.load(straight / "last.pt", weights_only=True)["state_dict"]
    b = torch.load(resumed / "last.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
