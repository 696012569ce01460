"""The self-contained HTML page ``avvp parse`` writes for a video: frames, audio and event lanes on one time axis.

Everything is drawn in one inline SVG whose horizontal axis is the video's time, so frames, waveform and
lanes line up whatever the duration: the frames are one JPEG filmstrip (as many frames as fit, each tile
showing the thumbnail nearest its centre time), the audio a min/max envelope per pixel column, each lane
shaded per segment by the segment probability with the detected events as outlined bars. Tooltips are SVG
``<title>`` elements; the page loads nothing from elsewhere. Every text from the result is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from avvp.data.labels import CLASS_INDEX
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
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222}"
    "h1{font-size:1.4em;margin-bottom:.2em;word-break:break-all}.meta{margin:.3em 0;color:#444}"
    ".warning{border:2px solid #b00020;background:#fdecea;color:#7a0016;padding:.7em 1em;margin:1em 0;"
    "font-size:1.05em}svg.timeline{max-width:100%;height:auto;font-size:11px}"
    "svg text{fill:#333}.legend span{display:inline-block;margin-right:1.4em}"
    ".swatch{display:inline-block;width:1.6em;height:.8em;vertical-align:middle;margin-right:.3em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;"
    "text-align:right}td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}"
    ".event{pointer-events:all}"
)


class Row(NamedTuple):
    """A horizontal band of the timeline: SVG drawn from y = 0 down to ``height``."""

    svg: str
    height: float


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


def _e(value: Any) -> str:
    """``value`` as HTML text, quotes included (safe in element content and attribute values)."""
    return html.escape(str(value), quote=True)


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


def _stack(rows: Sequence[Row], gap: float) -> Row:
    """``rows`` one below the other, ``gap`` apart."""
    parts, y = [], 0.0
    for row in rows:
        parts.append(f'<g transform="translate(0,{y:g})">{row.svg}</g>')
        y += row.height + gap
    return Row("".join(parts), max(y - gap, 0.0))


def _note_row(text: str, title: str) -> Row:
    """A row naming ``title`` in the label column and saying ``text`` across the plot."""
    svg = (
        f'<text x="{LABEL_WIDTH - 8}" y="17" text-anchor="end">{_e(title)}</text>'
        f'<rect x="{LABEL_WIDTH}" y="2" width="{PLOT_WIDTH}" height="{NOTE_HEIGHT - 4}" fill="#f3f3f3"/>'
        f'<text class="note" x="{LABEL_WIDTH + PLOT_WIDTH / 2}" y="17" text-anchor="middle" '
        f'font-style="italic">{_e(text)}</text>'
    )
    return Row(svg, NOTE_HEIGHT)


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


def _strip_row(thumbnails: np.ndarray, times: np.ndarray, scale: TimeScale) -> Row:
    """The frames along the time axis, with each tile's frame time as its tooltip."""
    if len(thumbnails) != len(times):
        raise ValueError(f"{len(thumbnails)} thumbnails but {len(times)} thumbnail times")
    if len(thumbnails) == 0:
        return _note_row("no frames", "Frames")
    edges = _tile_edges(thumbnails.shape)
    chosen = _nearest(np.asarray(times, dtype=float), scale.seconds((edges[:-1] + edges[1:]) / 2))
    tiles = "".join(
        f'<rect x="{LABEL_WIDTH + left:.1f}" y="0" width="{right - left:.1f}" height="{STRIP_HEIGHT}" '
        f'fill="none" stroke="#fff" pointer-events="all"><title>frame at {_moment(times[i], scale)}</title></rect>'
        for i, left, right in zip(chosen, edges[:-1], edges[1:], strict=True)
    )
    svg = (
        f'<text x="{LABEL_WIDTH - 8}" y="{STRIP_HEIGHT / 2 + 4}" text-anchor="end">Frames</text>'
        f'<image class="frames" x="{LABEL_WIDTH}" y="0" width="{PLOT_WIDTH}" height="{STRIP_HEIGHT}" '
        f'preserveAspectRatio="none" href="{_jpeg_uri(_filmstrip(thumbnails, chosen, edges))}"/>{tiles}'
    )
    return Row(svg, STRIP_HEIGHT)


def _envelope(waveform: np.ndarray, sample_rate: int, scale: TimeScale) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum of the peak-normalised waveform in each pixel column of the plot that has audio."""
    audio = np.asarray(waveform, dtype=np.float32)[: round(scale.duration * sample_rate)]
    starts = np.round(scale.seconds(np.arange(PLOT_WIDTH)) * sample_rate).astype(int)
    starts = starts[starts < len(audio)]
    if len(starts) == 0:
        return np.zeros(0), np.zeros(0)
    peak = max(float(np.abs(audio).max()), 1e-12)
    return np.minimum.reduceat(audio, starts) / peak, np.maximum.reduceat(audio, starts) / peak


def _waveform_row(waveform: np.ndarray, sample_rate: int, scale: TimeScale) -> Row:
    """The audio as a filled min/max envelope (peak-normalised) around a centre line."""
    low, high = _envelope(waveform, sample_rate, scale)
    middle, half = WAVE_HEIGHT / 2, WAVE_HEIGHT / 2 - 2
    x = LABEL_WIDTH + np.arange(len(low)) + 0.5
    outline = [
        *zip(x, middle - high * half, strict=True),
        *zip(x[::-1], middle - low[::-1] * half, strict=True),
    ]
    points = " ".join(f"{px:.1f},{py:.1f}" for px, py in outline)
    svg = (
        f'<text x="{LABEL_WIDTH - 8}" y="{middle + 4}" text-anchor="end">Audio</text>'
        f'<line x1="{LABEL_WIDTH}" x2="{LABEL_WIDTH + PLOT_WIDTH}" y1="{middle}" y2="{middle}" stroke="#bbb"/>'
        f'<polygon class="waveform" points="{points}" fill="{COLORS["audio"]}" fill-opacity="0.75">'
        "<title>waveform (peak-normalised)</title></polygon>"
    )
    return Row(svg, WAVE_HEIGHT)


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


def _heat_svg(segments: Sequence[dict[str, Any]], modality: str, label: str, scale: TimeScale) -> str:
    """The lane's shading: opacity follows the segment probability."""
    return "".join(
        f'<rect x="{scale.x(start):.1f}" y="0" width="{scale.x(end) - scale.x(start):.1f}" '
        f'height="{LANE_HEIGHT}" fill="{COLORS[modality]}" fill-opacity="{0.8 * level / HEAT_LEVELS:.2f}">'
        f"<title>{_e(label)} ({modality}) {_span(start, end, scale)}: p ≈ {level / HEAT_LEVELS:.2f}</title>"
        "</rect>"
        for start, end, level in _heat_runs(segments, modality, label)
    )


def _event_title(event: dict[str, Any], modality: str, scale: TimeScale) -> str:
    return (
        f"{_e(event['label'])} ({MODALITY_NAMES[modality]}): {_span(event['onset'], event['offset'], scale)}, "
        f"confidence {event['confidence']:.2f}"
    )


def _event_rect(event: dict[str, Any], modality: str, y: float, height: float, scale: TimeScale) -> str:
    """One event as a bar from its onset to its offset (at least :data:`MIN_EVENT_WIDTH` wide)."""
    left = scale.x(event["onset"])
    width = max(scale.x(event["offset"]) - left, MIN_EVENT_WIDTH)
    paint = (
        f'fill="{COLORS[modality]}"'
        if modality == "audio_visual"
        else f'fill="none" stroke="{EDGE_COLORS[modality]}" stroke-width="1.5"'
    )
    return (
        f'<rect class="event {modality}" x="{left:.1f}" y="{y:g}" width="{width:.1f}" height="{height:g}" '
        f"{paint}><title>{_event_title(event, modality, scale)}</title></rect>"
    )


def _lane_row(result: dict[str, Any], modality: str, label: str, scale: TimeScale) -> Row:
    """One class in one modality: shading, outlined events, and audio-visual events as a band on top."""
    events = result["events"]
    bars = "".join(
        _event_rect(e, modality, 0.75, LANE_HEIGHT - 1.5, scale)
        for e in events[modality]
        if e["label"] == label
    )
    both = "".join(
        _event_rect(e, "audio_visual", 0, AV_MARK_HEIGHT, scale)
        for e in events["audio_visual"]
        if e["label"] == label
    )
    svg = (
        f'<g class="lane" data-modality="{modality}" data-label="{_e(label)}">'
        f'<text x="{LABEL_WIDTH - 8}" y="{LANE_HEIGHT - 5}" text-anchor="end">{_e(label)}</text>'
        f'<rect x="{LABEL_WIDTH}" y="0" width="{PLOT_WIDTH}" height="{LANE_HEIGHT}" fill="#000" '
        f'fill-opacity="0.04"/>{_heat_svg(result["segments"], modality, label, scale)}{bars}{both}</g>'
    )
    return Row(svg, LANE_HEIGHT)


def _group_row(result: dict[str, Any], modality: str, title: str, empty: str, scale: TimeScale) -> Row:
    """A group's heading and one lane per class with events in ``modality`` (``empty`` shown when none)."""
    labels = _lane_labels(result["events"], modality)
    caption = f"{MODALITY_NAMES[modality]} events" if labels else empty
    heading = (
        f'<text x="8" y="{GROUP_HEIGHT - 7}" font-weight="bold" font-size="13">{title}</text>'
        f'<text x="{LABEL_WIDTH}" y="{GROUP_HEIGHT - 7}" fill="#666">{caption}</text>'
    )
    lanes = [_lane_row(result, modality, label, scale) for label in labels]
    return _stack([Row(heading, GROUP_HEIGHT), *lanes], LANE_GAP)


def _axis_row(scale: TimeScale) -> Row:
    """The time axis: ticks and their labels, in seconds or m:ss."""
    right = LABEL_WIDTH + PLOT_WIDTH
    marks = "".join(
        f'<line x1="{scale.x(t):.1f}" x2="{scale.x(t):.1f}" y1="0" y2="5" stroke="#444"/>'
        f'<text class="tick" x="{scale.x(t):.1f}" y="17" text-anchor="middle">{_tick_label(t, scale)}</text>'
        for t in _ticks(scale)
    )
    unit = "m:ss" if scale.long else "s"
    svg = (
        f'<line x1="{LABEL_WIDTH}" x2="{right}" y1="0" y2="0" stroke="#444"/>{marks}'
        f'<text x="{LABEL_WIDTH - 22}" y="17" text-anchor="end">time ({unit})</text>'
    )
    return Row(svg, AXIS_HEIGHT)


def _window_starts(result: dict[str, Any], scale: TimeScale) -> list[float]:
    """Where the model's windows after the first start, when they are far enough apart to be drawn."""
    starts = [float(w["start"]) for w in result["windows"]]
    closest = min((scale.x(b) - scale.x(a) for a, b in itertools.pairwise(starts)), default=0.0)
    return starts[1:] if closest >= MIN_WINDOW_SPACING else []


def _verticals(result: dict[str, Any], scale: TimeScale, height: float) -> str:
    """Grid lines at the ticks and dashed lines where one of the model's windows starts, over all rows."""
    grid = "".join(
        f'<line x1="{scale.x(t):.1f}" x2="{scale.x(t):.1f}" y1="0" y2="{height:g}" stroke="#e4e4e4"/>'
        for t in _ticks(scale)
    )
    windows = "".join(
        f'<line class="window" x1="{scale.x(t):.1f}" x2="{scale.x(t):.1f}" y1="0" y2="{height:g}" '
        'stroke="#999" stroke-dasharray="3,3"/>'
        for t in _window_starts(result, scale)
    )
    return grid + windows


def _timeline_svg(
    result: dict[str, Any],
    thumbnails: np.ndarray,
    thumbnail_times: np.ndarray,
    waveform: np.ndarray | None,
    sample_rate: int,
    scale: TimeScale,
) -> str:
    """The inline SVG: frames, audio (or the no-audio note), the Audible and Visible lanes, the axis."""
    audio = (
        _note_row(NO_AUDIO_NOTE, "Audio") if waveform is None else _waveform_row(waveform, sample_rate, scale)
    )
    audio_empty = "none: no audio track" if waveform is None else "no audio event detected"
    empties = {"audio": audio_empty, "visual": "no visual event detected"}
    groups = [_group_row(result, modality, title, empties[modality], scale) for modality, title in GROUPS]
    body = _stack([_strip_row(thumbnails, thumbnail_times, scale), audio, *groups], ROW_GAP)
    axis = _axis_row(scale)
    height = body.height + ROW_GAP + axis.height
    width = LABEL_WIDTH + PLOT_WIDTH + RIGHT_MARGIN
    return (
        f'<svg class="timeline" viewBox="0 0 {width} {height:g}" width="{width}" height="{height:g}" '
        f'role="img" aria-label="timeline of the parsed events">'
        f"{_verticals(result, scale, body.height)}{body.svg}"
        f'<g transform="translate(0,{body.height + ROW_GAP:g})">{axis.svg}</g></svg>'
    )


def _duration_text(duration: float) -> str:
    return f"{duration:.1f} s ({_clock(duration)})" if duration >= LONG_VIDEO else f"{duration:.1f} s"


def _rule_text(rule: dict[str, Any]) -> str:
    """The decision rule's name and its parameters."""
    details = ", ".join(f"{_e(key)} {_e(value)}" for key, value in rule.items() if key != "rule")
    return f"<code>{_e(rule.get('rule', '?'))}</code>" + (f" ({details})" if details else "")


def _features_text(features: dict[str, dict[str, Any]]) -> str:
    return ", ".join(
        f"{_e(kind)} <code>{_e(attrs.get('weights', 'unknown'))}</code>" for kind, attrs in features.items()
    )


def _warning(features: dict[str, dict[str, Any]]) -> str:
    """A prominent notice when features come from randomly initialised networks (nothing otherwise)."""
    kinds = _random_init_kinds(features)
    if not kinds:
        return ""
    return (
        '<div class="warning" role="alert"><strong>These scores are meaningless for real videos.</strong> '
        f"The {_e(', '.join(kinds))} features come from {RANDOM_INIT} weights (as in the offline demo), "
        "so they carry no information about what is seen or heard; use features of the pretrained "
        "networks to parse real videos.</div>"
    )


def _header(result: dict[str, Any]) -> str:
    """Title, duration, checkpoint, decision rule and feature weights, with the random-weights warning."""
    windows = len(result["windows"])
    return (
        f"<h1>{_e(result['video'])} <small>({_duration_text(result['duration'])})</small></h1>"
        f'<p class="meta">Parsed in {windows} window'
        f"{'' if windows == 1 else 's'}; audio track: {'yes' if result['has_audio'] else 'none'}</p>"
        f'<p class="meta">Checkpoint <code>{_e(result["checkpoint"])}</code>; decision rule '
        f"{_rule_text(result['decision_rule'])}; features: {_features_text(result['features'])}</p>"
        f"{_warning(result['features'])}"
    )


def _legend(result: dict[str, Any], scale: TimeScale) -> str:
    """What the shading, bars and lines of the timeline mean."""
    windows = (
        '<span><span class="swatch" style="border-left:2px dashed #999"></span>start of a 10-s window '
        "the model parsed</span>"
        if _window_starts(result, scale)
        else ""
    )
    return (
        '<p class="legend">'
        f'<span><span class="swatch" style="background:linear-gradient(90deg,#fff,{COLORS["audio"]})"></span>'
        f'<span class="swatch" style="background:linear-gradient(90deg,#fff,{COLORS["visual"]})"></span>'
        "shading: segment probability (0 to 1)</span>"
        f'<span><span class="swatch" style="border:1.5px solid #333"></span>detected event</span>'
        f'<span><span class="swatch" style="background:{COLORS["audio_visual"]};height:.3em"></span>'
        f"audio-visual event (audible and visible)</span>{windows}"
        "<span>hover a bar for its times and confidence</span></p>"
    )


def _events_table(events: dict[str, list[dict[str, Any]]]) -> str:
    """All events, per modality in time order, as a plain table (seconds)."""
    rows = [
        f"<tr><td>{MODALITY_NAMES[modality]}</td><td>{_e(e['label'])}</td><td>{e['onset']:.2f}</td>"
        f"<td>{e['offset']:.2f}</td><td>{e['confidence']:.3f}</td></tr>"
        for modality in MODALITY_NAMES
        for e in sorted(events[modality], key=lambda event: (event["onset"], event["label"]))
    ]
    if not rows:
        return "<h2>Events</h2><p>No event detected.</p>"
    header = (
        "<tr><th>modality</th><th>label</th><th>onset (s)</th><th>offset (s)</th><th>confidence</th></tr>"
    )
    return (
        f'<h2>Events</h2><table class="events"><thead>{header}</thead><tbody>{"".join(rows)}</tbody></table>'
    )


def render_page(
    result: dict[str, Any],
    thumbnails: np.ndarray,
    thumbnail_times: np.ndarray,
    waveform: np.ndarray | None,
    sample_rate: int = 16000,
) -> str:
    """The parse page of one video as a self-contained HTML document.

    ``result`` is the parse JSON (video, duration, windows, per-second segments, events per modality,
    checkpoint, decision rule, features); ``thumbnails`` (n, h, w, 3) uint8 frames taken at
    ``thumbnail_times`` seconds; ``waveform`` (S,) mono audio at ``sample_rate``, None without an audio track.
    """
    scale = TimeScale(max(float(result["duration"]), 1e-3))
    svg = _timeline_svg(result, thumbnails, thumbnail_times, waveform, sample_rate, scale)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>AVVP parse: {_e(result['video'])}</title><style>{STYLE}</style></head>\n<body>\n"
        f"{_header(result)}\n{svg}\n{_legend(result, scale)}\n{_events_table(result['events'])}\n"
        "</body></html>\n"
    )
