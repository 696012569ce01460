"""Forward plans: per-device defaults, ``--forward`` overrides, features independent of the plan in float32,
the reduced-precision check, and calibration."""

from __future__ import annotations

import logging

import pytest
import torch
from extract_helpers import make_clip

from avvp.cli import main
from avvp.data.features import FeatureStore
from avvp.errors import InputError
from extractors.calibration import time_plans
from extractors.forward_plan import (
    BFLOAT16,
    CHANNELS_LAST,
    CHANNELS_LAST_3D,
    CONTIGUOUS,
    FLOAT16,
    ForwardPlan,
    check_precision,
    parse_forward_option,
    relative_error,
)
from extractors.networks import NetworkOptions, build_networks
from extractors.pipeline import run_network

KINDS = ["resnet152", "r2plus1d", "vggish"]  # the kinds asked for; other store kinds are refused
CPU = torch.device("cpu")
ROUNDING = 5e-6
"""Largest change of the float32 features, relative to the largest, a batch size other than the default may
cause (measured here at most 1.5e-6 at the test's 32 px, 3e-7 at the published sizes)."""


def _networks(size: int = 32, **forward: ForwardPlan):
    options = NetworkOptions(
        weights=dict.fromkeys(KINDS, "random"), image_size=size, clip_size=size, forward=forward
    )
    return {net.kind: net for net in build_networks(KINDS, options, CPU)}


def _rows(network, clips: int, seed: int = 0) -> torch.Tensor:
    """Input rows of ``clips`` clips: random uint8 frames prepared by the network, or random audio."""
    generator = torch.Generator().manual_seed(seed)
    if network.kind == "vggish":
        audio = torch.rand(clips, 160000, generator=generator) * 2 - 1
        return torch.cat([network.prepare(a.numpy()) for a in audio])
    frames = torch.randint(0, 256, (clips, 80, 40, 48, 3), dtype=torch.uint8, generator=generator)
    return torch.cat([network.prepare(f.numpy()) for f in frames])


def test_forward_option_reads_batch_layout_and_precision():
    plans = parse_forward_option(
        ["resnet152=8/channels_last", "r2plus1d=2/channels_last_3d/bfloat16,vggish=40"], KINDS
    )
    assert plans == {
        "resnet152": ForwardPlan(8, CHANNELS_LAST),
        "r2plus1d": ForwardPlan(2, CHANNELS_LAST_3D, BFLOAT16),
        "vggish": ForwardPlan(40, CONTIGUOUS),
    }
    assert parse_forward_option(None, KINDS) == {}
    for bad, message in [
        ("resnet152", "expected KIND=BATCH"),
        ("clip=8", "kind 'clip' is not extracted"),
        ("resnet152=0", "batch '0' is not a positive integer"),
        ("resnet152=8/nhwc", "layout must be one of"),
        ("resnet152=8/channels_last/half", "precision one of"),
        ("resnet152=8/a/b/c", "expected KIND=BATCH"),
    ]:
        with pytest.raises(InputError, match=message):
            parse_forward_option([bad], KINDS)


def test_defaults_per_device_and_size_and_unsupported_overrides():
    published = _networks(size=112)
    assert published["r2plus1d"].plan == ForwardPlan(2, CHANNELS_LAST_3D)
    assert published["vggish"].plan == ForwardPlan(40)
    assert next(published["r2plus1d"].model.parameters()).is_contiguous(memory_format=torch.channels_last_3d)
    demo = _networks(size=32)
    assert demo["resnet152"].plan == ForwardPlan(8, CONTIGUOUS)  # channels-last only from 112 px
    assert demo["resnet152"].spec.default(torch.device("cuda")) == ForwardPlan(128, CHANNELS_LAST, FLOAT16)
    with pytest.raises(InputError, match="vggish: layout 'channels_last' not supported"):
        _networks(vggish=ForwardPlan(40, CHANNELS_LAST))


@pytest.mark.parametrize("kind", KINDS)
def test_float32_features_do_not_depend_on_the_batch(kind):
    """In each layout, the default CPU batch gives, bit for bit on this CPU, the features of one forward of
    all of a batch's rows (what extraction did before plans: 80 frames, 10 snippets, the batch's 40
    examples per call); the other candidate batches agree to float32 rounding (one R(2+1)D snippet or fewer
    than 40 VGGish examples per call change the last bits: oneDNN picks other kernels)."""
    network = _networks()[kind]
    clips = 4 if kind == "vggish" else 1
    rows = _rows(network, clips)
    default = network.plan
    for layout in network.spec.layouts:
        whole = run_network(network.with_plan(ForwardPlan(len(rows) // network.group, layout)), rows, clips)
        planned = run_network(network.with_plan(ForwardPlan(default.batch, layout)), rows, clips)
        assert (planned == whole).all(), layout
    last_layout = network.spec.layouts[-1]  # ``whole`` is in it
    for batch in set(network.spec.batches) - {default.batch, len(rows) // network.group}:
        features = run_network(network.with_plan(ForwardPlan(batch, last_layout)), rows, clips)
        assert relative_error(torch.from_numpy(features), torch.from_numpy(whole)) <= ROUNDING, batch


def test_a_reduced_precision_beyond_the_tolerance_falls_back_to_float32(caplog):
    network = _networks(vggish=ForwardPlan(10, CONTIGUOUS, BFLOAT16))["vggish"]
    rows = _rows(network, 1)
    with caplog.at_level(logging.WARNING):
        strict = check_precision(network, rows, tolerance=0.0)
    assert strict.plan == ForwardPlan(10) and "bfloat16 moves the features" in caplog.text
    assert check_precision(network, rows, tolerance=1.0).plan.precision == BFLOAT16
    bf16 = run_network(network, rows, 1)
    fp32 = run_network(strict, rows, 1)
    assert not (bf16 == fp32).all()  # autocast really ran in bfloat16


def test_calibration_times_every_candidate_fastest_first():
    network = _networks()["vggish"]
    timings = time_plans(network, _rows(network, 1))
    assert sorted(t.plan.batch for t in timings) == [10, 20, 40]
    seconds = [t.seconds_per_clip for t in timings]
    assert seconds == sorted(seconds) and seconds[0] > 0


def test_extract_forward_and_calibrate_options(tmp_path, capsys):
    """--forward and --calibrate change how the networks run, not the features (to float32 rounding: a
    layout or batch other than the default may change the last bits); an unsupported plan is one line."""
    clip = make_clip(tmp_path / "abcdefghijk_0_10.mp4", seconds=10.0, fps=8)
    stores = {}
    for name, extra in {
        "default": [],
        "planned": ["--forward", "vggish=10", "--forward", "r2plus1d=5/channels_last_3d"],
        "calibrated": ["--calibrate"],
    }.items():
        stores[name] = tmp_path / f"{name}.h5"
        argv = ["extract", "--videos", str(clip), "--output", str(stores[name]), "--weights", "random"]
        argv += ["--kinds", "r2plus1d,vggish", "--clip-size", "16", "--device", "cpu", "--no-progress"]
        assert main(argv + extra) == 0
    printed = capsys.readouterr().out
    assert "fastest here: --forward r2plus1d=" in printed and " --forward vggish=" in printed
    with FeatureStore(stores["default"]) as default:
        for name in ("planned", "calibrated"):
            with FeatureStore(stores[name]) as other:
                for kind in ("r2plus1d", "vggish"):
                    planned, reference = (
                        torch.from_numpy(store.read(kind, ["abcdefghijk_0_10"])) for store in (other, default)
                    )
                    assert relative_error(planned, reference) <= ROUNDING, (name, kind)
    assert main([*argv, "--forward", "vggish=8/channels_last"]) == 2
    assert "--forward vggish: layout 'channels_last' not supported" in capsys.readouterr().err
