"""In-memory decoding of one clip: the 80 frames LLP's features saw, and its first 10 s of 16 kHz audio.

A 10-s clip may also start at an offset into a longer video (``start``): its frames are those whose
presentation starts in ``[start, start + 10)``, timed from ``start``, and its audio the 10 s from ``start``;
at ``start=0`` this is exactly the clip ``avvp extract`` sees.

Frames follow ``ffmpeg -i clip -r 8`` (the command LLP's authors ran) frame for frame: presentation
timestamps are read from the container, the constant-rate conversion of ffmpeg's video sync (``-vsync cfr``,
ffmpeg 3.x-5.x) decides which input frame each 1/8-s output slot shows, and 80 of the output frames are
picked at ``round(linspace(0, N - 1, 80))``. Only the chosen frames are converted to RGB arrays; decord
decodes them, and PyAV does when decord cannot open the file or disagrees with the container's timestamps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import av
import numpy as np

log = logging.getLogger(__name__)

OUTPUT_FPS = 8.0
CLIP_SECONDS = 10.0
NUM_FRAMES = 80
AUDIO_RATE = 16000
SHORT_TOLERANCE_S = 1.0 / OUTPUT_FPS
"""A clip counts as short (padded and recorded) when it lacks more than one output frame's worth of time."""


def frame_sampling() -> dict[str, Any]:
    """How the frames of a clip are chosen, as the visual networks' records state it."""
    return {
        "fps": OUTPUT_FPS,
        "frame_sync": "ffmpeg -r 8 (constant-rate video sync) on presentation timestamps",
        "frames": NUM_FRAMES,
        "frame_choice": "round(linspace(0, N-1, 80))",
        "short_clip": "last frame repeated to 80 output frames",
    }


class DecodeError(RuntimeError):
    """A clip (or one of its streams) cannot be decoded; the message says why."""


class MissingStreamError(DecodeError):
    """The file has no stream of the kind asked for (no video or no audio stream)."""


def _reported_padding(seconds: float) -> float:
    """Padding worth reporting: ``seconds`` when more than :data:`SHORT_TOLERANCE_S`, else 0."""
    return seconds if seconds > SHORT_TOLERANCE_S else 0.0


@dataclass(frozen=True)
class VideoTimeline:
    """Presentation timing of a video stream, in presentation order.

    ``starts``: seconds from the container start, float64 [F]; ``durations``: seconds, float64 [F] (0 when
    the container does not say); ``nominal_fps``: the stream's frame rate as ffmpeg guesses it.
    """

    starts: np.ndarray
    durations: np.ndarray
    nominal_fps: float

    @property
    def end(self) -> float:
        """End of the last frame in seconds (its start plus duration, or one nominal frame)."""
        if len(self.starts) == 0:
            return 0.0
        last = self.durations[-1] if self.durations[-1] > 0 else 1.0 / self.nominal_fps
        return float(self.starts[-1] + last)

    def window(self, start: float, seconds: float) -> tuple[VideoTimeline, int]:
        """The frames starting in ``[start, start + seconds)`` (with ``start <= 0``: every frame before
        ``start + seconds``), timed from ``start``; and the index of the first of them in this timeline."""
        first = int(np.searchsorted(self.starts, start)) if start > 0 else 0
        stop = max(first, int(np.searchsorted(self.starts, start + seconds)))
        window = VideoTimeline(self.starts[first:stop] - start, self.durations[first:stop], self.nominal_fps)
        return window, first


@dataclass(frozen=True)
class SampledFrames:
    """The 80 sampled RGB frames of a clip (uint8 [80, H, W, 3]), how much of 10 s was padded, the decoder,
    and the presentation time of each frame (float64 [80], seconds from the clip start; negative for a frame
    that began before the clip)."""

    frames: np.ndarray
    padded_seconds: float
    decoder: str
    times: np.ndarray


@dataclass(frozen=True)
class ClipAudio:
    """Audio of a clip (10 s: float32 [160000] at 16 kHz) or of a whole stream: mono float32 [S] at ``rate``
    Hz, and how many of its seconds are appended silence."""

    waveform: np.ndarray
    padded_seconds: float
    channels: int
    source_rate: int
    rate: int = AUDIO_RATE

    def window(self, start: float = 0.0, seconds: float = CLIP_SECONDS) -> ClipAudio:
        """The ``seconds`` from ``start``, float32 [round(rate * seconds)]; silence appended past the end."""
        first, wanted = round(start * self.rate), round(seconds * self.rate)
        piece = self.waveform[first : first + wanted]
        missing = wanted - len(piece)
        return replace(
            self,
            waveform=np.pad(piece, (0, missing)) if missing else piece,
            padded_seconds=_reported_padding(missing / self.rate),
        )


def cfr_frame_indices(timeline: VideoTimeline, fps: float = OUTPUT_FPS) -> np.ndarray:
    """Input frame shown in each output slot of ``ffmpeg -r fps`` (constant-rate video sync), int64 [N].

    Mirrors ffmpeg's ``do_video_out``: an input frame at output time ``t`` (in output ticks) with duration
    ``d`` is dropped when ``t + d`` trails the next output slot by more than 1.1 ticks, emitted
    ``round(t + d - next)`` times when it leads by more than 1.1, else once; a gap before it repeats the
    previous frame. ``d`` is the packet duration rounded to whole ticks when that is at least one tick, else
    ``min(fps_out / fps_in, 1)`` ticks. At the end, the last frame repeats the median of the last three gap
    fills (usually zero times).
    """
    nominal = min(fps / timeline.nominal_fps, 1.0) if timeline.nominal_fps > 0 else 1.0
    slots: list[int] = []
    next_slot = 0
    recent_gap_fills = [0, 0, 0]
    for index, (start, duration) in enumerate(zip(timeline.starts, timeline.durations, strict=True)):
        rounded = int(np.rint(duration * fps))
        ticks = float(rounded) if rounded > 0 else nominal
        delta0 = start * fps - next_slot
        delta = delta0 + ticks
        copies, gap_fill = 1, 0
        if delta < -1.1:
            copies = 0
        elif delta > 1.1:
            copies = int(np.rint(delta))
            if delta0 > 1.1:
                gap_fill = min(int(np.rint(delta0 - 0.6)), copies)
        recent_gap_fills = [gap_fill, *recent_gap_fills[:2]]
        previous = slots[-1] if slots else index
        slots.extend([previous] * gap_fill + [index] * (copies - gap_fill))
        next_slot += copies
    if slots:
        slots.extend([slots[-1]] * int(np.median(recent_gap_fills)))
    return np.asarray(slots, dtype=np.int64)


def sample_positions(num_output_frames: int, count: int = NUM_FRAMES) -> np.ndarray:
    """LLP's choice of ``count`` frames among ``num_output_frames``: ``round(linspace(0, N - 1, count))``."""
    return np.round(np.linspace(0, num_output_frames - 1, count)).astype(np.int64)


def choose_frames(
    timeline: VideoTimeline, count: int = NUM_FRAMES, fps: float = OUTPUT_FPS
) -> tuple[np.ndarray, float]:
    """The input frames LLP samples from a 10-s clip with this (non-empty) timeline: indices into it, int64
    [count], and the seconds of the 10 that were padded by repeating its last frame up to ``count`` slots."""
    slots = cfr_frame_indices(timeline, fps)
    if len(slots) == 0:
        raise DecodeError("no frame falls into the clip's 10 s")
    if len(slots) < count:
        slots = np.concatenate([slots, np.full(count - len(slots), slots[-1])])
    return slots[sample_positions(len(slots), count)], max(0.0, CLIP_SECONDS - timeline.end)


def read_video_timeline(path: str | Path, max_seconds: float = CLIP_SECONDS) -> VideoTimeline:
    """Timestamps of the frames of ``path``'s first video stream that start before ``max_seconds``.

    Reads packets only (no decoding). Times are relative to the container start, as ffmpeg's are.
    Raises :class:`DecodeError` when there is no video stream or no timestamped packet.
    """
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise MissingStreamError("no video stream")
        stream = container.streams.video[0]
        time_base = float(stream.time_base)
        origin = (container.start_time or 0) / av.time_base
        rate = stream.guessed_rate or stream.average_rate
        pts, durations = [], []
        try:
            for packet in container.demux(stream):
                if packet.pts is not None and packet.size > 0:
                    pts.append(packet.pts)
                    durations.append(packet.duration or 0)
        except av.error.FFmpegError as err:
            log.debug("%s: demuxing stopped early: %s", path, err)
    if not pts:
        raise DecodeError("video stream has no frames")
    order = np.argsort(pts, kind="stable")
    starts = np.asarray(pts, dtype=np.float64)[order] * time_base - origin
    keep = starts < max_seconds
    return VideoTimeline(
        starts=starts[keep],
        durations=np.asarray(durations, dtype=np.float64)[order][keep] * time_base,
        nominal_fps=float(rate) if rate else 0.0,
    )


class _DecordFrames:
    """Random access with decord, refused (raises) when decord's frames disagree with the container's."""

    name = "decord"

    def __init__(self, path: Path, timeline: VideoTimeline) -> None:
        import decord

        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        if len(reader) < len(timeline.starts):
            raise DecodeError(f"decord sees {len(reader)} frames, the container {len(timeline.starts)}")
        stamps = reader.get_frame_timestamp(np.arange(len(timeline.starts)))[:, 0]
        offsets = (stamps - stamps[0]) - (timeline.starts - timeline.starts[0])
        if np.abs(offsets).max() > 1e-3:
            raise DecodeError("decord's frame order disagrees with the container's timestamps")
        self._reader = reader

    def read(self, positions: np.ndarray) -> np.ndarray:
        """RGB frames uint8 [len(positions), H, W, 3] at the given presentation-order indices."""
        return self._reader.get_batch(positions).asnumpy()

    def close(self) -> None:
        """Release the reader."""
        self._reader = None


class _PyAVFrames:
    """Sequential decoding with PyAV. A position the decoder cannot reach (decoding stopped early) gets the
    last frame decoded; a position before the last one read reopens the file."""

    name = "pyav"

    def __init__(self, path: Path) -> None:
        self._path = path
        self._open()

    def _open(self) -> None:
        self._container = av.open(str(self._path))
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._frames = self._timestamped_frames(stream)
        self._index, self._latest = -1, None

    def _timestamped_frames(self, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
        try:
            for frame in self._container.decode(stream):
                if frame.pts is not None:
                    yield frame
        except av.error.FFmpegError as err:
            log.debug("%s: decoding stopped early: %s", self._path, err)

    def _advance(self, position: int) -> None:
        while self._index < position:
            frame = next(self._frames, None)
            if frame is None:
                return
            self._index, self._latest = self._index + 1, frame

    def read(self, positions: np.ndarray) -> np.ndarray:
        """RGB frames uint8 [len(positions), H, W, 3] at sorted presentation-order indices."""
        if positions[0] < self._index:
            self.close()
            self._open()
        images = []
        for position in positions.tolist():
            self._advance(position)
            if self._latest is None:
                raise DecodeError("no decodable video frame")
            images.append(self._latest.to_ndarray(format="rgb24"))
        return np.stack(images)

    def close(self) -> None:
        """Stop decoding and close the file."""
        self._frames.close()
        self._container.close()


class VideoFile:
    """A video opened for sampling 10-s clips from it: the timeline of its frames that start before
    ``max_seconds`` and one decoder kept open (decord when it agrees with the container's timestamps, else
    PyAV). A context manager; raises :class:`DecodeError` (or a PyAV error) when the video cannot be read."""

    def __init__(self, path: str | Path, max_seconds: float = math.inf) -> None:
        self.path = Path(path)
        self.timeline = read_video_timeline(self.path, max_seconds)
        try:
            self._decoder: _DecordFrames | _PyAVFrames = _DecordFrames(self.path, self.timeline)
        except Exception as err:  # decord raises its own error types; any failure means "use PyAV"
            self._use_pyav(err)

    def _use_pyav(self, err: Exception) -> None:
        log.debug("%s: decord failed (%s); decoding with PyAV", self.path, err)
        self._decoder = _PyAVFrames(self.path)

    def _read(self, positions: np.ndarray) -> np.ndarray:
        try:
            return self._decoder.read(positions)
        except Exception as err:
            if isinstance(self._decoder, _PyAVFrames):
                raise
            self._decoder.close()
            self._use_pyav(err)
            return self._decoder.read(positions)

    def _window_frames(self, start: float, count: int, fps: float) -> tuple[np.ndarray, float]:
        """Indices into the timeline of the ``count`` frames of the 10 s from ``start``, and padded seconds.

        A window without frames (the video stream ended before it, or starts after it) shows the nearest
        frame before it (else after it) throughout, all 10 s padded.
        """
        window, first = self.timeline.window(start, CLIP_SECONDS)
        if len(window.starts):
            chosen, padded = choose_frames(window, count, fps)
            return chosen + first, padded
        if len(self.timeline.starts) == 0:
            raise DecodeError(f"no frame falls into {start:g}-{start + CLIP_SECONDS:g} s")
        return np.full(count, max(first - 1, 0)), CLIP_SECONDS

    def sample(self, start: float = 0.0, count: int = NUM_FRAMES, fps: float = OUTPUT_FPS) -> SampledFrames:
        """The ``count`` frames LLP samples from the 10-s clip starting at ``start`` seconds: uint8
        [count, H, W, 3] RGB, chosen as ``ffmpeg -r fps`` on the clip would, padded like a short clip."""
        chosen, padded = self._window_frames(start, count, fps)
        unique, inverse = np.unique(chosen, return_inverse=True)
        return SampledFrames(
            frames=self._read(unique)[inverse],
            padded_seconds=_reported_padding(padded),
            decoder=self._decoder.name,
            times=self.timeline.starts[chosen] - start,
        )

    def close(self) -> None:
        """Close the decoder."""
        self._decoder.close()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_frames(
    path: str | Path, count: int = NUM_FRAMES, fps: float = OUTPUT_FPS, start: float = 0.0
) -> SampledFrames:
    """Decode the ``count`` frames LLP samples from the 10 s of ``path`` from ``start`` (default: its first
    10 s): uint8 [count, H, W, 3] RGB.

    A clip shorter than 10 s is padded by repeating its last frame up to ``count`` output slots (the
    padding is reported in ``padded_seconds``). Raises :class:`DecodeError` (or a PyAV error) when the
    video cannot be read.
    """
    with VideoFile(path, max_seconds=start + CLIP_SECONDS) as video:
        return video.sample(start, count, fps)


def decode_audio(path: str | Path, rate: int = AUDIO_RATE, max_seconds: float | None = None) -> ClipAudio:
    """Decode ``path``'s first audio stream (its first ``max_seconds``, or all of it) as mono float32 at
    ``rate`` Hz, without padding.

    Channels are averaged with equal weights ((L+R)/2 for stereo; all channels for 5.1), as VGGish's own
    input code does, after resampling each channel with libswresample. Decoding errors end the stream
    early. Raises :class:`MissingStreamError` without an audio stream, :class:`DecodeError` when it has no
    decodable sample.
    """
    wanted = math.inf if max_seconds is None else round(rate * max_seconds)
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise MissingStreamError("no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=rate)
        chunks: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(stream):
                frame.pts = None
                for out in resampler.resample(frame):
                    chunks.append(_mono(out))
                    total += out.samples
                if total >= wanted:
                    break
            else:
                chunks.extend(_mono(out) for out in resampler.resample(None))
        except av.error.FFmpegError as err:
            log.debug("%s: audio decoding stopped early: %s", path, err)
        channels, source_rate = stream.codec_context.channels, stream.codec_context.sample_rate
    if not chunks:
        raise DecodeError("audio stream has no decodable samples")
    waveform = np.concatenate(chunks)
    return ClipAudio(
        waveform=waveform if max_seconds is None else waveform[:wanted],
        padded_seconds=0.0,
        channels=channels,
        source_rate=source_rate,
        rate=rate,
    )


def _mono(frame: av.AudioFrame) -> np.ndarray:
    """A planar audio frame's channels averaged with equal weights: float32 [samples]."""
    return frame.to_ndarray().mean(axis=0, dtype=np.float64).astype(np.float32)


def load_audio(
    path: str | Path, rate: int = AUDIO_RATE, seconds: float = CLIP_SECONDS, start: float = 0.0
) -> ClipAudio:
    """Decode ``path``'s first audio stream: the ``seconds`` from ``start`` (default: the first ``seconds``)
    as mono float32 at ``rate`` Hz, channels averaged as :func:`decode_audio` does.

    A shorter stream is padded with silence (reported in ``padded_seconds``). Raises :class:`DecodeError`
    when there is no audio.
    """
    return decode_audio(path, rate, start + seconds).window(start, seconds)
