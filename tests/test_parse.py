"""``avvp parse``: windows and stitching in seconds, a video without audio, a corrupt file among good ones,
the checkpoint's feature identity, and the JSON, CSV and page outputs agreeing."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
import torch
from extract_helpers import make_clip
from train_helpers import one_torch_thread  # noqa: F401

from avvp.cli import main
from avvp.data.labels import CLASSES
from avvp.decision_rules import FUSED_RULE
from avvp.models import ParserConfig, build_model
from avvp.training.checkpoints import native_payload, save_checkpoint
from extractors.networks import NetworkOptions, build_networks

KINDS = ["vggish", "resnet152", "r2plus1d"]


def recorded_identity(**changes: dict[str, object]) -> dict[str, dict[str, object]]:
    """The identity a checkpoint records for random-init features at 16 px (as 'avvp train' writes it),
    with ``changes`` per kind."""
    options = NetworkOptions(weights=dict.fromkeys(KINDS, "random"), image_size=16, clip_size=16)
    networks = build_networks(KINDS, options, torch.device("cpu"))
    identity = {n.kind: n.record.identity() for n in networks}
    for kind in identity:
        identity[kind].update(changes.get(kind, {}), standardization=None)
    return identity


def write_checkpoint(path: Path, identity: dict, segment: float = 0.5, video: float = 0.3) -> Path:
    torch.manual_seed(0)
    model = build_model(ParserConfig(d_model=16, feedforward=16))
    with torch.no_grad():  # make every class likely so that events appear
        model.pooling.classifier.bias.fill_(0.3)
    decision = {"rule": FUSED_RULE, "segment": segment, "video": video}
    save_checkpoint(path, native_payload(model, 1, {}, identity, decision))
    return path


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    root = tmp_path_factory.mktemp("parse")
    videos = {
        "long": make_clip(root / "long.mp4", seconds=25.0, fps=8, size=(32, 24)),
        "short": make_clip(root / "short.mp4", seconds=4.0, fps=8, size=(32, 24)),
        "silent": make_clip(root / "silent.mp4", seconds=10.0, fps=8, size=(32, 24), audio=False),
    }
    (root / "broken.mp4").write_bytes(b"this is not a video")
    checkpoint = write_checkpoint(root / "best.pt", recorded_identity())
    out = root / "out"
    out.mkdir()
    (out / "broken.json").write_text("an earlier result\n")
    code = main(
        ["parse", str(videos["long"]), str(videos["short"]), str(root / "broken.mp4"), str(videos["silent"]),
         "--checkpoint", str(checkpoint), "--output-dir", str(out), "--device", "cpu"]
    )  # fmt: skip
    results = {name: json.loads((out / f"{name}.json").read_text()) for name in videos}
    return code, out, results


def test_windows_are_stitched_in_seconds(parsed):
    _, _, results = parsed
    long, short = results["long"], results["short"]
    assert long["duration"] == pytest.approx(25.0, abs=0.1)
    assert [w["start"] for w in long["windows"]] == [0.0, 10.0, 20.0]
    assert long["windows"][-1]["end"] == pytest.approx(long["duration"])
    assert len(long["segments"]) == 25 and long["segments"][-1]["end"] <= long["duration"]
    assert [w["start"] for w in short["windows"]] == [0.0] and len(short["segments"]) == 4
    for result in results.values():
        events = [e for rows in result["events"].values() for e in rows]
        assert events, "the biased model should find events"
        for event in events:
            assert 0 <= event["onset"] < event["offset"] <= result["duration"] + 1e-9
            assert event["label"] in CLASSES and 0 <= event["confidence"] <= 1
    assert max(e["offset"] for e in short["events"]["visual"]) <= 4.0 + 1e-9


def test_a_video_without_audio_has_visual_events_only(parsed):
    _, out, results = parsed
    silent = results["silent"]
    assert silent["has_audio"] is False
    assert silent["events"]["audio"] == [] and silent["events"]["audio_visual"] == []
    assert silent["events"]["visual"]
    assert "no audio track" in (out / "silent.html").read_text()


def test_a_corrupt_file_is_recorded_and_the_others_parsed(parsed):
    code, out, results = parsed
    assert code == 1
    rows = list(csv.reader((out / "failures.tsv").open(), delimiter="\t"))
    assert len(rows) == 2 and rows[1][0].endswith("broken.mp4") and "broken.mp4" in rows[1][2]
    assert (out / "broken.json").read_text() == "an earlier result\n"  # nothing earlier overwritten
    assert not (out / "broken.html").exists()
    assert set(results) == {"long", "short", "silent"}


def test_json_and_llp_csvs_agree(parsed):
    _, out, results = parsed
    for modality in ("audio", "visual"):
        with (out / f"pred_{modality}.csv").open() as handle:
            rows = {
                (r["filename"], r["event_labels"], int(r["onset"]), int(r["offset"]))
                for r in csv.DictReader(handle, delimiter="\t")
            }
        expected = {
            (name, e["label"], int(e["onset"]), int(-(-e["offset"] // 1)))
            for name, result in results.items()
            for e in result["events"][modality]
        }
        assert rows == expected


def test_pages_are_self_contained(parsed):
    _, out, _ = parsed
    for name in ("long", "short", "silent"):
        page = (out / f"{name}.html").read_text()
        assert (
            "http://" not in page
            and "https://" not in page
            and "<link" not in page
            and "<script src" not in page
        )
        assert "random-init" in page


def test_the_override_parses_with_features_made_differently_and_warns(tmp_path, caplog):
    video = make_clip(tmp_path / "clip.mp4", seconds=3.0, fps=8, size=(32, 24))
    checkpoint = write_checkpoint(tmp_path / "best.pt", recorded_identity(resnet152={"fps": 4}))
    args = [
        "parse",
        str(video),
        "--checkpoint",
        str(checkpoint),
        "--output-dir",
        str(tmp_path / "out"),
        "--device",
        "cpu",
    ]
    with caplog.at_level(logging.WARNING):
        assert main([*args, "--allow-feature-mismatch"]) == 0
    assert "using them anyway" in caplog.text
    assert (tmp_path / "out" / "clip.json").is_file()


def test_a_rerun_into_the_folder_leaves_only_its_own_pages_and_shows_progress(parsed, tmp_path, capsys):
    _, first, _ = parsed
    root = first.parent
    out = tmp_path / "out"
    out.mkdir()
    for name in ("long", "short", "silent"):  # the first run's results
        for suffix in (".json", ".html"):
            (out / f"{name}{suffix}").write_bytes((first / f"{name}{suffix}").read_bytes())
    (out / "parsed.txt").write_bytes((first / "parsed.txt").read_bytes())
    (out / "notes.html").write_text("not written by parse\n")
    assert (first / "parsed.txt").read_text().split() == ["long", "short", "silent"]
    code = main(
        ["parse", str(root / "short.mp4"), str(root / "broken.mp4"), "--checkpoint", str(root / "best.pt"),
         "--output-dir", str(out), "--device", "cpu", "--tolerate-failures"]
    )  # fmt: skip
    assert code == 0
    progress = capsys.readouterr().err  # shown although stderr is not a terminal here
    assert "parsing: 100%" in progress and "2/2" in progress
    assert sorted(p.name for p in out.iterdir()) == [
        "failures.tsv", "notes.html", "parsed.txt", "pred_audio.csv", "pred_visual.csv", "short.html",
        "short.json",
    ]  # fmt: skip
    with (out / "pred_audio.csv").open() as handle:
        assert {row["filename"] for row in csv.DictReader(handle, delimiter="\t")} <= {"short"}
    assert (out / "parsed.txt").read_text() == "short\n"


def test_a_parser_on_clip_and_clap_features_parses_videos(tmp_path):
    kinds = ["clap", "clip", "r2plus1d"]
    options = NetworkOptions(
        weights=dict.fromkeys(kinds, "random"), clip_model="tiny", clap_model="tiny", clip_size=16
    )
    networks = build_networks(kinds, options, torch.device("cpu"))
    identity = {n.kind: {**n.record.identity(), "standardization": None} for n in networks}
    torch.manual_seed(0)
    config = ParserConfig(
        d_model=16, feedforward=16, num_heads=2, num_layers=2, stream_order="sequential",
        inputs={"audio": "clap", "visual": "clip"},
    )  # fmt: skip
    decision = {"rule": FUSED_RULE, "segment": 0.5, "video": 0.3}
    save_checkpoint(tmp_path / "best.pt", native_payload(build_model(config), 1, {}, identity, decision))
    video = make_clip(tmp_path / "v.mp4", seconds=12.0, fps=8, size=(32, 24))
    code = main(
        ["parse", str(video), "--checkpoint", str(tmp_path / "best.pt"), "--output-dir", str(tmp_path / "out"),
         "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    result = json.loads((tmp_path / "out" / "v.json").read_text())
    assert [w["start"] for w in result["windows"]] == [0.0, 10.0]
    assert sorted(result["features"]) == sorted(kinds) and result["features"]["clip"]["model"] == "tiny"
