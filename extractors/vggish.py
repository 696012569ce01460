"""VGGish in PyTorch: the log-mel frontend of Google's reference code and the VGG-like network.

Per 1-s chunk of 16 kHz mono audio: frames of 25 ms (400 samples) every 10 ms (160), periodic Hann window,
|rfft| with 512 points, 64 HTK mel bands 125-7500 Hz (triangles in the mel domain, DC bin zeroed, as
``mel_features.spectrogram_to_mel_matrix``), ``log(mel + 0.01)``; the first 96 frames form one example
[96, 64]. The network maps an example to a 128-d embedding taken after the final ReLU (no PCA, no
quantisation). Layer widths are configurable so tests can run a small network of the same structure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from avvp.data.labels import NUM_SEGMENTS
from avvp.errors import InputError
from extractors.decoding import AUDIO_RATE
from extractors.identity import ExtractorRecord, WeightsIdentity
from extractors.weights import PRETRAINED, RANDOM, file_identity, fit_state_dict, read_checkpoint, seeded

SAMPLE_RATE = AUDIO_RATE
"""VGGish's input rate: the rate clips are decoded at."""
WINDOW = 400
HOP = 160
FFT = 512
MEL_BANDS = 64
MEL_LOW_HZ = 125.0
MEL_HIGH_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96
SEGMENTS = NUM_SEGMENTS
TORCH_BACKEND, TFHUB_BACKEND = "torch", "tfhub"
"""What runs VGGish: this module's PyTorch model, or the TF-Hub model (:mod:`extractors.vggish_tf`)."""


@dataclass(frozen=True)
class VGGishConfig:
    """Layer widths: conv blocks of (1, 1, 2, 2) layers with ``channels``, two FC of ``hidden``, ``embedding``."""

    channels: tuple[int, int, int, int] = (64, 128, 256, 512)
    hidden: int = 4096
    embedding: int = 128


LAYER_NAMES = ("conv1", "conv2", "conv3_1", "conv3_2", "conv4_1", "conv4_2", "fc1_1", "fc1_2", "fc2")
"""Layer names of Google's model (``vggish/<block>/<name>``), in the order of :class:`VGGish`'s layers."""


class VGGish(nn.Module):
    """VGGish: log-mel examples [N, 96, 64] -> embeddings [N, embedding] after the final ReLU.

    Convolutions are 3x3 with 'same' padding, max-pooling 2x2 after each block; the last feature map is
    flattened in TF's (height, width, channel) order so converted TF weights apply unchanged.
    """

    def __init__(self, config: VGGishConfig = VGGishConfig()) -> None:
        super().__init__()
        self.config = config
        widths = [
            config.channels[0],
            config.channels[1],
            *[config.channels[2]] * 2,
            *[config.channels[3]] * 2,
        ]
        pools_after = {0, 1, 3, 5}
        layers: list[nn.Module] = []
        previous = 1
        for index, width in enumerate(widths):
            layers += [nn.Conv2d(previous, width, 3, padding=1), nn.ReLU(inplace=True)]
            if index in pools_after:
                layers.append(nn.MaxPool2d(2))
            previous = width
        self.features = nn.Sequential(*layers)
        flat = (EXAMPLE_FRAMES // 16) * (MEL_BANDS // 16) * config.channels[3]
        self.embeddings = nn.Sequential(
            nn.Linear(flat, config.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden, config.embedding),
            nn.ReLU(inplace=True),
        )

    def parameter_layers(self) -> list[nn.Module]:
        """The nine weighted layers in :data:`LAYER_NAMES` order."""
        return [m for m in self.modules() if isinstance(m, nn.Conv2d | nn.Linear)]

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        """examples float [N, 96, 64] -> embeddings float [N, embedding]."""
        x = self.features(examples.unsqueeze(1))
        return self.embeddings(x.permute(0, 2, 3, 1).flatten(1))


def mel_matrix() -> torch.Tensor:
    """VGGish's mel filterbank, float32 [257, 64]: HTK mel, triangles in the mel domain, DC bin zeroed."""

    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        return 1127.0 * np.log1p(hz / 700.0)

    bins = hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, FFT // 2 + 1))
    edges = np.linspace(hz_to_mel(np.array(MEL_LOW_HZ)), hz_to_mel(np.array(MEL_HIGH_HZ)), MEL_BANDS + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return torch.from_numpy(weights.astype(np.float32))


def log_mel_examples(waveform: torch.Tensor) -> torch.Tensor:
    """16 kHz mono audio float [..., 10 * 16000] -> one log-mel example per second, float [..., 10, 96, 64]."""
    chunks = waveform.reshape(*waveform.shape[:-1], SEGMENTS, SAMPLE_RATE)
    frames = chunks.unfold(-1, WINDOW, HOP)[..., :EXAMPLE_FRAMES, :]
    window = torch.hann_window(WINDOW, periodic=True, dtype=waveform.dtype, device=waveform.device)
    magnitude = torch.fft.rfft(frames * window, n=FFT).abs()
    return torch.log(magnitude @ mel_matrix().to(waveform.device) + LOG_OFFSET)


def vggish_preprocessing(backend: str) -> dict[str, Any]:
    """The audio preprocessing of VGGish as recorded (the frontend of :func:`log_mel_examples`, or the same
    computed inside the TF-Hub model), with the backend that ran it (:data:`TORCH_BACKEND` or
    :data:`TFHUB_BACKEND`)."""
    return {
        "sample_rate": SAMPLE_RATE,
        "downmix": "mean of channels ((L+R)/2 for stereo)",
        "chunk": "1 s per segment, first 96 frames of each",
        "stft": {"window": WINDOW, "hop": HOP, "fft": FFT, "window_fn": "periodic hann"},
        "mel": {"bands": MEL_BANDS, "low_hz": MEL_LOW_HZ, "high_hz": MEL_HIGH_HZ, "scale": "htk"},
        "log_offset": LOG_OFFSET,
        "embedding": "after the final ReLU, no PCA, no quantisation",
        "backend": backend,
        "short_clip": "silence appended to 10 s",
    }


def build_vggish(
    choice: str, seed: int, pretrained: Callable[[], tuple[nn.Module, WeightsIdentity]]
) -> tuple[nn.Module, ExtractorRecord]:
    """The PyTorch VGGish and its record (the weights' identity and the preprocessing, backend ``torch``).

    ``choice``: ``random`` (seeded), a path to a state dict (see ``avvp convert-vggish``), or
    ``pretrained``: then ``pretrained()`` gives the model and its identity (Google's weights converted from
    TF-Hub, :func:`extractors.vggish_tf.pretrained_vggish`; this module does not depend on TensorFlow).
    """
    if choice == RANDOM:
        with seeded(seed):
            model = VGGish()
        weights = WeightsIdentity.random_init(seed)
    elif choice == PRETRAINED:
        model, weights = pretrained()
    else:
        state = read_checkpoint(choice)
        try:
            config = config_from_state_dict(state)
        except KeyError as err:
            raise InputError(f"{choice}: not a VGGish state dict (no tensor {err})") from None
        model = VGGish(config)
        fit_state_dict(model, state, choice)
        weights = file_identity(choice)
    return model.eval(), ExtractorRecord("vggish", weights, vggish_preprocessing(TORCH_BACKEND))


def config_from_state_dict(state: dict[str, torch.Tensor]) -> VGGishConfig:
    """The layer widths of a :class:`VGGish` state dict (so converted small test models load too).

    Raises ``KeyError`` naming the first expected tensor that is absent.
    """
    conv = [state[f"features.{i}.weight"].shape[0] for i in (0, 3, 6, 11)]
    return VGGishConfig(
        channels=tuple(conv),
        hidden=state["embeddings.0.weight"].shape[0],
        embedding=state["embeddings.4.weight"].shape[0],
    )
