"""The page ``avvp parse`` writes per video: self-contained, escaped, lanes and events on one time scale."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from avvp.parsing import page
from avvp.parsing.page import LABEL_WIDTH, NO_AUDIO_NOTE, PLOT_WIDTH, render_page

INSIDE, OUTSIDE = 0.9, 0.1
"""Segment probability of a class inside and outside its events in the synthetic results."""
WARNING = "meaningless for real videos"


def _events(duration: float, speech: str = "Speech", dog: str = "Dog") -> dict[str, list[dict]]:
    """Audible speech in the first fifth, a dog audible from the middle and visible around it."""
    whole = round(duration)

    def event(label: str, onset: float, offset: float, confidence: float) -> dict:
        return {"label": label, "onset": float(onset), "offset": float(offset), "confidence": confidence}

    return {
        "audio": [event(speech, 0, max(1, whole // 5), 0.88), event(dog, whole // 2, whole // 2 + 1, 0.71)],
        "visual": [event(dog, whole // 2 - 1, whole // 2 + 2, 0.64)],
        "audio_visual": [event(dog, whole // 2, whole // 2 + 1, 0.66)],
    }


def _probability(events: list[dict], label: str, second: int) -> float:
    inside = any(e["label"] == label and e["onset"] <= second < e["offset"] for e in events)
    return INSIDE if inside else OUTSIDE


def _result(
    duration: float = 25.0,
    video: str = "clips/party.mp4",
    weights: str = "random-init(seed=0)",
    has_audio: bool = True,
    events: dict[str, list[dict]] | None = None,
) -> dict:
    """A parse result as ``avvp parse`` writes it: one segment per second, 10-s windows."""
    events = _events(duration) if events is None else events
    labels = sorted({e["label"] for rows in events.values() for e in rows})
    seconds = range(int(np.ceil(duration)))
    segments = [
        {
            "start": float(s),
            "end": float(min(s + 1, duration)),
            "audio": {c: _probability(events["audio"], c, s) for c in labels} if has_audio else {},
            "visual": {c: _probability(events["visual"], c, s) for c in labels},
        }
        for s in seconds
    ]
    return {
        "video": video,
        "duration": float(duration),
        "has_audio": has_audio,
        "windows": [{"start": float(s), "end": float(min(s + 10, duration))} for s in seconds[::10]],
        "segments": segments,
        "events": events,
        "checkpoint": "runs/han/best.pt",
        "decision_rule": {"rule": "fused", "segment": 0.5, "video": 0.5},
        "features": {
            "resnet152": {"extractor": "resnet152", "weights": weights},
            "vggish": {"extractor": "vggish", "weights": "audioset"},
        },
    }


def _frames(duration: float, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``count`` (default one per second) solid frames of distinct colours at the middle of their interval."""
    count = int(np.ceil(duration)) if count is None else count
    times = (np.arange(count) + 0.5) * duration / count
    colours = np.stack(
        [np.arange(count) * 37 % 256, 255 - np.arange(count) * 91 % 256, np.full(count, 128)], 1
    )
    frames = np.broadcast_to(colours[:, None, None, :].astype(np.uint8), (count, 45, 80, 3)).copy()
    return frames, times


def _waveform(duration: float, sample_rate: int = 16000) -> np.ndarray:
    t = np.arange(round(duration * sample_rate)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _render(result: dict, frames: int | None = None, audio: bool = True) -> str:
    thumbnails, times = _frames(result["duration"], frames)
    return render_page(result, thumbnails, times, _waveform(result["duration"]) if audio else None)


def _lane(html: str, modality: str, label: str) -> str:
    match = re.search(rf'<g class="lane" data-modality="{modality}" data-label="{label}">(.*?)</g>', html)
    assert match, f"no {modality} lane for {label}"
    return match.group(1)


def test_page_loads_nothing_from_elsewhere():
    html = _render(_result())
    references = re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)""", html)
    assert references, "the frames should be embedded as a data URI"
    assert all(ref.startswith("data:") for ref in references)
    for external in ("http://", "https://", "<link", "<script", "@import", "url(", "<iframe", "<object"):
        assert external not in html


def test_each_detected_class_has_a_lane_in_its_modality():
    html = _render(_result())
    lanes = re.findall(r'<g class="lane" data-modality="(\w+)" data-label="([^"]*)"', html)
    assert lanes == [("audio", "Speech"), ("audio", "Dog"), ("visual", "Dog")]  # LLP class order
    assert html.index(">Audible<") < html.index('data-modality="audio"') < html.index(">Visible<")
    assert html.index(">Visible<") < html.index('data-modality="visual"')


def test_lanes_are_shaded_by_the_segment_probability_and_show_their_events():
    html = _render(_result())
    speech = _lane(html, "audio", "Speech")
    opacities = {float(o) for o in re.findall(r'fill-opacity="([\d.]+)"', speech)}
    assert {round(0.8 * INSIDE, 2), round(0.8 * OUTSIDE, 2)} <= opacities
    assert speech.count('class="event audio"') == 1
    dog_visual = _lane(html, "visual", "Dog")
    assert dog_visual.count('class="event visual"') == 1
    assert dog_visual.count('class="event audio_visual"') == 1
    assert 'class="event audio"' not in dog_visual


def test_every_event_is_listed_with_its_times_and_confidence():
    result = _result()
    html = _render(result)
    names = {"audio": "audio", "visual": "visual", "audio_visual": "audio-visual"}
    for modality, events in result["events"].items():
        for e in events:
            row = (
                f"<tr><td>{names[modality]}</td><td>{e['label']}</td><td>{e['onset']:.2f}</td>"
                f"<td>{e['offset']:.2f}</td><td>{e['confidence']:.3f}</td></tr>"
            )
            assert row in html
            tooltip = f"{e['onset']:.2f} to {e['offset']:.2f} s, confidence {e['confidence']:.2f}</title>"
            assert tooltip in html


def test_without_audio_track_the_page_says_so_instead_of_a_waveform():
    result = _result(has_audio=False, events={**_events(25), "audio": [], "audio_visual": []})
    silent = _render(result, audio=False)
    assert NO_AUDIO_NOTE in silent
    assert 'class="waveform"' not in silent
    assert 'data-modality="audio"' not in silent
    audible = _render(_result())
    assert NO_AUDIO_NOTE not in audible
    points = re.search(r'class="waveform" points="([^"]*)"', audible).group(1)
    assert len(points.split()) == 2 * PLOT_WIDTH  # a max and a min per pixel column


def test_text_from_the_result_is_escaped():
    video = """clips/<b>"party"</b> & 'co'.mp4"""
    hostile = 'Dog<script>alert("x")</script>'
    result = _result(video=video, events=_events(25, dog=hostile), weights='random-init"><img src=x>')
    result["checkpoint"] = "runs/<i>han</i>/best.pt"
    html = _render(result)
    for raw in ("<b>", "<script", "<img", "<i>"):
        assert raw not in html
    assert "clips/&lt;b&gt;&#34;party&#34;&lt;/b&gt; &amp; &#39;co&#39;.mp4" in html  # markupsafe's entities
    assert "Dog&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert 'data-label="Dog&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"' in html  # attributes too
    assert "runs/&lt;i&gt;han&lt;/i&gt;/best.pt" in html


@pytest.mark.parametrize(("duration", "last_tick", "unit"), [(4.0, "4", "s"), (600.0, "10:00", "m:ss")])
def test_short_and_long_videos_share_one_time_scale(duration, last_tick, unit):
    html = _render(_result(duration))
    middle = f"{LABEL_WIDTH + PLOT_WIDTH / 2:.1f}"
    assert re.search(rf'<rect class="event audio_visual" x="{middle}"', html), "an event at half the duration"
    assert f'<image class="frames" x="{LABEL_WIDTH}" y="0" width="{PLOT_WIDTH}"' in html
    ticks = re.findall(r'<text class="tick" x="([\d.]+)"[^>]*>([^<]*)</text>', html)
    assert ticks[0] == (f"{LABEL_WIDTH:.1f}", "0:00" if unit == "m:ss" else "0")
    assert ticks[-1] == (f"{LABEL_WIDTH + PLOT_WIDTH:.1f}", last_tick)
    assert f"time ({unit})" in html


def test_filmstrip_shows_the_frame_nearest_each_tile():
    duration = 25.0
    thumbnails, times = _frames(duration)
    html = render_page(_result(duration), thumbnails, times, None)
    uri = re.search(r'<image class="frames"[^>]*href="data:image/jpeg;base64,([^"]+)"', html).group(1)
    strip = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB"), dtype=int)
    tiles = html.count("<title>frame at ")
    assert 1 < tiles < len(thumbnails)
    for k in range(tiles):
        centre = (k + 0.5) / tiles
        expected = thumbnails[np.abs(times - centre * duration).argmin(), 0, 0]
        pixel = strip[strip.shape[0] // 2, int(centre * strip.shape[1])]
        assert np.abs(pixel - expected).max() <= 12, f"tile {k}"


def test_a_ten_minute_page_with_a_frame_per_second_stays_small():
    duration = 600.0
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (600, 90, 160, 3), dtype=np.uint8)  # the worst case for JPEG
    html = render_page(_result(duration), noise, np.arange(600) + 0.5, _waveform(duration))
    assert len(html.encode()) < 2_000_000
    assert html.count("<title>frame at ") <= PLOT_WIDTH // page.TILE_WIDTH_RANGE[0]


@pytest.mark.parametrize(("weights", "warned"), [("random-init(seed=0)", True), ("IMAGENET1K_V1", False)])
def test_random_init_features_are_flagged(weights, warned):
    html = _render(_result(weights=weights))
    assert (WARNING in html) is warned
    assert ('class="warning"' in html) is warned
