"""Checkpoints saved by the original HAN code (YapengTian/AVVP-ECCV20, ``MMIL_Net``) load and predict.

The state dict is built from the original key names and shapes (random values; ``official_helpers``), and
the loaded model is compared with a direct re-computation of the original forward pass from those weights.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import pytest
import torch
from official_helpers import official_state_dict, reference_forward
from train_helpers import make_splits, one_torch_thread  # noqa: F401

from avvp.cli import main
from avvp.errors import InputError
from avvp.training.checkpoints import checkpoint_decision, checkpoint_features, load_model


def test_official_state_dict_matches_the_original_forward(tmp_path: Path, caplog) -> None:
    state = official_state_dict()
    path = tmp_path / "MMIL_Net.pt"
    torch.save(state, path)
    with caplog.at_level("INFO"):
        model = load_model(path, "official-han")
    assert "ignored" in caplog.text and "audio_encoder.layers.0.self_attn.in_proj_weight" in caplog.text
    g = torch.Generator().manual_seed(1)
    audio, frames, motion = (
        torch.randn(2, 10, 128, generator=g),
        torch.randn(2, 80, 2048, generator=g),
        torch.randn(2, 10, 512, generator=g),
    )
    with torch.no_grad():
        output = model({"vggish": audio, "resnet152": frames, "r2plus1d": motion})
        reference = reference_forward(state, audio, frames, motion)
    torch.testing.assert_close(output.frame_prob, reference["frame_prob"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(output.global_prob, reference["global_prob"], atol=1e-5, rtol=1e-4)


def test_official_checkpoint_predicts_through_the_cli(tmp_path: Path, caplog) -> None:
    splits = make_splits(tmp_path / "data", num_train=2, num_val=4)
    state = {f"module.{k}": v for k, v in official_state_dict(seed=2).items()}  # saved from DataParallel
    torch.save(state, tmp_path / "han.pt")
    assert checkpoint_features(tmp_path / "han.pt") is None and checkpoint_decision(state) is None
    out = tmp_path / "pred"
    caplog.set_level(logging.INFO)
    code = main(
        ["predict", "--checkpoint", str(tmp_path / "han.pt"), "--checkpoint-format", "official-han",
         "--features", str(splits.features), "--split-csv", str(splits.annotations_dir / "AVVP_val_pd.csv"),
         "--output-dir", str(out), "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    assert "han.pt records no feature identity" in caplog.text
    with h5py.File(out / "probabilities.h5") as handle:
        assert handle["frame_prob"].shape == (4, 10, 2, 25)
    assert (out / "pred_audio.csv").read_text().startswith("filename\tonset\toffset\tevent_labels")


def test_wrong_official_architecture_is_rejected(tmp_path: Path) -> None:
    state = official_state_dict()
    del state["hat_encoder.layers.0.cm_attn.in_proj_weight"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(InputError, match=r"missing: block\.layer\.cross_attention\.in_proj_weight"):
        load_model(tmp_path / "missing.pt", "official-han")
    state = official_state_dict()
    state["fc_extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "extra.pt")
    with pytest.raises(InputError, match=r"not an official HAN .* fc_extra\.weight"):
        load_model(tmp_path / "extra.pt", "official-han")
    state = official_state_dict()
    state["fc_a.weight"] = torch.zeros(512, 64)
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(InputError, match=r"wrong shape: projections\.audio\.weight \(512, 64\)"):
        load_model(tmp_path / "shape.pt", "official-han")
    with pytest.raises(InputError, match="try --checkpoint-format official-han"):
        load_model(tmp_path / "shape.pt", "native")
