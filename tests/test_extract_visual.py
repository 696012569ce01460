"""Visual preprocessing (equal to the PIL transforms of the original scripts) and snippet grouping."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from extractors.visual import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_r2plus1d,
    normalize,
    r2plus1d_features,
    r2plus1d_inputs,
    resnet_inputs,
)


def _frames(count: int, height: int = 240, width: int = 320) -> np.ndarray:
    """Smooth random RGB frames uint8 [count, H, W, 3] (gradients plus noise, like natural images)."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, width)[None, :, None] + np.linspace(0, 50, height)[:, None, None]
    return np.clip(ramp + rng.normal(0, 20, (count, height, width, 3)), 0, 255).astype(np.uint8)


def test_resnet_and_r2plus1d_inputs_match_pil_transforms():
    frames = _frames(3)
    pil_resnet = transforms.Compose(
        [transforms.Resize(256), transforms.CenterCrop(224), transforms.PILToTensor()]
    )
    pil_r2plus1d = transforms.Compose([transforms.Resize((112, 112)), transforms.PILToTensor()])
    resnet = resnet_inputs(frames)
    r2plus1d = r2plus1d_inputs(frames)
    assert resnet.shape == (3, 3, 224, 224) and resnet.dtype == torch.uint8
    assert r2plus1d.shape == (3, 3, 112, 112)
    for index, frame in enumerate(frames):
        image = Image.fromarray(frame)
        assert (resnet[index].int() - pil_resnet(image).int()).abs().max() <= 1
        assert (r2plus1d[index].int() - pil_r2plus1d(image).int()).abs().max() <= 1


def test_demo_size_keeps_the_256_to_224_ratio():
    assert resnet_inputs(_frames(1), crop=112).shape == (1, 3, 112, 112)
    tall = resnet_inputs(_frames(1, height=400, width=100), crop=32)
    assert tall.shape == (1, 3, 32, 32)


def test_normalize_uses_the_given_statistics():
    white = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    expected = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(normalize(white, IMAGENET_MEAN, IMAGENET_STD)[0, :, 0, 0], expected)


def test_r2plus1d_rows_are_snippets_of_eight_consecutive_frames(tmp_path):
    model, record = build_r2plus1d("random", seed=0, cache=tmp_path, size=16)
    assert str(record.weights) == "random-init(seed=0)" and record.preprocessing["frame_size"] == 16
    frames = r2plus1d_inputs(_frames(24, 32, 32), size=16)
    changed = frames.clone()
    changed[8:16] = 255 - changed[8:16]
    with torch.inference_mode():
        before = r2plus1d_features(model, frames, channels_last=False)
        after = r2plus1d_features(model, changed, channels_last=False)
        channels_last = r2plus1d_features(model, frames, channels_last=True)
    assert before.shape == (3, 512)
    assert [not torch.equal(b, a) for b, a in zip(before, after, strict=True)] == [False, True, False]
    assert torch.allclose(before, channels_last, atol=1e-4)
