"""Features of a video of any length, in consecutive 10-s windows ``[0, 10), [10, 20), ...``.

Each window is extracted exactly as ``avvp extract`` extracts a 10-s clip: its frames are those whose
presentation starts inside it, timed from the window start and chosen as ``ffmpeg -r 8`` would choose them
from that clip (:meth:`extractors.decoding.VideoFile.sample`); its audio is the window's 10 s of the whole
16-kHz mono waveform (:meth:`extractors.decoding.ClipAudio.window`). The last window, or the only one of a
video shorter than 10 s, is padded like a short clip: last frame repeated, silence appended. The first
window of a video is therefore the very clip ``avvp extract`` sees in that file.

The file is opened once; windows are decoded one at a time (frames at full resolution only while their
network inputs and thumbnails are made) and run through the networks in batches of ``batch_windows``, so
memory grows with the output (features, thumbnails, waveform), not with decoded frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from tqdm import tqdm

from extractors.decoding import (
    CLIP_SECONDS,
    NUM_FRAMES,
    SHORT_TOLERANCE_S,
    ClipAudio,
    DecodeError,
    MissingStreamError,
    VideoFile,
    decode_audio,
)
from extractors.forward_plan import check_precision
from extractors.networks import AUDIO, AUDIO_RATES, VIDEO, FeatureNetwork
from extractors.pipeline import run_network

WINDOW_SECONDS = CLIP_SECONDS
"""Window length: the 10-s clips LLP's models see (80 frames, 10 one-second segments)."""
THUMBNAIL_HEIGHT = 64


@dataclass
class VideoWindows:
    """A video's features in consecutive 10-s windows, with what a web page needs to show it.

    ``duration``: seconds, the end of the last decodable video frame or audio sample (> 0).
    ``window_starts``: seconds, ``0, 10, 20, ...``, one per window (at least one).
    ``features``: kind -> float32 [W, T, D], row ``w`` the features of window ``w`` (audio kinds absent
    without an audio stream). ``thumbnails``: uint8 [n, h, w, 3] RGB, one per second of video (``n`` whole
    seconds, a trailing fraction of at most 1/8 s not counted), the frame the visual features saw in the
    middle of that second; ``thumbnail_times``: float64 [n], each thumbnail's presentation time in seconds.
    ``waveform``: float32 [S] mono at 16 kHz for the whole video, None without audio.
    """

    path: Path
    duration: float
    window_starts: list[float]
    features: dict[str, np.ndarray]
    has_audio: bool
    thumbnails: np.ndarray
    thumbnail_times: np.ndarray
    waveform: np.ndarray | None


@dataclass
class _Decoded:
    """One decoded window: each network's input rows, and its thumbnails with their times."""

    inputs: dict[str, torch.Tensor]
    thumbnails: np.ndarray
    thumbnail_times: np.ndarray


@dataclass
class _Extracted:
    """Consecutive windows done: kind -> features float32 [n, T, D], their thumbnails and times."""

    features: dict[str, np.ndarray]
    thumbnails: np.ndarray
    thumbnail_times: np.ndarray


def covering_count(duration: float, unit: float) -> int:
    """How many consecutive ``unit``-s pieces cover ``duration`` seconds, at least 1. A trailing piece of at
    most :data:`~extractors.decoding.SHORT_TOLERANCE_S` (e.g. an AAC encoder's last frame) does not count,
    as extraction does not count it as missing from a clip."""
    return max(1, math.ceil((duration - SHORT_TOLERANCE_S) / unit))


def resize_thumbnails(frames: np.ndarray, height: int = THUMBNAIL_HEIGHT) -> np.ndarray:
    """RGB frames uint8 [n, H, W, 3] -> uint8 [n, height, round(W * height / H), 3] (aspect kept, bilinear,
    antialiased)."""
    width = max(1, round(frames.shape[2] * height / frames.shape[1]))
    chw = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    resized = TF.resize(chw, [height, width], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return resized.permute(0, 2, 3, 1).numpy()


@contextmanager
def _naming_file(path: Path) -> Iterator[None]:
    """Turn a decoding failure into a :class:`DecodeError` whose message starts with ``path``."""
    try:
        yield
    except DecodeError as err:
        raise type(err)(f"{path}: {err}") from err
    except Exception as err:  # PyAV, decord and OS errors alike mean this file cannot be decoded
        raise DecodeError(f"{path}: cannot decode: {type(err).__name__}: {err}") from err


def _optional_audio(path: Path, rate: int = AUDIO_RATES[AUDIO]) -> ClipAudio | None:
    """The whole audio stream of ``path`` (mono float32 at ``rate``), None when it has no audio stream."""
    try:
        return decode_audio(path, rate)
    except MissingStreamError:
        return None


@dataclass
class _Source:
    """An opened video: its frames and its whole audio (None without an audio stream)."""

    path: Path
    video: VideoFile
    audio: ClipAudio | None
    other_rates: dict[str, ClipAudio] = field(default_factory=dict)
    """The whole audio decoded again at the rate of another audio source (CLAP's 48 kHz), when needed."""

    @property
    def duration(self) -> float:
        """Seconds to the end of the last video frame or audio sample."""
        audio_end = 0.0 if self.audio is None else len(self.audio.waveform) / self.audio.rate
        return max(self.video.timeline.end, audio_end)

    def decode(self, start: float, networks: Sequence[FeatureNetwork], thumbnail_height: int) -> _Decoded:
        """Inputs of ``networks`` (audio ones only with audio) for the 10-s window from ``start``, and one
        thumbnail per whole second of video in the window: the sampled frame in the middle of that second."""
        with _naming_file(self.path):
            sampled = self.video.sample(start)
        data = {VIDEO: sampled.frames}
        if self.audio is not None:
            data[AUDIO] = self.audio.window(start, WINDOW_SECONDS).waveform
        for name, audio in self.other_rates.items():
            data[name] = audio.window(start, WINDOW_SECONDS).waveform
        seconds = int(min(WINDOW_SECONDS, covering_count(self.duration, 1.0) - start))
        picks = ((np.arange(seconds) + 0.5) * NUM_FRAMES / WINDOW_SECONDS).astype(np.int64)
        return _Decoded(
            inputs={net.kind: net.prepare(data[net.source]) for net in networks},
            thumbnails=resize_thumbnails(sampled.frames[picks], thumbnail_height),
            thumbnail_times=start + sampled.times[picks],
        )


def _extract_batch(
    source: _Source,
    starts: Sequence[float],
    networks: list[FeatureNetwork],
    thumbnail_height: int,
    check: bool,
) -> _Extracted:
    """Decode the windows from ``starts`` one at a time, then run each network on all of them (a network
    whose plan has a reduced precision is checked against float32 when ``check`` (the first batch), then
    replaced in ``networks`` by the one :func:`~extractors.forward_plan.check_precision` returns)."""
    decoded = [source.decode(start, networks, thumbnail_height) for start in starts]
    features = {}
    for index, net in enumerate(networks):
        rows = torch.cat([d.inputs[net.kind] for d in decoded])
        if check:
            networks[index] = check_precision(net, rows)
        features[net.kind] = run_network(networks[index], rows, len(decoded))
    return _Extracted(
        features=features,
        thumbnails=np.concatenate([d.thumbnails for d in decoded]),
        thumbnail_times=np.concatenate([d.thumbnail_times for d in decoded]),
    )


def extract_windows(
    path: str | Path,
    networks: Sequence[FeatureNetwork],
    batch_windows: int = 4,
    thumbnail_height: int = THUMBNAIL_HEIGHT,
    progress: bool = False,
) -> VideoWindows:
    """Features of ``path`` in consecutive 10-s windows, each extracted as ``avvp extract`` extracts a clip.

    ``networks`` from :func:`extractors.networks.build_networks`, run on their device; ``batch_windows``
    windows per batch, each network in calls of its forward plan (as ``avvp extract``, whose plans
    :class:`extractors.networks.NetworkOptions` sets); ``thumbnail_height`` in pixels; ``progress`` shows a progress bar over windows. Without
    an audio stream the audio kinds are left out and ``has_audio`` is False. Raises
    :class:`~extractors.decoding.DecodeError`, its message starting with ``path``, when the file cannot be
    opened or decoded, has no video stream, or has an audio stream without a decodable sample.
    """
    path = Path(path)
    with _naming_file(path):
        video = VideoFile(path)
    with video:
        with _naming_file(path):
            source = _Source(path, video, _optional_audio(path))
            if source.audio is not None:
                for name in {net.source for net in networks} - {VIDEO, AUDIO}:
                    source.other_rates[name] = decode_audio(path, AUDIO_RATES[name])
        starts = [w * WINDOW_SECONDS for w in range(covering_count(source.duration, WINDOW_SECONDS))]
        active = [net for net in networks if net.source == VIDEO or source.audio is not None]
        parts: list[_Extracted] = []
        with tqdm(total=len(starts), desc=path.name, unit="window", disable=not progress) as bar:
            for first in range(0, len(starts), batch_windows):
                batch = starts[first : first + batch_windows]
                parts.append(_extract_batch(source, batch, active, thumbnail_height, check=not parts))
                bar.update(len(batch))
    return VideoWindows(
        path=path,
        duration=source.duration,
        window_starts=starts,
        features={net.kind: np.concatenate([p.features[net.kind] for p in parts]) for net in active},
        has_audio=source.audio is not None,
        thumbnails=np.concatenate([p.thumbnails for p in parts]),
        thumbnail_times=np.concatenate([p.thumbnail_times for p in parts]),
        waveform=None if source.audio is None else source.audio.waveform,
    )
