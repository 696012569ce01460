"""AVG pretraining: the grounding losses on hand-computed cases, the pretraining run (loss falls, resume,
errors), and the two uses of the encoder in a parser (frozen "Pretrained", fine-tuned "Pretrain E2E")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_helpers import (  # noqa: F401
    SyntheticSplits,
    make_splits,
    one_torch_thread,
    restore_determinism,
    train_overrides,
)

from avvp.cli import main
from avvp.errors import InputError
from avvp.models import build_model
from avvp.pretraining.config import PretrainConfig
from avvp.pretraining.losses import grounding_losses, margin_loss
from avvp.pretraining.trainer import pretrain
from avvp.training.checkpoints import load_model
from avvp.training.config import load_config, load_validated
from avvp.training.trainer import train

CONFIGS = Path(__file__).resolve().parents[1] / "resources" / "configs"
TINY_ENCODER = {"d_model": 16, "layers": 1, "num_heads": 2, "feedforward": 32}


def test_margin_loss_by_hand() -> None:
    similarity = torch.tensor([[[0.9, 0.5], [0.1, 0.3]]])
    positive = torch.tensor([[[True, True], [False, False]]])
    mask = torch.ones(2, 2, dtype=torch.bool)
    # p = 0.8, n = 0.2: positives cost [0.8 - s]_+ = 0, 0.3; negatives cost [s - 0.2]_+ = 0, 0.1
    torch.testing.assert_close(margin_loss(similarity, positive, mask, 0.8, 0.2), torch.tensor(0.4 / 4))
    diagonal_only = torch.eye(2, dtype=torch.bool)
    torch.testing.assert_close(
        margin_loss(similarity, positive, diagonal_only, 0.8, 0.2), torch.tensor(0.1 / 2)
    )


def test_grounding_losses_by_hand() -> None:
    # two snippets; audio embeddings orthogonal, visual identical; GT links nothing (identity)
    audio = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    visual = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    graphs = torch.eye(2, dtype=torch.bool)[None]
    p, n = 0.8, 0.2
    losses = grounding_losses(audio, visual, graphs, "multi", p, n)
    # u-avg, off-diagonal negative pairs: audio cos 0 -> 0; visual cos 1 -> 0.8 (mean over its 2 pairs)
    torch.testing.assert_close(losses["L_u"], torch.tensor(0.0 + 0.8))
    # x-avg, audio-visual: cos(a_i, v_j) = [[1, 1], [0, 0]]; GT(0,0), GT(1,1) positive:
    # (0,0) positive cos 1 -> 0; (0,1) negative cos 1 -> 0.8; (1,0) negative cos 0 -> 0; (1,1) positive cos 0 -> 0.8
    # visual-audio is its transpose (same mean)
    torch.testing.assert_close(losses["L_x"], torch.tensor(1.6 / 4 * 2))
    torch.testing.assert_close(losses["L_avg"], losses["L_u"] + losses["L_x"])
    assert set(grounding_losses(audio, visual, graphs, "uni", p, n)) == {"L_u", "L_avg"}
    assert set(grounding_losses(audio, visual, graphs, "cross", p, n)) == {"L_x", "L_avg"}


@pytest.fixture(scope="module")
def pretraining_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticSplits, Path]:
    root = tmp_path_factory.mktemp("avg")
    splits = make_splits(root, num_train=24, num_val=8)
    graphs = root / "graphs.h5"
    code = main(
        ["build-graphs", "--features", str(splits.features), "--output", str(graphs),
         "--visual-quantile", "0.8", "--audio-quantile", "0.8"]
    )  # fmt: skip
    assert code == 0
    return splits, graphs


def pretrain_config(
    splits: SyntheticSplits, graphs: Path, output_dir: Path, **extra: object
) -> PretrainConfig:
    overrides = {
        "features": str(splits.features),
        "graphs": str(graphs),
        "output_dir": str(output_dir),
        "device": "cpu",
        "batch_size": 8,
        "optimizer.lr": 1e-3,
        **{f"encoder.{k}": v for k, v in TINY_ENCODER.items()},
        **extra,
    }
    return load_validated(PretrainConfig, CONFIGS / "pretraining" / "avg.yaml", overrides)


@pytest.mark.parametrize("variant", ["uni", "cross", "multi"])
def test_pretraining_loss_falls(pretraining_data, tmp_path: Path, variant: str) -> None:
    splits, graphs = pretraining_data
    pretrain(pretrain_config(splits, graphs, tmp_path, epochs=6, **{"loss.variant": variant}))
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == list(range(1, 7))
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert 0 < history[0]["positive_pair_share"] < 1
    encoder = torch.load(tmp_path / "encoder.pt", weights_only=True)
    assert encoder["format"] == "avvp-avg-encoder/1" and encoder["variant"] == variant


@pytest.mark.usefixtures("restore_determinism")
def test_pretraining_resume_is_identical(pretraining_data, tmp_path: Path) -> None:
    splits, graphs = pretraining_data
    pretrain(pretrain_config(splits, graphs, tmp_path / "once", epochs=2, deterministic=True))
    pretrain(pretrain_config(splits, graphs, tmp_path / "twice", epochs=1, deterministic=True))
    pretrain(pretrain_config(splits, graphs, tmp_path / "twice", epochs=2, deterministic=True), resume=True)
    once = torch.load(tmp_path / "once" / "encoder.pt", weights_only=True)["state_dict"]
    twice = torch.load(tmp_path / "twice" / "encoder.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(once[k], twice[k]) for k in once)
    with pytest.raises(InputError, match="a run already exists here"):
        pretrain(pretrain_config(splits, graphs, tmp_path / "once", epochs=2))


def _parser_run(
    splits: SyntheticSplits, encoder: Path, output_dir: Path, config: str, **extra: object
) -> Path:
    overrides = train_overrides(splits, output_dir, epochs=2, pretrained_encoder=str(encoder))
    overrides.update({f"model.input_encoder.{k}": v for k, v in TINY_ENCODER.items()})
    overrides["model.heads.modality_discriminator.hidden"] = 16
    overrides.update(extra)
    train(load_config(CONFIGS / config, overrides))
    return output_dir / "best.pt"


def test_pretrained_encoder_is_frozen_and_e2e_fine_tunes_it(pretraining_data, tmp_path: Path) -> None:
    splits, graphs = pretraining_data
    pretrain(pretrain_config(splits, graphs, tmp_path / "avg", epochs=1))
    pretrained = torch.load(tmp_path / "avg" / "encoder.pt", weights_only=True)["state_dict"]

    def encoder_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
        state = torch.load(checkpoint, weights_only=True)["state_dict"]
        return {
            k.removeprefix("input_encoder."): v for k, v in state.items() if k.startswith("input_encoder.")
        }

    frozen = encoder_weights(
        _parser_run(splits, tmp_path / "avg" / "encoder.pt", tmp_path / "frozen", "pretrained.yaml")
    )
    assert frozen.keys() == pretrained.keys()
    assert all(torch.equal(frozen[k], pretrained[k]) for k in pretrained)
    tuned = encoder_weights(
        _parser_run(splits, tmp_path / "avg" / "encoder.pt", tmp_path / "e2e", "pretrain_e2e.yaml")
    )
    assert any(not torch.equal(tuned[k], pretrained[k]) for k in pretrained)
    # the parser's own checkpoint is self-contained: predicting needs no encoder.pt
    (tmp_path / "avg" / "encoder.pt").unlink()
    assert load_model(tmp_path / "e2e" / "best.pt").input_encoder is not None


def test_frozen_encoder_stays_in_eval_mode() -> None:
    config = load_config(CONFIGS / "pretrained.yaml").model
    model = build_model(config).train()
    assert model.training and not model.input_encoder.training
    assert not any(p.requires_grad for p in model.input_encoder.parameters())


def test_encoder_sizes_must_match_the_pretrained_checkpoint(pretraining_data, tmp_path: Path) -> None:
    splits, graphs = pretraining_data
    pretrain(pretrain_config(splits, graphs, tmp_path / "avg", epochs=1))
    with pytest.raises(InputError, match=r"sizes differ from model\.input_encoder \(d_model 16 vs 32"):
        _parser_run(splits, tmp_path / "avg" / "encoder.pt", tmp_path / "run", "pretrained.yaml",
                    **{"model.input_encoder.d_model": 32})  # fmt: skip
    with pytest.raises(InputError, match=r"pretrained_encoder needs model\.input_encoder"):
        load_config(CONFIGS / "han.yaml", {"pretrained_encoder": "x.pt"})
