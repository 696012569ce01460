"""Fetching a shard's clips: fake yt-dlp on PATH, id validation, manifests, resume, local copies."""

from __future__ import annotations

import json
import os
import re
import stat
import sys

import pytest

from avvp.cli import main
from avvp.preparation.download import fetch_shard, read_manifest, ytdlp_command
from avvp.preparation.shard_names import SHARD_PATTERN, shard_names
from avvp.preparation.sharding import read_clip_list, split_into_shards

FAKE_YTDLP = """#!{python}
import json, pathlib, sys
args = sys.argv[1:]
with open({calls!r}, "a") as log:
    log.write(json.dumps(args) + "\\n")
url = args[-1]
if "GONEgoneGON" in url:
    sys.stderr.write("ERROR: [youtube] GONEgoneGON: Video unavailable\\n")
    sys.exit(1)
out = pathlib.Path(args[args.index("--output") + 1])
out.write_bytes(b"fake mp4 " + args[args.index("--download-sections") + 1].encode())
"""


@pytest.fixture
def fake_ytdlp(tmp_path, monkeypatch):
    """A fake ``yt-dlp`` on PATH that records its argument lists; id GONEgoneGON is unavailable."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.jsonl"
    script = bin_dir / "yt-dlp"
    script.write_text(FAKE_YTDLP.format(python=sys.executable, calls=str(calls)))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def _calls(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _shard(tmp_path, clips):
    path = tmp_path / "000.txt"
    path.write_text("".join(c + "\n" for c in clips))
    return path


def _download(tmp_path, clips_file, *extra):
    argv = ["download", "--clips", str(clips_file), "--video-dir", str(tmp_path / "videos"),
            "--manifest", str(tmp_path / "m.tsv"), "--video-list", str(tmp_path / "v.txt"), *extra]  # fmt: skip
    return main(argv)


def test_downloads_trimmed_clips_records_unavailable_and_resumes(tmp_path, fake_ytdlp):
    clips = ["AbCdEfGhI-x_20_30", "GONEgoneGON_0_10", "x_y_z", "Zz9_Zz9_Zz9_101.8_111.8"]
    shard = _shard(tmp_path, clips)
    assert _download(tmp_path, shard) == 0
    statuses = {s.clip: s for s in read_manifest(tmp_path / "m.tsv")}
    assert [statuses[c].status for c in clips] == ["downloaded", "unavailable", "invalid", "downloaded"]
    assert "Video unavailable" in statuses["GONEgoneGON_0_10"].detail
    assert (tmp_path / "videos" / "AbCdEfGhI-x_20_30.mp4").read_bytes() == b"fake mp4 *20-30"
    assert (tmp_path / "videos" / "Zz9_Zz9_Zz9_101.8_111.8.mp4").read_bytes() == b"fake mp4 *101.8-111.8"
    assert read_clip_list(tmp_path / "v.txt") == [
        str(tmp_path / "videos" / "AbCdEfGhI-x_20_30.mp4"),
        str(tmp_path / "videos" / "Zz9_Zz9_Zz9_101.8_111.8.mp4"),
    ]
    first = _calls(fake_ytdlp)
    assert len(first) == 3
    assert first[0][-2:] == ["--", "https://www.youtube.com/watch?v=AbCdEfGhI-x"]

    assert _download(tmp_path, shard) == 0  # rerun: finished clips are not fetched again
    again = _calls(fake_ytdlp)[len(first) :]
    assert [c[-1] for c in again] == ["https://www.youtube.com/watch?v=GONEgoneGON"]
    statuses = {s.clip: s.status for s in read_manifest(tmp_path / "m.tsv")}
    assert statuses["AbCdEfGhI-x_20_30"] == "present"


def test_ids_are_validated_before_any_command_is_built(tmp_path):
    with pytest.raises(ValueError, match="invalid YouTube id"):
        ytdlp_command("abc; rm -rf", 0, 10, tmp_path / "x.mp4")
    command = ytdlp_command("-dashStart1", 0, 10, tmp_path / "x.mp4")
    assert command[-2:] == ["--", "https://www.youtube.com/watch?v=-dashStart1"]
    assert all(isinstance(part, str) for part in command)


def test_shell_metacharacters_never_reach_a_shell(tmp_path, fake_ytdlp):
    shard = _shard(tmp_path, ["$(touch pwn)_0_10", "aaaaaaaaaaa_0_10"])
    assert _download(tmp_path, shard) == 0
    assert [s.status for s in read_manifest(tmp_path / "m.tsv")] == ["invalid", "downloaded"]
    assert not (tmp_path / "pwn").exists() and not os.path.exists("pwn")


def test_source_dir_links_local_clips_by_filename_or_youtube_id(tmp_path):
    source = tmp_path / "copy"
    source.mkdir()
    (source / "aaaaaaaaaaa_0_10.mp4").write_bytes(b"one")
    (source / "bbbbbbbbbbb.mp4").write_bytes(b"two")
    shard = _shard(tmp_path, ["aaaaaaaaaaa_0_10", "bbbbbbbbbbb_30_40", "ccccccccccc_0_10"])
    assert _download(tmp_path, shard, "--source-dir", str(source)) == 0
    assert [s.status for s in read_manifest(tmp_path / "m.tsv")] == ["linked", "linked", "unavailable"]
    assert (tmp_path / "videos" / "bbbbbbbbbbb_30_40.mp4").read_bytes() == b"two"
    assert len(read_clip_list(tmp_path / "v.txt")) == 2


def test_missing_ytdlp_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    shard = _shard(tmp_path, ["aaaaaaaaaaa_0_10"])
    assert _download(tmp_path, shard, "--yt-dlp", "no-such-yt-dlp") == 2
    assert "no-such-yt-dlp: not found, but 1 clip(s) must be downloaded" in capsys.readouterr().err
    assert not (tmp_path / "m.tsv").exists()


def test_fetch_shard_with_monkeypatched_downloader(tmp_path):
    seen = []

    def downloader(command):
        seen.append(command)
        return False, "HTTP Error 429"

    statuses = fetch_shard(["aaaaaaaaaaa_0_10"], tmp_path / "v", downloader=downloader)
    assert statuses[0].status == "unavailable" and statuses[0].detail == "HTTP Error 429"
    assert seen[0][0] == "yt-dlp"


def test_shards_are_contiguous_balanced_and_complete(tmp_path):
    ids = [f"{i:011d}_0_10" for i in range(11849)]
    shards = split_into_shards(ids, 40)
    assert [v for shard in shards for v in shard] == ids
    assert {len(s) for s in shards} == {296, 297}
    labels = tmp_path / "full.csv"
    labels.write_text("filename\tevent_labels\n" + "".join(f"{v}\tDog\n" for v in ids[:5]))
    assert (
        main(["shard", "--clips", str(labels), "--num-shards", "2", "--output-dir", str(tmp_path / "s")]) == 0
    )
    assert read_clip_list(tmp_path / "s" / "000.txt") == ids[:3]
    assert read_clip_list(tmp_path / "s" / "001.txt") == ids[3:5]


def test_every_shard_name_matches_the_workflows_wildcard():
    names = shard_names(1001)
    assert names[:2] == ["000", "001"] and names[-1] == "1000"
    assert all(re.fullmatch(SHARD_PATTERN, name) for name in names)


def test_extra_clips_are_sharded_after_the_labelled_ones(tmp_path, capsys):
    labels = tmp_path / "full.csv"
    labels.write_text("filename\tevent_labels\naaaaaaaaaaa_0_10\tDog\nbbbbbbbbbbb_5_15\tDog\n")
    extra = tmp_path / "audioset.txt"
    extra.write_text("# AudioSet clips\nccccccccccc_30_40\naaaaaaaaaaa_0_10\n\nddddddddddd_1.5_11.5\n")
    args = ["shard", "--clips", str(labels), "--num-shards", "2", "--output-dir", str(tmp_path / "s")]
    assert main([*args, "--extra-clips", str(extra)]) == 0
    shards = [read_clip_list(tmp_path / "s" / f"{i:03d}.txt") for i in range(2)]
    assert shards == [["aaaaaaaaaaa_0_10", "bbbbbbbbbbb_5_15"], ["ccccccccccc_30_40", "ddddddddddd_1.5_11.5"]]
