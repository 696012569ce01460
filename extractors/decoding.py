"""In-memory decoding of one clip: the 80 frames LLP's features saw, and its first 10 s of 16 kHz audio.

Frames follow ``ffmpeg -i clip -r 8`` (the command LLP's authors ran) frame for frame: presentation
timestamps are read from the container, the constant-rate conversion of ffmpeg's video sync (``-vsync cfr``,
ffmpeg 3.x-5.x) decides which input frame each 1/8-s output slot shows, and 80 of the output frames are
picked at ``round(linspace(0, N - 1, 80))``. Only the chosen frames are converted to RGB arrays; decord
decodes them, and PyAV does when decord cannot open the file or disagrees with the container's timestamps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

log = logging.getLogger(__name__)

OUTPUT_FPS = 8.0
CLIP_SECONDS = 10.0
NUM_FRAMES = 80
AUDIO_RATE = 16000
SHORT_TOLERANCE_S = 1.0 / OUTPUT_FPS
"""A clip counts as short (padded and recorded) when it lacks more than one output frame's worth of time."""


class DecodeError(RuntimeError):
    """A clip (or one of its streams) cannot be decoded; the message says why."""


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


@dataclass(frozen=True)
class SampledFrames:
    """The 80 sampled RGB frames of a clip (uint8 [80, H, W, 3]) and how much of 10 s was padded."""

    frames: np.ndarray
    padded_seconds: float
    decoder: str


@dataclass(frozen=True)
class ClipAudio:
    """The first 10 s of a clip's audio: mono float32 [160000] at 16 kHz, and how much was silence-padded."""

    waveform: np.ndarray
    padded_seconds: float
    channels: int
    source_rate: int


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


def read_video_timeline(path: str | Path, max_seconds: float = CLIP_SECONDS) -> VideoTimeline:
    """Timestamps of the frames of ``path``'s first video stream that start before ``max_seconds``.

    Reads packets only (no decoding). Times are relative to the container start, as ffmpeg's are.
    Raises :class:`DecodeError` when there is no video stream or no timestamped packet.
    """
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise DecodeError("no video stream")
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


def _decode_with_decord(path: Path, positions: np.ndarray, timeline: VideoTimeline) -> np.ndarray:
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    if len(reader) < len(timeline.starts):
        raise DecodeError(f"decord sees {len(reader)} frames, the container {len(timeline.starts)}")
    stamps = reader.get_frame_timestamp(np.arange(len(timeline.starts)))[:, 0]
    offsets = (stamps - stamps[0]) - (timeline.starts - timeline.starts[0])
    if np.abs(offsets).max() > 1e-3:
        raise DecodeError("decord's frame order disagrees with the container's timestamps")
    return reader.get_batch(positions).asnumpy()


def _decode_with_pyav(path: Path, positions: np.ndarray) -> np.ndarray:
    wanted = set(positions.tolist())
    images: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = -1
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                index += 1
                if index in wanted:
                    images[index] = frame.to_ndarray(format="rgb24")
                if index >= positions.max():
                    break
        except av.error.FFmpegError as err:
            log.debug("%s: decoding stopped early: %s", path, err)
    if not images:
        raise DecodeError("no decodable video frame")
    decoded = np.array(sorted(images))
    nearest_earlier = decoded[np.maximum(np.searchsorted(decoded, positions, side="right") - 1, 0)]
    return np.stack([images[int(k)] for k in nearest_earlier])


def load_frames(path: str | Path, count: int = NUM_FRAMES, fps: float = OUTPUT_FPS) -> SampledFrames:
    """Decode the ``count`` frames LLP samples from ``path``'s first 10 s: uint8 [count, H, W, 3] RGB.

    A clip shorter than 10 s is padded by repeating its last frame up to ``count`` output slots (the
    padding is reported in ``padded_seconds``). Raises :class:`DecodeError` (or a PyAV error) when the
    video cannot be read.
    """
    path = Path(path)
    timeline = read_video_timeline(path)
    slots = cfr_frame_indices(timeline, fps)
    if len(slots) == 0:
        raise DecodeError("no frame falls into the first 10 s")
    if len(slots) < count:
        slots = np.concatenate([slots, np.full(count - len(slots), slots[-1])])
    chosen = slots[sample_positions(len(slots), count)]
    unique, inverse = np.unique(chosen, return_inverse=True)
    try:
        images, decoder = _decode_with_decord(path, unique, timeline), "decord"
    except Exception as err:  # decord raises its own error types; any failure means "use PyAV"
        log.debug("%s: decord failed (%s); decoding with PyAV", path, err)
        images, decoder = _decode_with_pyav(path, unique), "pyav"
    padded = max(0.0, CLIP_SECONDS - timeline.end)
    return SampledFrames(
        frames=images[inverse], padded_seconds=padded if padded > SHORT_TOLERANCE_S else 0.0, decoder=decoder
    )


def load_audio(path: str | Path, rate: int = AUDIO_RATE, seconds: float = CLIP_SECONDS) -> ClipAudio:
    """Decode ``path``'s first audio stream: the first ``seconds`` as mono float32 at ``rate`` Hz.

    Channels are averaged with equal weights ((L+R)/2 for stereo; all channels for 5.1), as VGGish's own
    input code does, after resampling each channel with libswresample. A shorter stream is padded with
    silence (reported in ``padded_seconds``). Raises :class:`DecodeError` when there is no audio.
    """
    wanted = round(rate * seconds)
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise DecodeError("no audio stream")
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=rate)
        chunks: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(stream):
                frame.pts = None
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
                    total += out.samples
                if total >= wanted:
                    break
            else:
                chunks.extend(out.to_ndarray() for out in resampler.resample(None))
        except av.error.FFmpegError as err:
            log.debug("%s: audio decoding stopped early: %s", path, err)
    if not chunks:
        raise DecodeError("audio stream has no decodable samples")
    mono = np.concatenate(chunks, axis=1).mean(axis=0, dtype=np.float64).astype(np.float32)[:wanted]
    missing = wanted - len(mono)
    waveform = np.pad(mono, (0, missing)) if missing else mono
    padded = missing / rate
    return ClipAudio(
        waveform=waveform,
        padded_seconds=padded if padded > SHORT_TOLERANCE_S else 0.0,
        channels=channels,
        source_rate=stream.codec_context.sample_rate,
    )
