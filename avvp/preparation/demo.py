"""A small synthetic dataset in LLP's formats, for trying the whole pipeline in minutes.

Every clip is a real 10 s MP4 (H.264 video, AAC audio). Each class has its own sound (a tone at a
class-specific pitch with a class-specific pulse rate) and its own visual pattern (a square of a
class-specific colour and stripe orientation at a class-specific place). Events start and stop on whole
seconds; some are both audible and visible, some audible only, some visible only, so that a parser has
to tell the modalities apart. Training clips carry weak (video-level) labels only; validation and test
clips also get dense per-modality event tables in the ``AVVP_eval_audio.csv`` / ``AVVP_eval_visual.csv``
format. Everything is drawn from one seeded generator, so the same seed gives the same dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from avvp.data.annotations import FULL_DATASET, GT_AUDIO, GT_VISUAL, SPLIT_FILES
from avvp.data.labels import (
    NUM_CLASSES,
    NUM_SEGMENTS,
    EventRow,
    segments_to_events,
    write_event_rows,
    write_weak_labels,
)
from avvp.io import atomic_path

SPLITS = ("train", "val", "test")
MAX_DEMO_CLASSES = 8
"""Distinct sounds and patterns are defined for this many classes (the first ones of :data:`CLASSES`)."""

TONE_HZ = (300.0, 520.0, 850.0, 1300.0, 2000.0, 2900.0, 4100.0, 5600.0)
PULSE_HZ = (0.0, 2.0, 4.0, 0.0, 3.0, 6.0, 0.0, 5.0)
COLOURS = (
    (230, 40, 40),
    (40, 200, 40),
    (40, 80, 230),
    (240, 220, 30),
    (220, 40, 220),
    (30, 220, 220),
    (250, 140, 20),
    (250, 250, 250),
)
STRIPES = ("none", "horizontal", "vertical", "diagonal", "none", "horizontal", "vertical", "diagonal")


@dataclass(frozen=True)
class DemoOptions:
    """Sizes of the synthetic dataset; defaults keep the whole demo workflow to a few minutes on 2 cores."""

    seed: int = 0
    num_train: int = 72
    num_val: int = 24
    num_test: int = 24
    num_classes: int = 6
    frame_size: int = 64
    fps: int = 16
    sample_rate: int = 16000
    max_events: int = 2


@dataclass
class DemoClip:
    """One synthetic clip: ``audio``/``visual`` are boolean segment matrices ``(10, num_classes)``."""

    video_id: str
    split: str
    audio: np.ndarray
    visual: np.ndarray
    phase: dict[int, float] = field(default_factory=dict)

    @property
    def classes(self) -> list[int]:
        """Indices of the classes present in either modality (the clip's weak labels)."""
        return [int(c) for c in np.flatnonzero(self.audio.any(0) | self.visual.any(0))]


def _interval(rng: np.random.Generator) -> tuple[int, int]:
    """A random whole-second event ``[onset, offset)`` of 2 to 6 segments inside the clip."""
    length = int(rng.integers(2, 7))
    onset = int(rng.integers(0, NUM_SEGMENTS - length + 1))
    return onset, onset + length


def plan_clips(options: DemoOptions) -> list[DemoClip]:
    """Draw the clips' names, splits and per-modality events from ``options.seed``.

    Each clip has 1..``max_events`` classes; each class is audio-visual (half the time, with audio and
    visual intervals drawn separately), audible only, or visible only.
    """
    if not 1 <= options.num_classes <= MAX_DEMO_CLASSES:
        raise ValueError(f"num_classes must be between 1 and {MAX_DEMO_CLASSES}, got {options.num_classes}")
    rng = np.random.default_rng(options.seed)
    counts = {"train": options.num_train, "val": options.num_val, "test": options.num_test}
    clips = []
    for split in SPLITS:
        for _ in range(counts[split]):
            index = len(clips)
            audio = np.zeros((NUM_SEGMENTS, options.num_classes), dtype=bool)
            visual = np.zeros_like(audio)
            n_events = int(rng.integers(1, min(options.max_events, options.num_classes) + 1))
            for c in rng.choice(options.num_classes, size=n_events, replace=False):
                kind = rng.choice(["both", "both", "audio", "visual"])
                if kind in ("both", "audio"):
                    audio[slice(*_interval(rng)), c] = True
                if kind in ("both", "visual"):
                    visual[slice(*_interval(rng)), c] = True
            phase = {int(c): float(rng.uniform(0, 2 * np.pi)) for c in range(options.num_classes)}
            clips.append(DemoClip(f"demo{index:07d}_0_10", split, audio, visual, phase))
    return clips


def render_audio(clip: DemoClip, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """The clip's mono waveform, float32 ``(10 * sample_rate,)`` in [-1, 1]: faint noise plus class tones."""
    n = NUM_SEGMENTS * sample_rate
    t = np.arange(n, dtype=np.float64) / sample_rate
    wave = 0.02 * rng.standard_normal(n)
    segment = np.minimum(t.astype(int), NUM_SEGMENTS - 1)
    for c in np.flatnonzero(clip.audio.any(0)):
        active = clip.audio[segment, c]
        tone = np.sin(2 * np.pi * TONE_HZ[c] * t + clip.phase[int(c)])
        if PULSE_HZ[c]:
            tone *= 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * PULSE_HZ[c] * t))
        wave += 0.3 * tone * active
    return np.clip(wave, -1.0, 1.0).astype(np.float32)


def _pattern(c: int, size: int) -> np.ndarray:
    """The class's patch, uint8 ``(size, size, 3)``: its colour, striped in its orientation."""
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = {
        "none": np.ones_like(yy, dtype=bool),
        "horizontal": (yy // 3) % 2 == 0,
        "vertical": (xx // 3) % 2 == 0,
        "diagonal": ((xx + yy) // 3) % 2 == 0,
    }[STRIPES[c]]
    patch = np.zeros((size, size, 3), dtype=np.uint8)
    patch[stripes] = COLOURS[c]
    return patch


def render_frames(clip: DemoClip, frame_size: int, fps: int, rng: np.random.Generator) -> np.ndarray:
    """The clip's frames, uint8 ``(10 * fps, frame_size, frame_size, 3)``: a grey texture plus class patches.

    Class ``c`` shows its patch in cell ``c`` of a 3x3 grid, jittering by a pixel or two per frame.
    """
    n = NUM_SEGMENTS * fps
    background = rng.integers(90, 130, size=(frame_size, frame_size, 3), dtype=np.uint8)
    frames = np.repeat(background[None], n, axis=0)
    cell = frame_size // 3
    patch_size = max(4, cell * 3 // 4)
    margin = (cell - patch_size) // 2
    for c in np.flatnonzero(clip.visual.any(0)):
        patch = _pattern(int(c), patch_size)
        row, col = divmod(int(c), 3)
        for i in np.flatnonzero(clip.visual[np.arange(n) // fps, c]):
            dy, dx = rng.integers(-1, 2, size=2)
            y = int(np.clip(row * cell + margin + dy, 0, frame_size - patch_size))
            x = int(np.clip(col * cell + margin + dx, 0, frame_size - patch_size))
            frames[i, y : y + patch_size, x : x + patch_size] = patch
    return frames


def write_mp4(path: Path, frames: np.ndarray, audio: np.ndarray, fps: int, sample_rate: int) -> None:
    """Encode ``frames`` (T, H, W, 3 uint8) as H.264 and ``audio`` (S,) float32 mono as AAC, atomically."""
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "18", "preset": "veryfast"}
        # no encoder threads: with PyAV's default (automatic slice threads) x264's output depended on timing
        # (8 different files in 100 encodings of one input on a busy machine), and neither the "threads"
        # option nor one thread of the default type removed it (the demo must be identical for a seed)
        video.codec_context.thread_type = "NONE"
        video.codec_context.thread_count = 1
        sound = container.add_stream("aac", rate=sample_rate, layout="mono")
        sound.time_base = Fraction(1, sample_rate)
        for image in frames:
            # converted here on one thread: PyAV's encoder converts with automatic slice threads, and rarely
            # gave a different picture for the same input (the demo must be identical for a seed)
            rgb = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(video.encode(rgb.reformat(format="yuv420p", threads=1)))
        container.mux(video.encode())
        chunk = 1024
        for start in range(0, len(audio), chunk):
            piece = audio[start : start + chunk].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, start
            container.mux(sound.encode(frame))
        container.mux(sound.encode())


def _write_weak(path: Path, clips: Sequence[DemoClip]) -> None:
    labels = np.zeros((len(clips), NUM_CLASSES), dtype=np.float32)
    for i, clip in enumerate(clips):
        labels[i, clip.classes] = 1.0
    write_weak_labels(path, [c.video_id for c in clips], labels)


def _events(clips: Sequence[DemoClip], modality: str) -> list[EventRow]:
    """Dense events of ``clips`` in one modality (``"audio"`` or ``"visual"``), over all 25 classes."""
    segments = np.zeros((len(clips), NUM_SEGMENTS, NUM_CLASSES), dtype=bool)
    for i, clip in enumerate(clips):
        matrix = getattr(clip, modality)
        segments[i, :, : matrix.shape[1]] = matrix
    return segments_to_events([c.video_id for c in clips], segments)


def make_demo(output: str | Path, options: DemoOptions) -> list[DemoClip]:
    """Write the demo dataset under ``output``; return its clips.

    Layout: ``videos/<clip>.mp4`` and ``annotations/`` with ``AVVP_train.csv``, ``AVVP_val_pd.csv``,
    ``AVVP_test_pd.csv``, ``AVVP_dataset_full.csv`` (weak labels) and ``AVVP_eval_audio.csv``,
    ``AVVP_eval_visual.csv`` (dense events of the validation and test clips).
    """
    output = Path(output)
    clips = plan_clips(options)
    for clip in tqdm(clips, desc="demo clips", unit="clip"):
        rng = np.random.default_rng([options.seed, int(clip.video_id[4:11])])
        frames = render_frames(clip, options.frame_size, options.fps, rng)
        audio = render_audio(clip, options.sample_rate, rng)
        write_mp4(output / "videos" / f"{clip.video_id}.mp4", frames, audio, options.fps, options.sample_rate)
    annotations = output / "annotations"
    for split, name in SPLIT_FILES.items():
        _write_weak(annotations / name, [c for c in clips if c.split == split])
    _write_weak(annotations / FULL_DATASET, clips)
    dense = [c for c in clips if c.split != "train"]
    write_event_rows(annotations / GT_AUDIO, _events(dense, "audio"))
    write_event_rows(annotations / GT_VISUAL, _events(dense, "visual"))
    return clips
