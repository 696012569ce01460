"""The visual networks: ResNet152 (per frame) and R(2+1)D-18 (per 8-frame snippet), with LLP's preprocessing.

Preprocessing is split so that decoding (in workers or between batches) does the resizing on uint8 tensors
and the device only normalises and runs the network:

- ResNet152 (``IMAGENET1K_V1``): shorter side to ``256/224 * crop`` (bilinear, antialiased like PIL),
  centre crop ``crop`` (224 as released), ImageNet mean/std, pooled layer4 output -> ``[80, 2048]``.
- R(2+1)D-18 (``KINETICS400_V1``): every frame resized to exactly ``size x size`` (112 as released; aspect
  not kept, no crop), Kinetics mean/std, 80 frames = 10 snippets of 8, pooled output -> ``[10, 512]``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torch import nn
from torchvision.models import ResNet152_Weights, resnet152
from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18

from extractors.decoding import frame_sampling
from extractors.identity import TORCHVISION, ExtractorRecord, WeightsIdentity
from extractors.weights import PRETRAINED, RANDOM, build_pretrained, load_checkpoint, seeded

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
RESNET_CROP = 224
R2PLUS1D_SIZE = 112
SNIPPET_FRAMES = 8


def _to_chw(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)


def resize_for_crop(crop: int) -> int:
    """The shorter side frames are resized to before a centre ``crop``: ``round(crop * 256 / 224)``."""
    return round(crop * 256 / 224)


def resnet_inputs(frames: np.ndarray, crop: int = RESNET_CROP) -> torch.Tensor:
    """ResNet152 input of RGB frames uint8 [T, H, W, 3]: shorter side resized to ``round(crop * 256 / 224)``
    (bilinear, antialiased), centre ``crop`` -> uint8 [T, 3, crop, crop]."""
    shorter = resize_for_crop(crop)
    resized = TF.resize(
        _to_chw(frames), [shorter], interpolation=TF.InterpolationMode.BILINEAR, antialias=True
    )
    return TF.center_crop(resized, [crop, crop]).contiguous()


def r2plus1d_inputs(frames: np.ndarray, size: int = R2PLUS1D_SIZE) -> torch.Tensor:
    """R(2+1)D-18 input of RGB frames uint8 [T, H, W, 3]: each resized to exactly ``size x size``
    (bilinear, antialiased; aspect ratio not kept) -> uint8 [T, 3, size, size]."""
    chw = _to_chw(frames)
    return TF.resize(
        chw, [size, size], interpolation=TF.InterpolationMode.BILINEAR, antialias=True
    ).contiguous()


def normalize(
    images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], channel_dim: int = -3
) -> torch.Tensor:
    """uint8 images with 3 channels at ``channel_dim`` (e.g. [..., 3, H, W]) -> float32
    ``(x / 255 - mean) / std`` on the same device, in the same memory layout (one float copy, then in place)."""
    shape = (3,) + (1,) * (-channel_dim - 1)
    mean_t = torch.tensor(mean, device=images.device).view(shape)
    std_t = torch.tensor(std, device=images.device).view(shape)
    return images.float().div_(255.0).sub_(mean_t).div_(std_t)


def _backbone(
    kind: str, builder: Callable[..., nn.Module], weights_enum, choice: str, seed: int, cache: Path
) -> tuple[nn.Module, WeightsIdentity]:
    """A torchvision model without its classifier, in eval mode, and the identity of its weights."""
    if choice == PRETRAINED:
        model = build_pretrained(lambda: builder(weights=weights_enum), kind, weights_enum.url, cache)
        identity = WeightsIdentity(TORCHVISION, f"{type(weights_enum).__name__}.{weights_enum.name}")
    elif choice == RANDOM:
        with seeded(seed):
            model = builder(weights=None)
        identity = WeightsIdentity.random_init(seed)
    else:
        model = builder(weights=None)
        identity = load_checkpoint(model, choice)
    model.fc = nn.Identity()
    return model.eval(), identity


def build_resnet152(
    choice: str, seed: int, cache: Path, crop: int = RESNET_CROP
) -> tuple[nn.Module, ExtractorRecord]:
    """ResNet152 without its classifier (outputs the pooled 2048-d layer4 features) and its record: the
    weights' identity and the preprocessing of :func:`resnet_inputs` and :func:`resnet_features` at ``crop``.

    ``choice``: ``pretrained`` (torchvision ``IMAGENET1K_V1``, never the V2 default), ``random`` or a path.
    """
    model, weights = _backbone("resnet152", resnet152, ResNet152_Weights.IMAGENET1K_V1, choice, seed, cache)
    preprocessing = frame_sampling() | {
        "resize_shorter": resize_for_crop(crop),
        "crop": crop,
        "interpolation": "bilinear, antialiased",
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "layer": "global average pool after layer4",
    }
    return model, ExtractorRecord("resnet152", weights, preprocessing)


def build_r2plus1d(
    choice: str, seed: int, cache: Path, size: int = R2PLUS1D_SIZE
) -> tuple[nn.Module, ExtractorRecord]:
    """R(2+1)D-18 without its classifier (outputs the pooled 512-d features) and its record: the weights'
    identity and the preprocessing of :func:`r2plus1d_inputs` and :func:`r2plus1d_features` at ``size``.

    ``choice``: ``pretrained`` (torchvision ``KINETICS400_V1``), ``random`` or a path.
    """
    model, weights = _backbone(
        "r2plus1d", r2plus1d_18, R2Plus1D_18_Weights.KINETICS400_V1, choice, seed, cache
    )
    preprocessing = frame_sampling() | {
        "frame_size": size,
        "resize": "each frame to frame_size x frame_size, aspect not kept, no crop",
        "mean": KINETICS_MEAN,
        "std": KINETICS_STD,
        "snippet_frames": SNIPPET_FRAMES,
        "layer": "global average pool before the classifier",
    }
    return model, ExtractorRecord("r2plus1d", weights, preprocessing)


def resnet_features(model: nn.Module, images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """uint8 frames [N, 3, S, S] (on the model's device) -> float [N, 2048]. With ``channels_last`` the
    frames are laid out channels-last while still uint8, so the float input is made once, in that layout."""
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return model(normalize(images, IMAGENET_MEAN, IMAGENET_STD))


def r2plus1d_features(model: nn.Module, images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """uint8 frames [K * 8, 3, S, S] of K consecutive snippets -> float [K, 512]. The snippets
    [K, 3, 8, S, S] are arranged (channels-last-3d with ``channels_last``) while still uint8."""
    channels, height, width = images.shape[1:]
    if channels_last:  # memory order (K, 8, S, S, 3): channels_last_3d of [K, 3, 8, S, S]
        clips = images.permute(0, 2, 3, 1).contiguous().view(-1, SNIPPET_FRAMES, height, width, channels)
        snippets = clips.permute(0, 4, 1, 2, 3)
    else:
        snippets = images.view(-1, SNIPPET_FRAMES, channels, height, width).transpose(1, 2)
    return model(normalize(snippets, KINETICS_MEAN, KINETICS_STD, channel_dim=-4))
