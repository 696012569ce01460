"""Checkpoints saved by the original JoMoLD code (MCG-NJU/JoMoLD, ``main.py``): the safe loader, the key
mapping, and the original network's probabilities, segment decisions and noise ratios through ``avvp predict``
and ``avvp estimate-noise``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from official_helpers import jomold_checkpoint, official_state_dict, original_noise_ratios, reference_forward
from train_helpers import SyntheticSplits, make_splits, one_torch_thread  # noqa: F401

from avvp.cli import main
from avvp.data.features import FeatureStore
from avvp.data.labels import read_weak_labels
from avvp.errors import InputError
from avvp.evaluation.files import read_predictions
from avvp.torch_files import RefusedContentError
from avvp.training.checkpoints import load_checkpoint, load_model
from avvp.training.noise_ratios import read_noise_ratios

PROBABILITIES = ("global_prob", "audio_prob", "visual_prob", "frame_prob")


@pytest.fixture(scope="module")
def original(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, torch.Tensor], SyntheticSplits]:
    """An official JoMoLD checkpoint (random weights in the original layout) and a tiny synthetic store."""
    root = tmp_path_factory.mktemp("jomold")
    state = official_state_dict(seed=4, han_encoders=False)
    torch.save(jomold_checkpoint(state), root / "JoMoLD.pt")
    return root / "JoMoLD.pt", state, make_splits(root / "data", num_train=16, num_val=5, seed=5)


def _store_inputs(splits: SyntheticSplits, video_ids: list[str]) -> tuple[torch.Tensor, ...]:
    """The store's features of ``video_ids`` as the original reads them (80 ResNet152 frames per clip)."""
    with FeatureStore(splits.features) as store:
        return tuple(
            torch.from_numpy(store.read(kind, video_ids)) for kind in ("vggish", "resnet152", "r2plus1d")
        )


@pytest.mark.parametrize("cross_modal", [True, False])
def test_jomold_checkpoint_matches_the_original_forward(original, cross_modal: bool) -> None:
    path, state, _ = original
    model = load_model(path, "official-jomold")
    assert model.config.segment_dropout.visual == 0.5 and not model.training
    g = torch.Generator().manual_seed(1)
    audio, frames, motion = (
        torch.randn(3, *shape, generator=g) for shape in ((10, 128), (80, 2048), (10, 512))
    )
    with torch.no_grad():
        output = model({"vggish": audio, "resnet152": frames, "r2plus1d": motion}, cross_modal=cross_modal)
        reference = reference_forward(state, audio, frames, motion, cross_modal=cross_modal)
    for name in PROBABILITIES:
        torch.testing.assert_close(getattr(output, name), reference[name], atol=1e-5, rtol=0)
    other = reference_forward(state, audio, frames, motion, cross_modal=not cross_modal)["global_prob"]
    assert (other - reference["global_prob"]).abs().max() > 1e-3  # the switch matters


def test_predict_and_estimate_noise_give_the_original_outputs(original, tmp_path: Path) -> None:
    path, state, splits = original
    val_csv = splits.annotations_dir / "AVVP_val_pd.csv"
    base = ["--checkpoint", str(path), "--checkpoint-format", "official-jomold", "--features",
            str(splits.features), "--device", "cpu"]  # fmt: skip
    for cross_modal, out in ((True, tmp_path / "pred"), (False, tmp_path / "pred_self")):
        extra = [] if cross_modal else ["--without-cross-modal"]
        assert main(["predict", *base, "--split-csv", str(val_csv), "--output-dir", str(out), *extra]) == 0
        with torch.no_grad():
            reference = reference_forward(
                state, *_store_inputs(splits, splits.val_ids), cross_modal=cross_modal
            )
        with h5py.File(out / "probabilities.h5") as handle:
            for name in PROBABILITIES:
                np.testing.assert_allclose(handle[name][:], reference[name].numpy(), atol=1e-5, rtol=0)
        frame_prob = reference["frame_prob"].numpy()
        for index, modality in enumerate(("audio", "visual")):  # the original's rule: own video-level prob
            expected = (frame_prob[:, :, index] >= 0.5) & (reference[f"{modality}_prob"].numpy() >= 0.5)[
                :, None
            ]
            predicted = read_predictions(out / f"pred_{modality}.csv", splits.val_ids)
            np.testing.assert_array_equal(predicted, expected)
        decision = json.loads((out / "decision.json").read_text())
        assert decision["rule"] == "modality" and decision["source"]["rule"] == "official-jomold default"
        assert decision["cross_modal"] is cross_modal and decision["segment"] == decision["video"] == 0.5

    train_csv = splits.annotations_dir / "AVVP_train.csv"
    output = tmp_path / "noise" / "noise_ratios.npz"
    thresholds = ["--audio-threshold", "0.98", "--visual-threshold", "1.0"]  # near 1: random weights give
    # probabilities close to their class means, so the published 0.6 / 1.8 would find no / every label noisy
    assert (
        main(["estimate-noise", *base, "--split-csv", str(train_csv), "--output", str(output), *thresholds])
        == 0
    )
    with torch.no_grad():
        reference = reference_forward(state, *_store_inputs(splits, splits.train_ids), cross_modal=False)
    labels = read_weak_labels(train_csv).labels
    audio, visual = original_noise_ratios(
        reference["audio_prob"].numpy(), reference["visual_prob"].numpy(), labels, 0.98, 1.0
    )
    assert ((audio > 0) & (audio < 1)).any() and ((visual > 0) & (visual < 1)).any()
    ratios = read_noise_ratios(output)
    np.testing.assert_allclose(ratios.audio, audio, atol=1e-12)
    np.testing.assert_allclose(ratios.visual, visual, atol=1e-12)
    summary = json.loads(output.with_suffix(".json").read_text())
    assert summary["smoothing"] == {"audio": 0.0, "visual": 0.1} and summary["cross_modal"] is False
    assert [row["labels"] for row in summary["classes"]] == labels.sum(axis=0).astype(int).tolist()


class _RunsCode:
    """Pickles as a call of ``os.system``: loading it with plain unpickling would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_the_safe_loader_refuses_code_and_runs_none(tmp_path: Path, original, capsys) -> None:
    _, state, splits = original
    marker = tmp_path / "marker"
    top_level = {**jomold_checkpoint(state), "extra": _RunsCode(marker)}
    in_an_array = {**jomold_checkpoint(state), "numpy_rng": np.array([_RunsCode(marker)], dtype=object)}
    for name, payload in (("top.pt", top_level), ("array.pt", in_an_array)):
        torch.save(payload, tmp_path / name)
        with pytest.raises(
            RefusedContentError, match=r"refused: it refers to '(posix\.system|numpy\.dtypes\.ObjectDType)'"
        ):
            load_checkpoint(tmp_path / name, "official-jomold")
    code = main(
        ["predict", "--checkpoint", str(tmp_path / "top.pt"), "--checkpoint-format", "official-jomold",
         "--features", str(splits.features), "--split-csv", str(splits.annotations_dir / "AVVP_val_pd.csv"),
         "--output-dir", str(tmp_path / "pred"), "--device", "cpu"]
    )  # fmt: skip
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "refused: it refers to 'posix.system'" in error
    assert not marker.exists() and not (tmp_path / "pred").exists()


def test_formats_that_do_not_fit_are_one_line_errors(tmp_path: Path, original) -> None:
    path, state, _ = original
    for wrong in ("official-han", "native"):  # the NumPy RNG state is refused, with a hint
        with pytest.raises(InputError, match="NumPy RNG state: try --checkpoint-format official-jomold"):
            load_model(path, wrong)
    torch.save(
        {k: v for k, v in jomold_checkpoint(state).items() if k != "numpy_rng"}, tmp_path / "no_numpy.pt"
    )
    with pytest.raises(InputError, match=r"a dict with a 'model' entry.*official-jomold"):
        load_model(tmp_path / "no_numpy.pt", "official-han")
    with pytest.raises(InputError, match="not a native avvp checkpoint"):
        load_model(tmp_path / "no_numpy.pt", "native")
    torch.save(state, tmp_path / "bare.pt")
    with pytest.raises(
        InputError,
        match="no 'model' state dict \\(a bare state dict: try --checkpoint-format official-han\\)",
    ):
        load_model(tmp_path / "bare.pt", "official-jomold")
    torch.save(
        {**jomold_checkpoint(state), "model": {**state, "fc_extra.weight": torch.zeros(2)}}, tmp_path / "x.pt"
    )
    with pytest.raises(
        InputError, match=r"not an official JoMoLD \(MMIL_Net\) state dict; unexpected keys: fc_extra"
    ):
        load_model(tmp_path / "x.pt", "official-jomold")
    with pytest.raises(InputError, match="checkpoint not found"):
        load_model(tmp_path / "absent.pt", "official-jomold")


def test_released_layout_features_give_the_original_outputs(original, tmp_path: Path) -> None:
    """LLP's released features (one .npy per YouTube id and kind, as the original's data loader reads them),
    imported with 'avvp import-features', then predicted and noise-estimated from an official checkpoint."""
    path, state, _ = original
    rng = np.random.default_rng(11)
    ids = [f"{chr(97 + i) * 11}_{10 * i}_{10 * i + 10}" for i in range(6)]
    shapes = {"vggish": (10, 128), "res152": (80, 2048), "r2plus1d_18": (10, 512)}
    arrays = {folder: {} for folder in shapes}
    for folder, shape in shapes.items():
        (tmp_path / folder).mkdir()
        for vid in ids:
            arrays[folder][vid] = rng.standard_normal(shape).astype(np.float32)
            np.save(tmp_path / folder / f"{vid[:11]}.npy", arrays[folder][vid])
    split = tmp_path / "clips.csv"
    labels = ["Speech", "Dog", "Speech,Dog", "Cat", "Speech", "Dog,Cat"]
    split.write_text(
        "filename\tevent_labels\n" + "".join(f"{v}\t{c}\n" for v, c in zip(ids, labels, strict=True))
    )
    folders = [
        "--vggish", str(tmp_path / "vggish"), "--res152", str(tmp_path / "res152"),
        "--r2plus1d", str(tmp_path / "r2plus1d_18"),
    ]  # fmt: skip
    store = tmp_path / "features.h5"
    assert main(["import-features", "--clips", str(split), "--output", str(store), *folders]) == 0
    base = ["--checkpoint", str(path), "--checkpoint-format", "official-jomold", "--features", str(store),
            "--split-csv", str(split), "--device", "cpu"]  # fmt: skip
    assert main(["predict", *base, "--output-dir", str(tmp_path / "pred")]) == 0

    inputs = [torch.from_numpy(np.stack([arrays[f][v] for v in ids])) for f in shapes]
    with torch.no_grad():
        reference = reference_forward(state, *inputs, cross_modal=True)
        estimator = reference_forward(state, *inputs, cross_modal=False)
    with h5py.File(tmp_path / "pred" / "probabilities.h5") as handle:
        assert [v.decode() for v in handle["video_id"][:]] == ids
        for name in PROBABILITIES:
            np.testing.assert_allclose(handle[name][:], reference[name].numpy(), atol=1e-5, rtol=0)
    frame_prob = reference["frame_prob"].numpy()
    for index, modality in enumerate(("audio", "visual")):
        expected = (frame_prob[:, :, index] >= 0.5) & (reference[f"{modality}_prob"].numpy() >= 0.5)[:, None]
        np.testing.assert_array_equal(
            read_predictions(tmp_path / "pred" / f"pred_{modality}.csv", ids), expected
        )

    output = tmp_path / "noise_ratios.npz"
    thresholds = ["--audio-threshold", "0.98", "--visual-threshold", "1.0"]
    assert main(["estimate-noise", *base, "--output", str(output), *thresholds]) == 0
    weak = read_weak_labels(split).labels
    audio, visual = original_noise_ratios(
        estimator["audio_prob"].numpy(), estimator["visual_prob"].numpy(), weak, 0.98, 1.0
    )
    ratios = read_noise_ratios(output)
    np.testing.assert_allclose(ratios.audio, audio, atol=1e-12)
    np.testing.assert_allclose(ratios.visual, visual, atol=1e-12)
