"""The self-contained HTML page ``avvp parse`` writes for a video: frames, audio and event lanes on one time axis.

Everything is drawn in one inline SVG whose horizontal axis is the video's time, so frames, waveform and
lanes line up whatever the duration: the frames are one JPEG filmstrip (as many frames as fit, each tile
showing the thumbnail nearest its centre time), the audio a min/max envelope per pixel column, each lane
shaded per segment by the segment probability with the detected events as outlined bars. Tooltips are SVG
``<title>`` elements; the page loads nothing from elsewhere. This module lays the page out (positions,
shading runs, texts); the markup is the template ``avvp/templates/page.html.j2``, which escapes every text.
"""

from __future__ import annotations

import base64
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from avvp.data.labels import CLASS_INDEX
from avvp.templates import render
from extractors.identity import RANDOM_INIT

LABEL_WIDTH = 170
"""Width of the label column left of the plot, in SVG units (pixels at 100 %)."""
PLOT_WIDTH = 960
"""Width of the time axis: the whole video, whatever its duration."""
RIGHT_MARGIN = 28
STRIP_HEIGHT = 64
STRIP_DENSITY = 2
"""Filmstrip pixels per SVG unit (sharp on high-density screens)."""
TILE_WIDTH_RANGE = (40.0, 240.0)
JPEG_QUALITY = 80
WAVE_HEIGHT = 56
NOTE_HEIGHT = 26
GROUP_HEIGHT = 24
LANE_HEIGHT = 18
LANE_GAP = 4
AXIS_HEIGHT = 26
ROW_GAP = 8
AV_MARK_HEIGHT = 4
MIN_EVENT_WIDTH = 2.0
HEAT_LEVELS = 20
"""Segment probabilities are shaded in this many steps; equal neighbouring steps are drawn as one run."""
MAX_TICKS = 12
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
LONG_VIDEO = 60.0
"""From this duration (seconds) on, times read m:ss."""
COLORS = {"audio": "#1f6fb4", "visual": "#d2691e", "audio_visual": "#8e3bb5"}
EDGE_COLORS = {"audio": "#0a3a66", "visual": "#7a3300"}
"""Outline of the event bars, darker than the shading."""
MIN_WINDOW_SPACING = 40.0
"""Window boundaries are drawn only when neighbouring ones are at least this far apart on the plot."""
MODALITY_NAMES = {"audio": "audio", "visual": "visual", "audio_visual": "audio-visual"}
GROUPS = (("audio", "Audible"), ("visual", "Visible"))
NO_AUDIO_NOTE = "no audio track: visual events only"


@dataclass(frozen=True)
class TimeScale:
    """Maps seconds of a video lasting ``duration`` onto the plot's x coordinates."""

    duration: float

    @property
    def long(self) -> bool:
        """Whether times read m:ss rather than seconds."""
        return self.duration >= LONG_VIDEO

    def x(self, seconds: float) -> float:
        """The x coordinate of ``seconds`` (clipped to the video)."""
        return LABEL_WIDTH + min(max(seconds, 0.0), self.duration) / self.duration * PLOT_WIDTH

    def seconds(self, x: np.ndarray) -> np.ndarray:
        """The times at plot offsets ``x`` (0 = the plot's left edge)."""
        return x / PLOT_WIDTH * self.duration


def _clock(seconds: float) -> str:
    """``seconds`` as m:ss (h:mm:ss from an hour on), rounded to whole seconds."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _span(onset: float, offset: float, scale: TimeScale) -> str:
    """An interval for a tooltip: seconds, and m:ss too for long videos."""
    seconds = f"{onset:.2f} to {offset:.2f} s"
    return f"{_clock(onset)} to {_clock(offset)} ({seconds})" if scale.long else seconds


def _tick_step(duration: float) -> int:
    """The smallest step of :data:`TICK_STEPS` giving at most :data:`MAX_TICKS` intervals."""
    return next((s for s in TICK_STEPS if duration / s <= MAX_TICKS), TICK_STEPS[-1])


def _ticks(scale: TimeScale) -> list[float]:
    """Tick times from 0 to the duration."""
    step = _tick_step(scale.duration)
    return [float(t) for t in np.arange(0, scale.duration + 1e-9, step)]


def _tick_label(seconds: float, scale: TimeScale) -> str:
    return _clock(seconds) if scale.long else f"{seconds:g}"


def _moment(seconds: float, scale: TimeScale) -> str:
    """A point in time for a tooltip: m:ss for long videos, else seconds to a tenth."""
    return _clock(seconds) if scale.long else f"{seconds:.1f} s"


def _ordered_labels(labels: set[str]) -> list[str]:
    """Labels in LLP class order, unknown ones after (alphabetically)."""
    return sorted(labels, key=lambda label: (CLASS_INDEX.get(label, len(CLASS_INDEX)), label))


def _lane_labels(events: dict[str, list[dict[str, Any]]], modality: str) -> list[str]:
    """The classes with a lane in ``modality``: those with an event of that modality or an audio-visual one."""
    return _ordered_labels({e["label"] for e in [*events[modality], *events["audio_visual"]]})


def _random_init_kinds(features: dict[str, dict[str, Any]]) -> list[str]:
    """The feature kinds computed with randomly initialised weights."""
    return [kind for kind, attrs in features.items() if RANDOM_INIT in str(attrs.get("weights", ""))]


def _tile_edges(frame_shape: tuple[int, ...]) -> np.ndarray:
    """Plot offsets of the filmstrip's tile edges: as many tiles of the frames' aspect as fill the plot."""
    height, width = frame_shape[1:3]
    tile = min(max(STRIP_HEIGHT * width / height, TILE_WIDTH_RANGE[0]), TILE_WIDTH_RANGE[1])
    return np.linspace(0, PLOT_WIDTH, max(1, round(PLOT_WIDTH / tile)) + 1)


def _nearest(times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target time, the index of the nearest of ``times``."""
    return np.abs(times[None, :] - targets[:, None]).argmin(axis=1)


def _filmstrip(thumbnails: np.ndarray, chosen: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """One image of the ``chosen`` thumbnails side by side, each resized to its tile."""
    pixels = np.round(edges * STRIP_DENSITY).astype(int)
    tiles = [
        np.asarray(Image.fromarray(thumbnails[i]).resize((right - left, STRIP_HEIGHT * STRIP_DENSITY)))
        for i, left, right in zip(chosen, pixels[:-1], pixels[1:], strict=True)
    ]
    return np.concatenate(tiles, axis=1)


def _jpeg_uri(image: np.ndarray) -> str:
    """``image`` (h, w, 3) uint8 as a JPEG data URI."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _envelope(waveform: np.ndarray, sample_rate: int, scale: TimeScale) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum of the peak-normalised waveform in each pixel column of the plot that has audio."""
    audio = np.asarray(waveform, dtype=np.float32)[: round(scale.duration * sample_rate)]
    starts = np.round(scale.seconds(np.arange(PLOT_WIDTH)) * sample_rate).astype(int)
    starts = starts[starts < len(audio)]
    if len(starts) == 0:
        return np.zeros(0), np.zeros(0)
    peak = max(float(np.abs(audio).max()), 1e-12)
    return np.minimum.reduceat(audio, starts) / peak, np.maximum.reduceat(audio, starts) / peak


def _heat_runs(
    segments: Sequence[dict[str, Any]], modality: str, label: str
) -> list[tuple[float, float, int]]:
    """(start, end, level) of the runs of neighbouring segments whose probability of ``label`` rounds to the
    same of :data:`HEAT_LEVELS` steps; runs of level 0 are left out."""
    runs: list[tuple[float, float, int]] = []
    for segment in segments:
        level = round(segment[modality].get(label, 0.0) * HEAT_LEVELS)
        if runs and runs[-1][2] == level and math.isclose(runs[-1][1], segment["start"], abs_tol=1e-6):
            runs[-1] = (runs[-1][0], segment["end"], level)
        else:
            runs.append((segment["start"], segment["end"], level))
    return [run for run in runs if run[2] > 0]


def _window_starts(result: dict[str, Any], scale: TimeScale) -> list[float]:
    """Where the model's windows after the first start, when they are far enough apart to be drawn."""
    starts = [float(w["start"]) for w in result["windows"]]
    closest = min((scale.x(b) - scale.x(a) for a, b in itertools.pairwise(starts)), default=0.0)
    return starts[1:] if closest >= MIN_WINDOW_SPACING else []


def _duration_text(duration: float) -> str:
    return f"{duration:.1f} s ({_clock(duration)})" if duration >= LONG_VIDEO else f"{duration:.1f} s"


@dataclass(frozen=True)
class Shape:
    """A rectangle of the timeline (x and width in SVG units) with its tooltip; ``kind`` says what it is
    (a modality, for shading and events) and ``level`` the shading's opacity."""

    x: float
    width: float
    title: str
    kind: str = ""
    y: float = 0.0
    height: float = 0.0
    level: float = 0.0


@dataclass(frozen=True)
class Lane:
    """One class in one modality, ``y`` below the top of its group: shading runs, then the event bars."""

    modality: str
    label: str
    y: float
    shading: list[Shape]
    events: list[Shape]


@dataclass(frozen=True)
class Group:
    """The Audible or the Visible group, ``y`` below the top of the timeline: its heading and its lanes."""

    title: str
    caption: str
    y: float
    lanes: list[Lane]

    @property
    def height(self) -> float:
        """The heading and the lanes, with the gaps between them."""
        return GROUP_HEIGHT + len(self.lanes) * (LANE_HEIGHT + LANE_GAP)


def _strip(thumbnails: np.ndarray, times: np.ndarray, scale: TimeScale) -> tuple[str, list[Shape]] | None:
    """The filmstrip as a JPEG data URI and its tiles, each with its frame's time; None without frames."""
    if len(thumbnails) != len(times):
        raise ValueError(f"{len(thumbnails)} thumbnails but {len(times)} thumbnail times")
    if len(thumbnails) == 0:
        return None
    edges = _tile_edges(thumbnails.shape)
    chosen = _nearest(np.asarray(times, dtype=float), scale.seconds((edges[:-1] + edges[1:]) / 2))
    tiles = [
        Shape(LABEL_WIDTH + left, right - left, f"frame at {_moment(times[i], scale)}")
        for i, left, right in zip(chosen, edges[:-1], edges[1:], strict=True)
    ]
    return _jpeg_uri(_filmstrip(thumbnails, chosen, edges)), tiles


def _waveform_points(waveform: np.ndarray, sample_rate: int, scale: TimeScale) -> str:
    """The outline of the waveform's min/max envelope (peak-normalised) around the row's centre line."""
    low, high = _envelope(waveform, sample_rate, scale)
    middle, half = WAVE_HEIGHT / 2, WAVE_HEIGHT / 2 - 2
    x = LABEL_WIDTH + np.arange(len(low)) + 0.5
    outline = [
        *zip(x, middle - high * half, strict=True),
        *zip(x[::-1], middle - low[::-1] * half, strict=True),
    ]
    return " ".join(f"{px:.1f},{py:.1f}" for px, py in outline)


def _shading(segments: Sequence[dict[str, Any]], modality: str, label: str, scale: TimeScale) -> list[Shape]:
    """The lane's shading runs: opacity follows the segment probability."""
    return [
        Shape(
            scale.x(start),
            scale.x(end) - scale.x(start),
            f"{label} ({modality}) {_span(start, end, scale)}: p ≈ {level / HEAT_LEVELS:.2f}",
            modality,
            level=0.8 * level / HEAT_LEVELS,
        )
        for start, end, level in _heat_runs(segments, modality, label)
    ]


def _event_bar(event: dict[str, Any], modality: str, y: float, height: float, scale: TimeScale) -> Shape:
    """One event as a bar from its onset to its offset (at least :data:`MIN_EVENT_WIDTH` wide)."""
    left = scale.x(event["onset"])
    title = (
        f"{event['label']} ({MODALITY_NAMES[modality]}): {_span(event['onset'], event['offset'], scale)}, "
        f"confidence {event['confidence']:.2f}"
    )
    return Shape(left, max(scale.x(event["offset"]) - left, MIN_EVENT_WIDTH), title, modality, y, height)


def _lane(result: dict[str, Any], modality: str, label: str, y: float, scale: TimeScale) -> Lane:
    """One class in one modality: shading, outlined events, and audio-visual events as a band on top."""
    events = result["events"]
    bars = [
        _event_bar(e, modality, 0.75, LANE_HEIGHT - 1.5, scale)
        for e in events[modality]
        if e["label"] == label
    ]
    bars += [
        _event_bar(e, "audio_visual", 0, AV_MARK_HEIGHT, scale)
        for e in events["audio_visual"]
        if e["label"] == label
    ]
    return Lane(modality, label, y, _shading(result["segments"], modality, label, scale), bars)


def _group(
    result: dict[str, Any], modality: str, title: str, empty: str, y: float, scale: TimeScale
) -> Group:
    """A group's heading and one lane per class with events in ``modality`` (``empty`` shown when none)."""
    labels = _lane_labels(result["events"], modality)
    caption = f"{MODALITY_NAMES[modality]} events" if labels else empty
    lanes = [
        _lane(result, modality, label, GROUP_HEIGHT + LANE_GAP + i * (LANE_HEIGHT + LANE_GAP), scale)
        for i, label in enumerate(labels)
    ]
    return Group(title, caption, y, lanes)


def _timeline(
    result: dict[str, Any],
    thumbnails: np.ndarray,
    thumbnail_times: np.ndarray,
    waveform: np.ndarray | None,
    sample_rate: int,
    scale: TimeScale,
) -> dict[str, Any]:
    """The timeline's layout for the template: frames, audio (or the no-audio note), the Audible and
    Visible groups one below the other, the axis ticks, the window lines, and the SVG's size."""
    strip = _strip(thumbnails, thumbnail_times, scale)
    audio_y = (STRIP_HEIGHT if strip else NOTE_HEIGHT) + ROW_GAP
    y = audio_y + (NOTE_HEIGHT if waveform is None else WAVE_HEIGHT) + ROW_GAP
    audio_empty = "none: no audio track" if waveform is None else "no audio event detected"
    empties = {"audio": audio_empty, "visual": "no visual event detected"}
    groups = []
    for modality, title in GROUPS:
        groups.append(_group(result, modality, title, empties[modality], y, scale))
        y += groups[-1].height + ROW_GAP
    body_height = y - ROW_GAP
    return {
        "strip": strip,
        "audio_y": audio_y,
        "waveform": None if waveform is None else _waveform_points(waveform, sample_rate, scale),
        "groups": groups,
        "body_height": body_height,
        "ticks": [(scale.x(t), _tick_label(t, scale)) for t in _ticks(scale)],
        "windows": [scale.x(t) for t in _window_starts(result, scale)],
        "unit": "m:ss" if scale.long else "s",
        "width": LABEL_WIDTH + PLOT_WIDTH + RIGHT_MARGIN,
        "height": body_height + ROW_GAP + AXIS_HEIGHT,
    }


def _event_rows(events: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, float, float, float]]:
    """All events, per modality in time order: (modality, label, onset, offset, confidence)."""
    return [
        (MODALITY_NAMES[modality], e["label"], e["onset"], e["offset"], e["confidence"])
        for modality in MODALITY_NAMES
        for e in sorted(events[modality], key=lambda event: (event["onset"], event["label"]))
    ]


LAYOUT = {
    "label_width": LABEL_WIDTH, "plot_width": PLOT_WIDTH, "strip_height": STRIP_HEIGHT,
    "wave_height": WAVE_HEIGHT, "note_height": NOTE_HEIGHT, "group_height": GROUP_HEIGHT,
    "lane_height": LANE_HEIGHT, "row_gap": ROW_GAP, "colors": COLORS, "edge_colors": EDGE_COLORS,
}  # fmt: skip
"""The sizes and colours the template draws with."""


def render_page(
    result: dict[str, Any],
    thumbnails: np.ndarray,
    thumbnail_times: np.ndarray,
    waveform: np.ndarray | None,
    sample_rate: int = 16000,
) -> str:
    """The parse page of one video as a self-contained HTML document (template ``page.html.j2``).

    ``result`` is the parse JSON (video, duration, windows, per-second segments, events per modality,
    checkpoint, decision rule, features); ``thumbnails`` (n, h, w, 3) uint8 frames taken at
    ``thumbnail_times`` seconds; ``waveform`` (S,) mono audio at ``sample_rate``, None without an audio track.
    """
    scale = TimeScale(max(float(result["duration"]), 1e-3))
    rule = result["decision_rule"]
    return render(
        "page.html.j2",
        result=result,
        duration=_duration_text(result["duration"]),
        rule_name=rule.get("rule", "?"),
        rule_details=[(key, value) for key, value in rule.items() if key != "rule"],
        random_init_kinds=_random_init_kinds(result["features"]),
        random_init=RANDOM_INIT,
        timeline=_timeline(result, thumbnails, thumbnail_times, waveform, sample_rate, scale),
        events=_event_rows(result["events"]),
        no_audio_note=NO_AUDIO_NOTE,
        layout=LAYOUT,
    )
