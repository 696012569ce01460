"""The report's pseudo-label section: how well each teacher's segment-level pseudo-labels agree with the
dense val/test labels (the agreement JSON of ``avvp pseudo-labels --agreement``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from avvp.errors import InputError
from avvp.reports.inputs import read_json

TITLE = "Teachers' pseudo-labels"
NOTE = (
    "Segment-level pseudo-labels of each teacher (VALOR: CLIP for visual, CLAP for audio, each restricted to "
    "the clip's video-level labels), scored as predictions against the dense labels with the LLP protocol. "
    "VALOR reports 80.5 (audio) and 61.7 (visual) segment-level F1 for its pseudo-labels. Teachers with "
    "`random-init` weights (the demo's tiny CLIP and CLAP) are meaningless: they only show that the path "
    "runs end to end."
)
HEADER = ["teacher", "split", "clips", "visual weights", "audio weights", "segment audio", "segment visual",
          "segment audio-visual", "event audio", "event visual"]  # fmt: skip


def read_agreement(path: str) -> dict[str, Any]:
    """An agreement JSON (``teacher`` and ``splits``); :class:`InputError` naming the file when unreadable."""
    data = read_json(path)
    if not isinstance(data, dict) or "splits" not in data or "teacher" not in data:
        raise InputError(f"{path}: not an agreement file of 'avvp pseudo-labels' (no teacher or splits)")
    return data


def _weights(identity: Mapping[str, Any]) -> str:
    """The weights behind one modality's labels: the extractor's weights, or the released source."""
    extractor = identity.get("extractor")
    if isinstance(extractor, Mapping):
        return f"{extractor.get('weights', 'unknown')} ({extractor.get('model', '?')})"
    return str(identity.get("source", "unknown"))


def agreement_rows(agreements: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """One row of :data:`HEADER` per teacher and split (scores with one decimal)."""
    rows = []
    for name, data in agreements.items():
        teacher = data["teacher"]
        for split, scores in data["splits"].items():
            segment, event = scores["segment"], scores["event"]
            rows.append(
                [
                    name,
                    split,
                    str(scores["videos"]),
                    _weights(teacher.get("visual", {})),
                    _weights(teacher.get("audio", {})),
                    *(f"{segment[m]:.1f}" for m in ("audio", "visual", "audio_visual")),
                    *(f"{event[m]:.1f}" for m in ("audio", "visual")),
                ]
            )
    return rows
