"""Training on segment-level pseudo-labels (VALOR): the loss terms, their file, AdamW with the warm-up cosine
schedule, gradient clipping, and runs on the synthetic set (with resume across the end of the warm-up)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import (  # noqa: F401
    CONFIGS,
    TINY_MODEL,
    SyntheticSplits,
    load_shipped,
    make_splits,
    one_torch_thread,
    random_features,
    train_overrides,
)

from avvp.data.dataset import Batch
from avvp.data.labels import CLASSES, read_weak_labels
from avvp.data.pseudo_labels import PseudoLabelError, read_split_pseudo_labels, write_pseudo_labels
from avvp.errors import InputError
from avvp.models.output import ParserOutput
from avvp.training.config import OptimizerConfig, load_config
from avvp.training.losses import LOSS_TERMS, LossConfig, Objective, pseudo_label_targets
from avvp.training.noise_ratios import NoiseRatios, write_noise_ratios
from avvp.training.optimisation import build_optimisation, warmup_cosine_lr
from avvp.training.procedures import build_procedure
from avvp.training.trainer import train

VALOR_LOSS = {"loss.terms": {"wsl": 1.0, "pseudo_audio": 1.0, "pseudo_visual": 1.0}}
VALOR_OPTIMISER = {
    "optimizer.name": "adamw",
    "optimizer.weight_decay": 1e-3,
    "optimizer.betas": [0.5, 0.999],
    "optimizer.schedule": "warmup_cosine",
    "optimizer.warmup_epochs": 2,
    "optimizer.lr_min": 1e-5,
    "optimizer.grad_clip": 1.0,
}


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSplits:
    return make_splits(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="module")
def pseudo_file(splits: SyntheticSplits, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pseudo-labels of the train clips: every segment of the clip's weak labels, in both modalities."""
    weak = read_weak_labels(splits.annotations_dir / "AVVP_train.csv")
    segments = np.repeat(weak.labels[:, None, :], 10, axis=1).astype(np.float32)
    path = tmp_path_factory.mktemp("teacher") / "pseudo_labels.h5"
    write_pseudo_labels(path, weak.video_ids, segments, segments, CLASSES, {"teacher": "synthetic"})
    return path


def history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def _output(logits: torch.Tensor) -> ParserOutput:
    prob = torch.full((1, 25), 0.5)
    frames = torch.zeros(1, 10, 2, 25)
    embedding = torch.zeros(1, 10, 4)
    return ParserOutput(prob, prob, prob, frames, frames, frames, embedding, embedding, frame_logits=logits)


def test_pseudo_label_terms_match_a_hand_computation() -> None:
    logits = torch.zeros(1, 10, 2, 25)
    logits[0, 0, 0, 0] = 2.0  # audio, target 1: log(1 + e^-2)
    logits[0, 1, 0, 1] = -1.0  # audio, target 1: log(1 + e^1); 0 removed: log(1 + e^-1)
    logits[0, 3, 1, 2] = 1.5  # visual, target 0: log(1 + e^1.5)
    audio, visual = torch.zeros(1, 10, 25), torch.zeros(1, 10, 25)
    audio[0, 0, 0] = audio[0, 1, 1] = 1.0
    batch = Batch(
        torch.tensor([0]), ["x"], {}, torch.zeros(1, 25), pseudo_labels={"audio": audio, "visual": visual}
    )
    others = 250 - 2
    expected_audio = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(1)) + others * math.log(2)) / 250
    expected_visual = (math.log(1 + math.exp(1.5)) + 249 * math.log(2)) / 250
    total, terms = Objective(LossConfig(terms={"pseudo_audio": 1.0, "pseudo_visual": 0.5}))(
        _output(logits), batch
    )
    assert terms["L_pseudo_a"].item() == pytest.approx(expected_audio, rel=1e-6)
    assert terms["L_pseudo_v"].item() == pytest.approx(expected_visual, rel=1e-6)
    assert total.item() == pytest.approx(expected_audio + 0.5 * expected_visual, rel=1e-6)
    removed = torch.zeros(1, 25, dtype=torch.bool)
    removed[0, 1] = True  # a label procedure removed class 1 from audio: its segments' targets become 0
    masked = LOSS_TERMS["pseudo_audio"][1](LossConfig())(_output(logits), batch.without({"audio": removed}))
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1)) + others * math.log(2)) / 250
    assert masked.item() == pytest.approx(expected, rel=1e-6)


def test_pseudo_label_terms_need_their_file_and_the_file_its_terms(splits, pseudo_file, tmp_path) -> None:
    base = train_overrides(splits, tmp_path / "run")
    with pytest.raises(InputError, match=r"\['pseudo_audio', 'pseudo_visual'\].*set pseudo_labels"):
        load_config(None, {**base, **VALOR_LOSS})
    with pytest.raises(InputError, match="pseudo_labels is read only by the loss terms"):
        load_config(None, {**base, "pseudo_labels": str(pseudo_file)})
    with pytest.raises(InputError, match=r"optimizer\.name"):
        load_config(None, {**base, "optimizer.name": "sgd"})
    with pytest.raises(InputError, match=r"betas \[0.5, 1.0\]"):
        load_config(None, {**base, "optimizer.betas": [0.5, 1.0]})
    with pytest.raises(InputError, match="lr_min"):
        load_config(None, {**base, "optimizer.schedule": "warmup_cosine", "optimizer.lr_min": 1.0})
    with_file = {**base, **VALOR_LOSS, "pseudo_labels": str(pseudo_file)}
    load_config(None, {**with_file, "denoising": {"noise_ratios": "r.npz"}})  # combinations that are allowed
    load_config(None, {**with_file, "refined_labels": "refined.npz"})
    load_config(None, {**with_file, "gradient_modulation": {"gamma": 0.1}})
    load_config(None, {**with_file, "co_training": {"method": "jocor", "noise_ratios": "r.npz"}})


def test_pseudo_label_file_must_cover_the_split_in_llp_order(splits, pseudo_file, tmp_path) -> None:
    weak = read_weak_labels(splits.annotations_dir / "AVVP_train.csv")
    read = read_split_pseudo_labels(pseudo_file, weak.video_ids[::-1], weak.labels[::-1])
    assert read["audio"].shape == (len(weak), 10, 25)
    np.testing.assert_array_equal(read["visual"][0, 0], weak.labels[-1])
    with pytest.raises(
        PseudoLabelError, match=r"pseudo_labels.h5: 1 clip\(s\) of the training split have no"
    ):
        read_split_pseudo_labels(
            pseudo_file, [*weak.video_ids, "zz000000000_0_10"], np.zeros((len(weak) + 1, 25))
        )
    segments = np.repeat(weak.labels[:, None, :], 10, axis=1)
    shuffled = tmp_path / "shuffled.h5"
    write_pseudo_labels(shuffled, weak.video_ids, segments, segments, CLASSES[::-1], {})
    with pytest.raises(PseudoLabelError, match=r"shuffled\.h5: its classes are not the 25 LLP classes"):
        read_split_pseudo_labels(shuffled, weak.video_ids, weak.labels)
    other = tmp_path / "other.h5"
    write_pseudo_labels(other, weak.video_ids, np.ones_like(segments), segments, CLASSES, {})
    with pytest.raises(PseudoLabelError, match=r"other\.h5: .* classes outside their weak labels"):
        read_split_pseudo_labels(other, weak.video_ids, weak.labels)


def test_warmup_cosine_follows_valors_formula_epoch_by_epoch() -> None:
    config = OptimizerConfig(schedule="warmup_cosine", lr=1e-3, lr_min=1e-5, warmup_epochs=3)
    epochs = 7
    expected = [1e-3 / 3, 2e-3 / 3]
    expected += [1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * (e - 3) / 4)) for e in range(3, 8)]
    assert [warmup_cosine_lr(e, epochs, config) for e in range(1, 8)] == pytest.approx(expected, rel=1e-12)
    assert expected[2] == pytest.approx(1e-3) and expected[-1] == pytest.approx(1e-5)
    layer = torch.nn.Linear(2, 1)
    optimisation = build_optimisation(layer.parameters(), config, torch.device("cpu"), False, epochs)
    seen = []
    for _ in range(epochs):
        seen.append(optimisation.lr)
        optimisation.optimizer.step()
        optimisation.scheduler.step()
    assert seen == pytest.approx(expected, rel=1e-12)
    assert isinstance(optimisation.optimizer, torch.optim.Adam)
    adamw = build_optimisation(
        layer.parameters(), OptimizerConfig(name="adamw"), torch.device("cpu"), False, 1
    )
    assert isinstance(adamw.optimizer, torch.optim.AdamW)


def test_gradient_clipping_engages() -> None:
    layer = torch.nn.Linear(3, 2)
    config = OptimizerConfig(grad_clip=0.5)
    optimisation = build_optimisation(layer.parameters(), config, torch.device("cpu"), False, 1)
    (100.0 * layer(torch.ones(4, 3)).sum()).backward()
    before = torch.cat([p.grad.flatten() for p in layer.parameters()]).norm()
    reported = optimisation.clip(layer)["grad_norm"]
    after = torch.cat([p.grad.flatten() for p in layer.parameters()]).norm()
    assert reported.item() == pytest.approx(before.item()) and before > 10
    assert after.item() == pytest.approx(0.5, rel=1e-4)


def test_valor_training_runs_and_resumes_exactly_across_the_warm_up(splits, pseudo_file, tmp_path) -> None:
    settings = {**VALOR_LOSS, **VALOR_OPTIMISER, "pseudo_labels": str(pseudo_file)}
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(load_config(None, train_overrides(splits, straight, epochs=4, **settings)))
    records = history(straight)
    config = load_config(None, train_overrides(splits, straight, epochs=4, **settings)).optimizer
    assert [r["lr"] for r in records] == pytest.approx([warmup_cosine_lr(e, 4, config) for e in range(1, 5)])
    assert (
        records[-1]["L_pseudo_a"] < records[0]["L_pseudo_a"]
        and records[-1]["L_pseudo_v"] < records[0]["L_pseudo_v"]
    )
    assert "L_a" not in records[0] and all(r["grad_norm"] > 0 for r in records)
    # two epochs (the whole warm-up), then two more of cosine after --resume: the same weights
    train(load_config(None, train_overrides(splits, resumed, epochs=2, **settings)))
    train(load_config(None, train_overrides(splits, resumed, epochs=4, **settings)), resume=True)
    a = torch.load(straight / "last.pt", weights_only=True)
    b = torch.load(resumed / "last.pt", weights_only=True)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert [r["lr"] for r in history(resumed)] == [r["lr"] for r in records]


def test_resume_refuses_pseudo_labels_rewritten_in_place(splits, pseudo_file, tmp_path) -> None:
    """The file's path is the same, its content is not: the run must not go on on other targets."""
    teacher = tmp_path / "pseudo_labels.h5"
    teacher.write_bytes(pseudo_file.read_bytes())
    settings = {**VALOR_LOSS, "pseudo_labels": str(teacher)}
    run = tmp_path / "run"
    train(load_config(None, train_overrides(splits, run, epochs=1, **settings)))
    before = (run / "last.pt").read_bytes()
    weak = read_weak_labels(splits.annotations_dir / "AVVP_train.csv")
    silent = np.zeros((len(weak.video_ids), 10, 25), dtype=np.float32)  # another teacher: nothing heard
    write_pseudo_labels(teacher, weak.video_ids, silent, silent, CLASSES, {"teacher": "other"})
    with pytest.raises(
        InputError, match=r"pseudo_labels \(.*pseudo_labels\.h5\): the file's content differs"
    ):
        train(load_config(None, train_overrides(splits, run, epochs=2, **settings)), resume=True)
    assert (run / "last.pt").read_bytes() == before
    teacher.write_bytes(pseudo_file.read_bytes())  # the file the run trained on: it resumes
    train(load_config(None, train_overrides(splits, run, epochs=2, **settings)), resume=True)
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 2


def test_pseudo_label_run_refuses_a_file_without_the_split(splits, tmp_path) -> None:
    weak = read_weak_labels(splits.annotations_dir / "AVVP_train.csv")
    segments = np.repeat(weak.labels[1:, None, :], 10, axis=1)
    partial = tmp_path / "partial.h5"
    write_pseudo_labels(partial, weak.video_ids[1:], segments, segments, CLASSES, {})
    config = load_config(
        None, train_overrides(splits, tmp_path / "run", epochs=1, **VALOR_LOSS, pseudo_labels=str(partial))
    )
    with pytest.raises(PseudoLabelError, match=f"partial.h5: 1 clip.*{weak.video_ids[0]}"):
        train(config)


def test_valor_recipes_hold_the_published_settings() -> None:
    config = load_shipped("valor_han.yaml")
    optimizer = config.optimizer
    assert (optimizer.name, optimizer.lr, optimizer.weight_decay, optimizer.betas) == (
        "adamw",
        1e-4,
        1e-3,
        (0.5, 0.999),
    )
    assert (optimizer.schedule, optimizer.warmup_epochs, optimizer.lr_min, optimizer.grad_clip) == (
        "warmup_cosine",
        10,
        1e-6,
        1.0,
    )
    assert config.loss.terms == {"wsl": 1.0, "pseudo_audio": 1.0, "pseudo_visual": 1.0}
    assert (config.epochs, config.batch_size, config.seed) == (60, 64, 1000)
    assert (config.model.d_model, config.model.num_heads, config.model.feedforward) == (512, 8, 1024)
    valor = load_shipped("valor.yaml").model
    assert (valor.num_layers, valor.stream_order, valor.d_model, valor.num_heads) == (1, "sequential", 512, 8)
    plus = load_shipped("valor_plus.yaml")
    assert (plus.model.num_layers, plus.model.d_model, plus.seed) == (4, 256, 64)
    assert (plus.optimizer.lr, plus.optimizer.lr_min) == (3e-4, 3e-6)
    plus_plus = load_shipped("valor_plus_plus.yaml")
    assert plus_plus.model.inputs.model_dump() == {"audio": "clap", "visual": "clip", "motion": "r2plus1d"}
    assert (plus_plus.seed, plus_plus.model.d_model, plus_plus.model.num_layers) == (87, 256, 4)


def test_co_training_steps_both_networks_on_the_pseudo_labels(tmp_path) -> None:
    ratios = tmp_path / "ratios.npz"
    write_noise_ratios(ratios, NoiseRatios(np.full(25, 0.5), np.full(25, 0.5)))
    overrides = {
        **VALOR_LOSS,
        "pseudo_labels": "p.h5",
        "co_training": {"method": "co_teaching", "warmup_epochs": 0},
    }
    overrides["co_training"]["noise_ratios"] = str(ratios)
    config = load_config(None, {**overrides, **{f"model.{k}": v for k, v in TINY_MODEL.items()}})
    procedure = build_procedure(config, torch.device("cpu"))
    labels = torch.zeros(4, 25)
    labels[:, 3] = 1.0
    pseudo = {m: labels[:, None, :].expand(4, 10, 25).clone() for m in ("audio", "visual")}
    batch = Batch(torch.arange(4), list("abcd"), random_features(4), labels, pseudo_labels=pseudo)
    result = procedure.step(procedure.module.train(), batch, 0, 1, False)
    assert {"L_wsl", "L_pseudo_a", "L_pseudo_v"} <= set(result.terms) and len(result.trained) == 2
    # each network's selection removed 2 of the 4 positives of class 3: their segments' targets are 0
    for _, _, selected in result.trained:
        assert int(pseudo_label_targets(selected, "audio")[:, 0, 3].sum()) == 2
