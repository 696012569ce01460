"""The synthetic demo dataset: real MP4s, distinct per-class signals, LLP-format labels, deterministic."""

from __future__ import annotations

import av
import numpy as np
import pytest

from avvp.cli import main
from avvp.data.labels import CLASSES, read_dense_labels, read_event_rows, read_weak_labels
from avvp.preparation.demo import TONE_HZ, DemoOptions, plan_clips

TINY = [
    "--num-train",
    "3",
    "--num-val",
    "2",
    "--num-test",
    "2",
    "--num-classes",
    "3",
    "--frame-size",
    "48",
    "--fps",
    "8",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    assert main(["make-demo", "--output", str(root), "--seed", "3", *TINY]) == 0
    return root


def _decode(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        codecs = (video.codec_context.name, audio.codec_context.name)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    with av.open(str(path)) as container:
        sound = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
        rate = container.streams.audio[0].rate
    return codecs, frames, sound, rate


def test_demo_writes_llp_format_labels(demo):
    ann = demo / "annotations"
    train, val, test = (
        read_weak_labels(ann / n) for n in ("AVVP_train.csv", "AVVP_val_pd.csv", "AVVP_test_pd.csv")
    )
    assert (len(train), len(val), len(test)) == (3, 2, 2)
    full = read_weak_labels(ann / "AVVP_dataset_full.csv")
    assert full.video_ids == train.video_ids + val.video_ids + test.video_ids
    assert (full.labels[:, 3:] == 0).all()
    dense_ids = val.video_ids + test.video_ids
    audio = read_dense_labels(ann / "AVVP_eval_audio.csv", dense_ids, lenient=False)
    visual = read_dense_labels(ann / "AVVP_eval_visual.csv", dense_ids, lenient=False)
    weak = np.concatenate([val.labels, test.labels]) > 0
    assert ((audio | visual).any(axis=1) == weak).all()
    evaluated = {e.video_id for e in read_event_rows(ann / "AVVP_eval_audio.csv")}
    assert evaluated <= set(dense_ids)


def test_demo_clips_are_h264_aac_with_class_signals(demo):
    ids = read_weak_labels(demo / "annotations" / "AVVP_val_pd.csv").video_ids
    audio_gt = read_dense_labels(demo / "annotations" / "AVVP_eval_audio.csv", ids)
    visual_gt = read_dense_labels(demo / "annotations" / "AVVP_eval_visual.csv", ids)
    checked = {"audio": 0, "visual": 0}
    for i, vid in enumerate(ids):
        codecs, frames, sound, rate = _decode(demo / "videos" / f"{vid}.mp4")
        assert codecs == ("h264", "aac")
        assert frames.shape[1:] == (48, 48, 3) and abs(len(frames) - 80) <= 1
        assert abs(len(sound) / rate - 10) < 0.1
        for c in range(3):
            spectrum = [
                np.abs(np.fft.rfft(sound[s * rate : (s + 1) * rate]))[int(TONE_HZ[c])] for s in range(10)
            ]
            on = np.array(spectrum)[audio_gt[i, :, c]]
            off = np.array(spectrum)[~audio_gt[i, :, c]]
            if len(on) and len(off):
                assert on.min() > 5 * off.max(), f"{vid}: tone of {CLASSES[c]} not confined to its events"
                checked["audio"] += 1
            row, col = divmod(c, 3)
            cell = frames[:80, row * 16 : (row + 1) * 16, col * 16 : (col + 1) * 16].astype(float)
            contrast = cell.reshape(10, 8, -1, 3).std(axis=2).mean(axis=(1, 2))
            shown, hidden = contrast[visual_gt[i, :, c]], contrast[~visual_gt[i, :, c]]
            if len(shown) and len(hidden):
                assert shown.min() > 2 * hidden.max(), (
                    f"{vid}: patch of {CLASSES[c]} not confined to its events"
                )


def test_plan_is_deterministic_and_mixes_modalities():
    options = DemoOptions(seed=7, num_train=60, num_val=10, num_test=10)
    first, again, other = plan_clips(options), plan_clips(options), plan_clips(DemoOptions(seed=8))
    assert [(c.video_id, c.audio.tobytes(), c.visual.tobytes()) for c in first] == [
        (c.video_id, c.audio.tobytes(), c.visual.tobytes()) for c in again
    ]
    assert [c.audio.tobytes() for c in first[:20]] != [c.audio.tobytes() for c in other[:20]]
    audible_only = sum(int((c.audio.any(0) & ~c.visual.any(0)).sum()) for c in first)
    visible_only = sum(int((c.visual.any(0) & ~c.audio.any(0)).sum()) for c in first)
    assert audible_only > 5 and visible_only > 5
    partial = sum(int((c.audio.any(0) & ~c.audio.all(0)).sum()) for c in first)
    assert partial > 20


def test_same_seed_gives_identical_files(tmp_path):
    args = ["--num-train", "1", "--num-val", "1", "--num-test", "1", "--frame-size", "32", "--fps", "4"]
    for name in ("a", "b"):
        assert main(["make-demo", "--output", str(tmp_path / name), "--seed", "5", *args]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 9
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
