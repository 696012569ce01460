"""JoMoLD's pieces: the joint-modal removal rule, its warm-up, the denoising procedure around a step, the
segment contrastive term, the decision rules, and a denoised training run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from train_helpers import (  # noqa: F401
    TINY_MODEL,
    SyntheticSplits,
    make_splits,
    one_torch_thread,
    random_features,
    train_overrides,
)

from avvp.data.dataset import Batch
from avvp.errors import InputError
from avvp.inference import Probabilities, decide
from avvp.models import ParserConfig, ParserOutput, build_model
from avvp.training.config import load_config
from avvp.training.denoising import DenoisingConfig, LabelDenoising, joint_modal_removal, warmup_factor
from avvp.training.losses import ContrastiveConfig, LossConfig, Objective, SegmentContrastiveLoss
from avvp.training.noise_ratios import NoiseRatios, read_noise_ratios, write_noise_ratios
from avvp.training.trainer import train

# One class, six clips; clips 0-4 are positive in both modalities, clip 5 in neither.
LOSS_AUDIO = torch.tensor([[0.05], [0.5], [0.6], [0.01], [0.7], [0.0]])
LOSS_VISUAL = torch.tensor([[0.9], [0.1], [0.8], [0.2], [0.3], [5.0]])
POSITIVE = torch.tensor([[True]] * 5 + [[False]])


def removal(ratio_audio: float, ratio_visual: float) -> tuple[list[int], list[int]]:
    drop_audio, drop_visual = joint_modal_removal(
        LOSS_AUDIO,
        LOSS_VISUAL,
        POSITIVE,
        POSITIVE,
        torch.tensor([ratio_audio], dtype=torch.float64),
        torch.tensor([ratio_visual], dtype=torch.float64),
    )
    return drop_audio[:, 0].nonzero().flatten().tolist(), drop_visual[:, 0].nonzero().flatten().tolist()


def test_removal_rule_on_a_hand_made_batch() -> None:
    # visual, k = floor(0.5 * 5) = 2: largest visual losses {0, 2}, smallest audio losses {3, 0} -> clip 0
    # audio, k = floor(0.4 * 5) = 2: largest audio losses {4, 2}, smallest visual losses {1, 3} -> none
    assert removal(0.4, 0.5) == ([], [0])
    # audio, k = 4: largest audio {4, 2, 1, 0}, smallest visual {1, 3, 4, 2} -> clips 1, 2, 4
    assert removal(0.8, 0.0) == ([1, 2, 4], [])
    # k = 5 takes every positive into both sets, but never the negative clip 5
    assert removal(1.0, 1.0) == ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])


def test_removal_with_warm_up() -> None:
    steps = 100  # steps per epoch; warm-up over 0.9 epoch = 90 steps
    assert warmup_factor(0, steps, 0.9, "linear") == 0.0
    assert warmup_factor(45, steps, 0.9, "linear") == pytest.approx(0.5)
    assert warmup_factor(90, steps, 0.9, "linear") == 1.0
    assert warmup_factor(150, steps, 0.9, "linear") == 1.0
    # the released code: zero for the whole first epoch, the full ratio from the second epoch on
    assert [warmup_factor(s, steps, 0.9, "original-code") for s in (0, 50, 99, 100, 150)] == [0, 0, 0, 1, 1]
    assert warmup_factor(0, steps, 0.0, "linear") == 1.0
    # half-way through the warm-up the visual ratio 0.5 acts as 0.25: k = 1, clip 0 is not also among the
    # single smallest audio loss (clip 3), so nothing goes; at the start nothing can go
    factor = warmup_factor(45, steps, 0.9, "linear")
    assert removal(0.4 * factor, 0.5 * factor) == ([], [])
    assert removal(0.0, 0.0) == ([], [])


class FixedScores(torch.nn.Module):
    """Returns given audio and visual video probabilities and records how it was called."""

    def __init__(self, audio: torch.Tensor, visual: torch.Tensor) -> None:
        super().__init__()
        self.audio, self.visual, self.calls = audio, visual, []

    def forward(self, features, cross_modal: bool = True):
        self.calls.append(cross_modal)
        return SimpleNamespace(audio_prob=self.audio, visual_prob=self.visual)


def test_procedure_drops_labels_from_targets(tmp_path: Path) -> None:
    labels = torch.zeros(6, 25)
    labels[:5, 0] = 1.0
    # probabilities whose BCE against y (audio) and 0.9 y + 0.05 (visual) order the clips as above
    audio = torch.full((6, 25), 0.01)
    audio[:, 0] = torch.tensor([0.95, 0.6, 0.55, 0.99, 0.5, 0.01])
    visual = torch.full((6, 25), 0.05)
    visual[:, 0] = torch.tensor([0.4, 0.95, 0.5, 0.9, 0.8, 0.05])
    ratios = tmp_path / "ratios.npz"
    audio_ratio, visual_ratio = np.zeros(25), np.zeros(25)
    visual_ratio[0] = 0.5
    write_noise_ratios(ratios, NoiseRatios(audio_ratio, visual_ratio))
    procedure = LabelDenoising(DenoisingConfig(noise_ratios=ratios), LossConfig(), torch.device("cpu"))
    model = FixedScores(audio, visual)
    batch = Batch(torch.arange(6), [str(i) for i in range(6)], {}, labels)
    batch, monitors = procedure(model, batch, step=200, steps_per_epoch=100, mixed_precision=False)
    assert model.calls == [False]  # cross-modal attention skipped in the denoising forward pass
    assert batch.dropped["visual"].nonzero().tolist() == [[0, 0]]
    assert not batch.dropped["audio"].any()
    assert float(monitors["dropped_visual"]) == pytest.approx(1 / 5)
    # the dropped label is 0 in the visual targets (not 0.05), the fused and audio targets keep it
    output = SimpleNamespace(global_prob=audio, audio_prob=audio, visual_prob=visual)
    objective = Objective(LossConfig())
    _, plain = objective(output, Batch(batch.index, batch.video_ids, {}, labels))
    _, denoised = objective(output, batch)
    assert float(denoised["L_a"]) == pytest.approx(float(plain["L_a"]))
    assert float(denoised["L_wsl"]) == pytest.approx(float(plain["L_wsl"]))
    # clip 0's visual term: -(0.95 log 0.4 + 0.05 log 0.6) with the label, -log(1 - 0.4) without
    change = (math.log(1 - 0.4) - (0.95 * math.log(0.4) + 0.05 * math.log(0.6))) / (6 * 25)
    assert float(plain["L_v"] - denoised["L_v"]) == pytest.approx(change, rel=1e-4)


@pytest.mark.parametrize("form", ["expected_probability", "cross_entropy"])
def test_contrastive_loss_equals_a_direct_computation(form: str) -> None:
    generator = torch.Generator().manual_seed(3)
    audio, visual = torch.randn(2, 10, 8, generator=generator), torch.randn(2, 10, 8, generator=generator)
    projected = torch.randn(2, 10, 8, generator=generator)
    output = SimpleNamespace(audio_embedding=audio, visual_embedding=visual, projected_visual=projected)
    # JoMoLD: the aggregated visual segments; MA: the projected ones, with a cross-entropy
    compared = "aggregated" if form == "expected_probability" else "projected"
    config = ContrastiveConfig(temperature=0.2, smoothing=0.1, form=form, visual=compared)
    loss = SegmentContrastiveLoss(config)(output, None)
    other = visual if compared == "aggregated" else projected
    total = 0.0
    for b in range(2):
        for t in range(10):
            sims = [
                float(audio[b, t] @ other[b, u]) / float(audio[b, t].norm() * other[b, u].norm()) / 0.2
                for u in range(10)
            ]
            exps = [math.exp(s) for s in sims]
            prob = [e / sum(exps) for e in exps]
            target = [0.9 if u == t else 0.1 / 9 for u in range(10)]
            if form == "expected_probability":
                total += -math.log(sum(q * p for q, p in zip(target, prob, strict=True)))
            else:
                total += -sum(q * math.log(p) for q, p in zip(target, prob, strict=True))
    assert float(loss) == pytest.approx(total / 20, rel=1e-5)


def test_decision_rules() -> None:
    frame_prob = np.full((1, 10, 2, 25), 0.9, dtype=np.float32)
    probabilities = Probabilities(
        ["clip"],
        global_prob=np.full((1, 25), 0.6, np.float32),
        audio_prob=np.full((1, 25), 0.4, np.float32),
        visual_prob=np.full((1, 25), 0.7, np.float32),
        frame_prob=frame_prob,
        modality_attention=np.full((1, 10, 2, 25), 0.5, np.float32),
    )
    audio, visual = decide(probabilities, rule="fused")
    assert audio.all() and visual.all()
    audio, visual = decide(probabilities, rule="modality")
    assert not audio.any() and visual.all()


def test_noise_ratio_files_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "ratios.npz"
    np.savez(path, audio=np.zeros(25), visual=np.full(25, 1.5))
    with pytest.raises(InputError, match=r"ratios.npz: 'visual' holds values outside \[0, 1\]"):
        read_noise_ratios(path)
    np.savez(path, audio=np.zeros(24), visual=np.zeros(25))
    with pytest.raises(InputError, match=r"'audio' has shape \(24,\)"):
        read_noise_ratios(path)
    path.write_text("not a zip")
    with pytest.raises(InputError, match=r"not a readable \.npz"):
        read_noise_ratios(path)


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSplits:
    return make_splits(tmp_path_factory.mktemp("synthetic"))


def test_denoised_training_run(splits: SyntheticSplits, tmp_path: Path) -> None:
    ratios = tmp_path / "ratios.npz"
    write_noise_ratios(ratios, NoiseRatios(np.full(25, 0.5), np.full(25, 0.5)))
    run = tmp_path / "run"
    overrides = train_overrides(splits, run, epochs=2, batch_size=16)  # about 6 positives a class a batch
    overrides.update(
        {
            "denoising": {"noise_ratios": str(ratios), "warmup_epochs": 0.5},
            "loss.terms": {"wsl": 1.0, "audio": 2.0, "visual": 1.0, "contrastive": 1.0},
            "model.segment_dropout": {"visual": 0.5},
            "thresholds.rule": "modality",
            "selection": {"level": "event", "metric": "audio"},
        }
    )
    best = train(load_config(None, overrides))
    records = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert all(r["L_nce"] > 0 for r in records)
    assert 0 < records[1]["dropped_visual"] <= 0.5 and 0 < records[1]["dropped_audio"] <= 0.5
    assert records[1]["dropped_visual"] > records[0]["dropped_visual"]  # warm-up
    assert best["score"] == max(r["val"]["event"]["audio"] for r in records)
    checkpoint = torch.load(run / "best.pt", weights_only=True)
    assert checkpoint["decision"]["rule"] == "modality"
    assert json.loads((run / "val_metrics.json").read_text())["selection"] == "event audio"


def test_parser_without_cross_modal_attention_equals_self_aggregation() -> None:
    torch.manual_seed(0)
    han = build_model(ParserConfig(**TINY_MODEL)).eval()
    selfish = build_model(
        ParserConfig(**TINY_MODEL, audio_aggregation="self", visual_aggregation="self")
    ).eval()
    selfish.load_state_dict(han.state_dict())
    features = random_features(3)
    skipped: ParserOutput = han(features, cross_modal=False)
    assert torch.equal(skipped.global_prob, selfish(features).global_prob)
    assert not torch.allclose(skipped.global_prob, han(features).global_prob)
