"""Co-teaching and JoCoR over two parsers: the small-loss selection and the updates on hand-made batches, the
configuration checks, and whole runs (best.pt of the better network, prediction, resume)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from train_helpers import make_splits, one_torch_thread, train_overrides  # noqa: F401

from avvp.cli import main
from avvp.data.dataset import Batch
from avvp.errors import InputError
from avvp.models import ParserOutput
from avvp.training.checkpoints import load_model
from avvp.training.co_training import CoTrainingConfig, CoTrainingStep, symmetric_kl
from avvp.training.config import load_config
from avvp.training.losses import LabelSmoothing, LossConfig
from avvp.training.noise_ratios import NoiseRatios, write_noise_ratios
from avvp.training.trainer import train

CONFIGS = Path(__file__).resolve().parents[1] / "resources" / "configs"
CLASSES = 25
AUDIO_ONLY = LossConfig(terms={"audio": 1.0}, label_smoothing=LabelSmoothing(variant="No-LS"))
"""Only L_a, without smoothing: targets are 0/1, so each gradient is (p - target) / (B C)."""


class FixedNetwork(nn.Module):
    """A 'network' whose audio and visual probabilities are sigmoids of its own (B, C) parameters."""

    def __init__(self, audio: torch.Tensor, visual: torch.Tensor) -> None:
        super().__init__()
        self.audio = nn.Parameter(torch.logit(audio.double()).float())
        self.visual = nn.Parameter(torch.logit(visual.double()).float())

    def forward(self, features: dict[str, torch.Tensor]) -> ParserOutput:
        audio, visual = torch.sigmoid(self.audio), torch.sigmoid(self.visual)
        zeros = torch.zeros(*audio.shape[:1], 10, 2, CLASSES)
        segments = torch.zeros(audio.shape[0], 10, 4)
        return ParserOutput(audio, audio, visual, zeros, zeros, zeros, segments, segments)


class FixedPair(nn.Module):
    """Two fixed networks, as :class:`~avvp.training.co_training.NetworkPair` holds two parsers."""

    def __init__(self, first: FixedNetwork, second: FixedNetwork) -> None:
        super().__init__()
        self.first, self.second = first, second

    def networks(self) -> dict[str, nn.Module]:
        return {"first": self.first, "second": self.second}


def probabilities(values: list[float]) -> torch.Tensor:
    """(4, C): class 0 takes ``values`` (one per clip), every other class 0.1."""
    prob = torch.full((4, CLASSES), 0.1)
    prob[:, 0] = torch.tensor(values)
    return prob


def four_clip_batch() -> Batch:
    """Four clips, all labelled with class 0 only."""
    labels = torch.zeros(4, CLASSES)
    labels[:, 0] = 1.0
    return Batch(index=torch.arange(4), video_ids=list("abcd"), features={}, labels=labels)


def step(tmp_path: Path, method: str, co_regularization: float = 0.9) -> CoTrainingStep:
    """A step leaving out half of each class's positives from the first step on (no warm-up)."""
    ratios = tmp_path / "ratios.npz"
    write_noise_ratios(ratios, NoiseRatios(np.full(CLASSES, 0.5), np.full(CLASSES, 0.5)))
    config = CoTrainingConfig(
        method=method, noise_ratios=ratios, warmup_epochs=0.0, co_regularization=co_regularization
    )
    return CoTrainingStep(config, AUDIO_ONLY, torch.device("cpu"))


def test_co_teaching_gives_each_network_the_labels_its_peer_finds_small_loss(tmp_path: Path) -> None:
    # class 0 audio: the first network is sure of clips a, b; the second of clips c, d
    first = FixedNetwork(probabilities([0.9, 0.8, 0.2, 0.1]), probabilities([0.5] * 4))
    second = FixedNetwork(probabilities([0.1, 0.3, 0.7, 0.9]), probabilities([0.5] * 4))
    result = step(tmp_path, "co_teaching")(FixedPair(first, second), four_clip_batch(), 0, 10, False)
    (_, _, first_batch), (_, _, second_batch) = result.trained
    # floor(0.5 x 4) = 2 labels out per network: the second's large losses (a, b) leave the first's targets,
    # the first's (c, d) leave the second's
    assert first_batch.dropped["audio"][:, 0].tolist() == [True, True, False, False]
    assert second_batch.dropped["audio"][:, 0].tolist() == [False, False, True, True]
    assert not first_batch.dropped["audio"][:, 1:].any()  # negatives are never selected
    assert float(result.terms["dropped_audio"]) == pytest.approx(0.5)
    # the cross update: each network descends its L_a on the labels its peer kept
    result.total.backward()
    targets_first = torch.tensor([0.0, 0.0, 1.0, 1.0])
    targets_second = torch.tensor([1.0, 1.0, 0.0, 0.0])
    for network, targets in ((first, targets_first), (second, targets_second)):
        expected = (torch.sigmoid(network.audio[:, 0]) - targets) / (4 * CLASSES)
        torch.testing.assert_close(network.audio.grad[:, 0], expected.detach())
        assert network.visual.grad is None or not network.visual.grad.any()  # L_a only


def jocor_joint_loss(p: float, q: float, weight: float) -> float:
    """JoCoR's per-label joint loss, written out: BCE of both networks for a positive and the two KLs."""

    def kl(a: float, b: float) -> float:
        return a * math.log(a / b) + (1 - a) * math.log((1 - a) / (1 - b))

    return (1 - weight) * (-math.log(p) - math.log(q)) + weight * (kl(p, q) + kl(q, p))


def test_jocor_selects_by_the_joint_loss_and_trains_both_networks_on_it(tmp_path: Path) -> None:
    weight = 0.5
    first_audio, second_audio = [0.9, 0.6, 0.7, 0.2], [0.8, 0.7, 0.3, 0.3]
    joint = [jocor_joint_loss(p, q, weight) for p, q in zip(first_audio, second_audio, strict=True)]
    largest = sorted(np.argsort(joint)[-2:].tolist())
    assert largest == [2, 3]  # c: the networks disagree; d: both wrong. Not b, a shared mild loss
    first = FixedNetwork(probabilities(first_audio), probabilities([0.5] * 4))
    second = FixedNetwork(probabilities(second_audio), probabilities([0.5] * 4))
    result = step(tmp_path, "jocor", weight)(FixedPair(first, second), four_clip_batch(), 0, 10, False)
    for _, _, batch in result.trained:  # one selection for both
        assert batch.dropped["audio"][:, 0].tolist() == [False, False, True, True]
    # total = (1 - w)(L_a^1 + L_a^2) + w L_con with L_con = mean KL_sym over audio + mean over visual
    p, q = torch.sigmoid(first.audio).detach(), torch.sigmoid(second.audio).detach()
    targets = torch.zeros(4, CLASSES)
    targets[:2, 0] = 1.0
    supervised = sum(
        float(torch.nn.functional.binary_cross_entropy(x, targets)) for x in (p, q)
    )  # the visual probabilities agree: their KL is 0
    con = float(symmetric_kl(p, q, 1e-7).mean())
    assert float(result.terms["L_con"]) == pytest.approx(con, rel=1e-5)
    assert float(result.total.detach()) == pytest.approx((1 - weight) * supervised + weight * con, rel=1e-5)
    result.total.backward()
    # d/dlogit_p of (p - q)(logit p - logit q) = p (1 - p)(logit p - logit q) + (p - q)
    for network, own, other in ((first, p, q), (second, q, p)):
        kl_grad = own * (1 - own) * (torch.logit(own) - torch.logit(other)) + (own - other)
        expected = ((1 - weight) * (own - targets) + weight * kl_grad) / (4 * CLASSES)
        torch.testing.assert_close(network.audio.grad, expected, rtol=1e-4, atol=1e-7)


def test_symmetric_kl_is_both_kullback_leibler_divergences() -> None:
    p, q = torch.tensor([0.2, 0.9]), torch.tensor([0.6, 0.5])
    direct = [
        a * math.log(a / b) + (1 - a) * math.log((1 - a) / (1 - b)) + b * math.log(b / a) + (1 - b) * math.log((1 - b) / (1 - a))
        for a, b in ((0.2, 0.6), (0.9, 0.5))
    ]  # fmt: skip
    torch.testing.assert_close(symmetric_kl(p, q, 1e-7), torch.tensor(direct))


def test_forget_rates_warm_up_and_need_a_ratio_file(tmp_path: Path) -> None:
    configured = step(tmp_path, "co_teaching")
    configured.config = configured.config.model_copy(update={"warmup_epochs": 1.0})
    first = FixedNetwork(probabilities([0.9, 0.8, 0.2, 0.1]), probabilities([0.5] * 4))
    second = FixedNetwork(probabilities([0.1, 0.3, 0.7, 0.9]), probabilities([0.5] * 4))
    at_start = configured(FixedPair(first, second), four_clip_batch(), 0, 10, False)
    assert float(at_start.terms["dropped_audio"]) == 0.0  # rate 0 at the first step
    with pytest.raises(InputError, match=r"co_training\.noise_ratios is not set"):
        CoTrainingStep(CoTrainingConfig(method="jocor"), AUDIO_ONLY, torch.device("cpu"))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"denoising": {"noise_ratios": None}}, "co_training and denoising are two label-noise procedures"),
        ({"refined_labels": "r.npz"}, "refined_labels trains one network; co_training trains two"),
        ({"co_training": {"method": "jocor", "peer_model": {"blok": "base"}}}, "co_training.peer_model.blok: unknown key"),
        (
            {"co_training": {"method": "jocor", "peer_model": {"heads": {"modality_separated": {}}}}},
            "co_training.peer_model.heads.modality_separated is trained only by the loss term",
        ),
    ],
)  # fmt: skip
def test_inconsistent_co_training_configs_are_refused(settings: dict, message: str) -> None:
    overrides = {"co_training": {"method": "co_teaching"}, **settings}
    with pytest.raises(InputError, match=message):
        load_config(CONFIGS / "han.yaml", overrides)


def test_the_peer_may_be_another_configuration() -> None:
    config = load_config(
        CONFIGS / "han_jocor.yaml", {"co_training.peer_model": {"block": "base", "d_model": 64}}
    )
    assert (config.model.block, config.peer_model.block, config.peer_model.d_model) == ("han", "base", 64)
    assert config.peer_model.feedforward == config.model.feedforward


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return make_splits(tmp_path_factory.mktemp("data"), num_train=32, num_val=12)


def co_training_config(splits, tmp_path: Path, method: str, output: str, **extra: object):
    ratios = tmp_path / "ratios.npz"
    write_noise_ratios(ratios, NoiseRatios(np.full(CLASSES, 0.3), np.full(CLASSES, 0.3)))
    settings = {"epochs": 2, "co_training.method": method, "co_training.noise_ratios": str(ratios), **extra}
    return load_config(CONFIGS / "han.yaml", train_overrides(splits, tmp_path / output, **settings))


@pytest.mark.parametrize("method", ["co_teaching", "jocor"])
def test_a_run_keeps_the_better_network_and_it_predicts(splits, tmp_path: Path, method: str) -> None:
    best = train(co_training_config(splits, tmp_path, method, "run"))
    run = tmp_path / "run"
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    for record in history:
        scores = {n: v["segment"]["type"] for n, v in record["val_networks"].items()}
        assert set(scores) == {"first", "second"} and scores[record["network"]] == max(scores.values())
        assert {"L_wsl", "L_a", "L_v", "dropped_audio", "dropped_visual"} <= set(record)
        assert ("L_con" in record) == (method == "jocor")
    assert best["network"] == json.loads((run / "val_metrics.json").read_text())["network"]
    epoch = history[best["epoch"] - 1]
    assert best["score"] == epoch["val_networks"][best["network"]]["segment"]["type"]
    last = torch.load(run / "last.pt", weights_only=True)
    assert set(last["training"]["networks"]) == {"first", "second"}
    kept = load_model(run / "best.pt")  # one parser, the kept network of the best epoch
    assert type(kept).__name__ == "Parser"
    code = main(
        ["predict", "--checkpoint", str(run / "best.pt"), "--features", str(splits.features),
         "--split-csv", str(splits.annotations_dir / "AVVP_val_pd.csv"), "--output-dir", str(tmp_path / "pred")]
    )  # fmt: skip
    assert code == 0 and (tmp_path / "pred" / "pred_audio.csv").is_file()


def test_a_resumed_co_training_run_ends_with_the_same_networks(splits, tmp_path: Path) -> None:
    train(co_training_config(splits, tmp_path, "jocor", "whole"))
    train(co_training_config(splits, tmp_path, "jocor", "split", epochs=1))
    train(co_training_config(splits, tmp_path, "jocor", "split"), resume=True)
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["training"]["networks"]
    split = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["training"]["networks"]
    for name in ("first", "second"):
        for key, value in whole[name].items():
            assert torch.equal(value, split[name][key]), (name, key)
