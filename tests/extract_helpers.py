"""Synthetic H.264/AAC clips for the extraction tests, made with PyAV's bundled encoders.

Every video frame is a flat colour that encodes its own index (:func:`frame_colour`), so a test can tell
which input frame a decoder returned (:func:`frame_index`), even after lossy compression.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
LLP_SAMPLE = SHARED / "llp" / "sample" / "BjCEufrlXm4.mp4"
LLP_SAMPLE_FRAMES = SHARED / "llp" / "sample" / "BjCEufrlXm4_frames"
_LEVELS = 10
_STEP = 256 // _LEVELS
_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def frame_colour(index: int) -> tuple[int, int, int]:
    """RGB colour of frame ``index`` (< 1000): three base-10 digits, each mapped to a well-separated level."""
    digits = (index % _LEVELS, index // _LEVELS % _LEVELS, index // _LEVELS**2 % _LEVELS)
    return tuple(d * _STEP + _STEP // 2 for d in digits)


def frame_index(image: np.ndarray) -> int:
    """The frame index encoded in a decoded RGB image uint8 [H, W, 3] (inverse of :func:`frame_colour`)."""
    centre = image[
        image.shape[0] // 4 : 3 * image.shape[0] // 4, image.shape[1] // 4 : 3 * image.shape[1] // 4
    ]
    digits = np.clip(np.round((centre.reshape(-1, 3).mean(axis=0) - _STEP // 2) / _STEP), 0, _LEVELS - 1)
    return int(digits[0] + _LEVELS * digits[1] + _LEVELS**2 * digits[2])


def make_clip(
    path: Path,
    seconds: float = 3.0,
    fps: float = 8.0,
    size: tuple[int, int] = (64, 48),
    video: bool = True,
    audio: bool = True,
    audio_rate: int = 16000,
    channels: int = 2,
    frame_times: np.ndarray | None = None,
    amplitudes: tuple[float, ...] | None = None,
) -> Path:
    """Write an MP4 clip (H.264 video, AAC audio) and return its path.

    ``size`` is (width, height); ``frame_times`` (seconds, increasing) gives a variable frame rate instead
    of ``fps``. Audio is a sine per channel (440 Hz times the channel number) with ``amplitudes``
    (default 0.5 / channel number).
    """
    times = np.arange(0.0, seconds - 1e-9, 1.0 / fps) if frame_times is None else np.asarray(frame_times)
    tick = Fraction(1, 90000)
    with av.open(str(path), "w", format="mp4") as container:
        vstream = None
        if video:
            vstream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            vstream.width, vstream.height = size
            vstream.pix_fmt = "yuv420p"
            vstream.time_base = tick
            vstream.codec_context.time_base = tick
            vstream.options = {"preset": "ultrafast", "bf": "0"}
        astream = None
        if audio:
            astream = container.add_stream("aac", rate=audio_rate)
            astream.layout = _LAYOUTS[channels]
        if vstream is not None:
            for index, start in enumerate(times):
                image = np.empty((size[1], size[0], 3), dtype=np.uint8)
                image[:] = frame_colour(index)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = round(start / tick)
                frame.time_base = tick
                container.mux(vstream.encode(frame))
            container.mux(vstream.encode(None))
        if astream is not None:
            n = round(seconds * audio_rate)
            t = np.arange(n) / audio_rate
            levels = amplitudes or tuple(0.5 / (c + 1) for c in range(channels))
            waves = np.stack([levels[c] * np.sin(2 * np.pi * 440 * (c + 1) * t) for c in range(channels)])
            block = 1024
            for start in range(0, n, block):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(waves[:, start : start + block], dtype=np.float32),
                    format="fltp",
                    layout=_LAYOUTS[channels],
                )
                frame.sample_rate = audio_rate
                frame.pts = start
                container.mux(astream.encode(frame))
            container.mux(astream.encode(None))
    return path


def remux_faststart(source: Path, target: Path) -> Path:
    """Copy ``source``'s streams into an MP4 with the index (moov) at the front, as web videos have it."""
    with av.open(str(source)) as src, av.open(str(target), "w", options={"movflags": "faststart"}) as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
    return target


def make_intra_clip(path: Path, seconds: float, fps: int = 25, size: tuple[int, int] = (32, 24)) -> Path:
    """Write a Matroska clip that can be cut without re-encoding: every H.264 frame a keyframe (colours as
    :func:`frame_colour`), 16-kHz PCM mono audio in 0.1-s packets, a tone whose pitch changes every second."""
    rate = 16000
    with av.open(str(path), "w", format="matroska") as container:
        vstream = container.add_stream("libx264", rate=fps)
        vstream.width, vstream.height = size
        vstream.pix_fmt = "yuv420p"
        vstream.options = {"preset": "ultrafast", "g": "1"}
        astream = container.add_stream("pcm_s16le", rate=rate, layout="mono")
        for index in range(round(seconds * fps)):
            image = np.empty((size[1], size[0], 3), dtype=np.uint8)
            image[:] = frame_colour(index)
            container.mux(vstream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(vstream.encode(None))
        t = np.arange(round(seconds * rate)) / rate
        wave = (0.3 * np.sin(2 * np.pi * (200 + 50 * np.floor(t)) * t)).astype(np.float32)
        for start in range(0, len(wave), rate // 10):
            frame = av.AudioFrame.from_ndarray(
                wave[None, start : start + rate // 10], format="flt", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, start
            container.mux(astream.encode(frame))
        container.mux(astream.encode(None))
    return path


def cut_clip(source: Path, target: Path, start: float, stop: float) -> Path:
    """Copy the packets of ``source`` (a :func:`make_intra_clip` clip) presented in ``[start, stop)`` into
    ``target``, timestamps shifted to start at 0: the clip a stream-copying cutter would make."""
    with av.open(str(source)) as src, av.open(str(target), "w", format="matroska") as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.pts is None or not start <= packet.pts * packet.time_base < stop:
                continue
            shift = round(start / packet.time_base)
            packet.pts, packet.dts = packet.pts - shift, packet.dts - shift
            packet.stream = streams[packet.stream.index]
            dst.mux(packet)
    return target
