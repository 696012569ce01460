"""One video's timeline from the parser's outputs on its consecutive 10-s windows.

The windows' segment decisions (the checkpoint's decision rule, applied per window as on LLP clips) are
laid end to end, one segment per second of video, cut at the video's end; events are maximal runs of
positive segments, in seconds of the original video, never past its end. A video without an audio track
has no audio (and so no audio-visual) events.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from avvp.data.labels import CLASSES, EventRow, segments_to_events
from avvp.decision_rules import FUSED_RULE
from avvp.inference import Probabilities, decide
from extractors.windows import covering_count

MODALITIES = ("audio", "visual")


@dataclass
class Timeline:
    """Per-second segment probabilities ``prob`` (S, 2, 25) and decisions ``positive`` (S, 2, 25) bool of one
    video lasting ``duration`` seconds (S: its seconds, a trailing eighth of a second not counted, as the
    windows do); modality axis ordered (audio, visual)."""

    name: str
    duration: float
    prob: np.ndarray
    positive: np.ndarray
    has_audio: bool

    @cached_property
    def events(self) -> dict[str, list[EventRow]]:
        """Events per modality (``audio``, ``visual``, ``audio_visual``) as rows of whole segments."""
        tracks = {
            "audio": self.positive[:, 0],
            "visual": self.positive[:, 1],
            "audio_visual": self.positive[:, 0] & self.positive[:, 1],
        }
        return {name: segments_to_events([self.name], track[None]) for name, track in tracks.items()}


def stitch(
    name: str, probabilities: Probabilities, duration: float, has_audio: bool, rule: dict[str, Any]
) -> Timeline:
    """The timeline of a video whose windows (in order) gave ``probabilities`` (W clips).

    ``rule`` is the checkpoint's decision rule, e.g. ``{"rule": "fused", "segment": s, "video": v}`` (a
    segment is positive where its probability is ``>= s`` and the class's video-level probability of its
    window, fused or its modality's as the rule says, is ``>= v``; see :func:`avvp.inference.decide`).
    """
    audio, visual = decide(probabilities, rule["segment"], rule["video"], rule.get("rule", FUSED_RULE))
    segments = covering_count(duration, 1.0)
    positive = np.stack((audio, visual), axis=2).reshape(-1, 2, len(CLASSES))[:segments]
    prob = probabilities.frame_prob.reshape(-1, 2, len(CLASSES))[:segments]
    if not has_audio:
        positive[:, 0] = False
    return Timeline(name, duration, prob, positive, has_audio)


def _event_dict(row: EventRow, timeline: Timeline, modality: str) -> dict[str, Any]:
    """One event in seconds with its confidence: the mean segment probability over the event."""
    c = CLASSES.index(row.label)
    axes = {"audio": [0], "visual": [1], "audio_visual": [0, 1]}[modality]
    confidence = float(timeline.prob[row.onset : row.offset, axes, c].mean())
    return {
        "label": row.label,
        "onset": float(row.onset),
        "offset": float(min(row.offset, timeline.duration)),
        "confidence": round(confidence, 4),
    }


def timeline_result(timeline: Timeline, window_starts: list[float]) -> dict[str, Any]:
    """The JSON-ready description of a timeline: windows, per-second probabilities of the classes that have
    an event in either modality, and the events in seconds (see docs/parsing.md)."""
    events = timeline.events
    detected = sorted({row.label for rows in events.values() for row in rows}, key=CLASSES.index)
    columns = [CLASSES.index(label) for label in detected]
    segments = []
    for s in range(len(timeline.prob)):
        segment: dict[str, Any] = {"start": float(s), "end": float(min(s + 1, timeline.duration))}
        for m, modality in enumerate(MODALITIES):
            if modality == "audio" and not timeline.has_audio:
                segment[modality] = {}
                continue
            segment[modality] = {CLASSES[c]: round(float(timeline.prob[s, m, c]), 4) for c in columns}
        segments.append(segment)
    return {
        "duration": timeline.duration,
        "has_audio": timeline.has_audio,
        "windows": [
            {"start": float(start), "end": float(min(start + 10.0, timeline.duration))}
            for start in window_starts
        ],
        "segments": segments,
        "events": {
            modality: [_event_dict(row, timeline, modality) for row in rows]
            for modality, rows in events.items()
        },
    }
