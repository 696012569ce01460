"""The LLP label readers: real files, and each kind of malformed file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avvp.data.labels import (
    CLASSES,
    AnnotationError,
    EventRow,
    parse_clip_name,
    read_dense_labels,
    read_event_rows,
    read_weak_labels,
    segments_to_events,
    write_event_rows,
    write_weak_labels,
)


def write(tmp_path: Path, text: str, name: str = "labels.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_classes_in_published_order():
    assert len(CLASSES) == 25
    assert CLASSES[0] == "Speech" and CLASSES[5] == "Frying_(food)" and CLASSES[-1] == "Clapping"


def test_real_splits(llp_dir: Path):
    train = read_weak_labels(llp_dir / "AVVP_train.csv")
    assert len(train) == 10000 and train.labels.shape == (10000, 25)
    assert train.video_ids[0] == "BjCEufrlXm4_20_30"
    assert train.labels[0, CLASSES.index("Speech")] == 1 and train.labels[0, CLASSES.index("Dog")] == 1
    assert train.labels[0].sum() == 2
    test = read_weak_labels(llp_dir / "AVVP_test_pd.csv")
    audio = read_dense_labels(llp_dir / "AVVP_eval_audio.csv", test.video_ids)
    visual = read_dense_labels(llp_dir / "AVVP_eval_visual.csv", test.video_ids)
    assert audio.shape == visual.shape == (1200, 10, 25)
    # first test clip: Baby_cry_infant_cry audible in seconds 0-3, visible all 10 s
    k = CLASSES.index("Baby_cry_infant_cry")
    assert test.video_ids[0] == "4YdbENYcIyE_23_33"
    assert audio[0, :, k].tolist() == [True] * 4 + [False] * 6
    assert visual[0, :, k].all()
    # second clip: Blender audible in seconds 8-9 (row "KSRjje7GH44_60_70  8  10  Blender")
    assert test.video_ids[1] == "KSRjje7GH44_60_70"
    assert np.flatnonzero(audio[1, :, CLASSES.index("Blender")]).tolist() == [8, 9]


def test_parse_clip_name_fractional():
    assert parse_clip_name("AP0061o0Nvk_101.8_111.8") == ("AP0061o0Nvk", 101.8, 111.8)
    with pytest.raises(ValueError, match="malformed filename"):
        parse_clip_name("short_1_11")


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("filename\tevent_labels\nabc_0_10\tSpeech\n", "malformed filename 'abc_0_10'", 2),
        ("filename\tevent_labels\nabcdefghijk_0_10\tSpeech\textra\n", "expected 2 tab-separated fields", 2),
        ("filename\tevent_labels\nabcdefghijk_0_10\t\n", "has no event label", 2),
    ],
)
def test_weak_label_errors_name_file_and_line(tmp_path: Path, text: str, message: str, line: int):
    path = write(tmp_path, text)
    with pytest.raises(AnnotationError) as err:
        read_weak_labels(path)
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("abcdefghijk_0_10\t-1\t4\tDog", "outside 0..10"),
        ("abcdefghijk_0_10\t6\t2\tDog", "onset >= offset"),
        ("abcdefghijk_0_10\t1.5\t4\tDog", "not whole seconds"),
        ("abcdefghijk_0_10\tone\t4\tDog", "not numbers"),
        ("abcdefgh_0_10\t1\t4\tDog", "malformed filename"),
    ],
)
def test_dense_label_errors_name_file_and_line(tmp_path: Path, row: str, message: str):
    path = write(
        tmp_path, "filename\tonset\toffset\tevent_labels\nabcdefghijk_0_10\t0\t2\tCat\n" + row + "\n"
    )
    with pytest.raises(AnnotationError) as err:
        read_event_rows(path)
    assert str(err.value).startswith(f"{path}:3: ") and message in str(err.value)


def test_lenient_skips_only_what_the_published_evaluation_ignores(tmp_path: Path, caplog):
    text = (
        "filename\tonset\toffset\tevent_labels\n"
        "abcdefghijk_0_10\t9\t9\tDog\n"
        "bcdefghij_0_10\t0\t3\tDog\n"
        "abcdefghijk_0_10\t2\t4\tCat\n"
    )
    path = write(tmp_path, text)
    assert read_event_rows(path, lenient=True) == [EventRow("abcdefghijk_0_10", 2, 4, "Cat")]
    assert "lines 2" in caplog.text.replace("line(s) 2", "lines 2") and "3 (malformed" in caplog.text
    bad_range = write(tmp_path, text + "abcdefghijk_0_10\t2\t12\tCat\n", "bad.csv")
    with pytest.raises(AnnotationError, match=r"bad.csv:5: .*outside 0..10"):
        read_event_rows(bad_range, lenient=True)


def test_events_round_trip(tmp_path: Path):
    rng = np.random.default_rng(3)
    segments = rng.random((6, 10, 25)) < 0.3
    ids = [f"abcdefghij{i}_0_10" for i in range(6)]
    events = segments_to_events(ids, segments)
    assert all(0 <= e.onset < e.offset <= 10 for e in events)
    path = tmp_path / "events.csv"
    write_event_rows(path, events)
    assert np.array_equal(read_dense_labels(path, ids, lenient=False), segments)
    # an event ending at second 10 and two events of one class survive the trip
    single = np.zeros((1, 10, 25), dtype=bool)
    single[0, 7:10, 3] = True
    single[0, 0:2, 3] = True
    assert segments_to_events(ids[:1], single) == [
        EventRow(ids[0], 0, 2, "Dog"),
        EventRow(ids[0], 7, 10, "Dog"),
    ]


def test_weak_labels_round_trip(tmp_path: Path):
    ids = ["abcdefghij0_0_10", "abcdefghij1_5_15"]
    labels = np.zeros((2, 25), dtype=np.float32)
    labels[0, [0, 3]] = 1
    labels[1, 24] = 1
    path = tmp_path / "weak.csv"
    write_weak_labels(path, ids, labels)
    assert path.read_text().splitlines()[1] == "abcdefghij0_0_10\tSpeech,Dog"
    read = read_weak_labels(path)
    assert read.video_ids == ids and np.array_equal(read.labels, labels)


BOM = "\ufeff"
"""The UTF-8 byte-order mark that Excel's "CSV UTF-8" puts before the header."""


def test_a_byte_order_mark_before_the_header_is_accepted(tmp_path: Path):
    weak = "filename\tevent_labels\nabcdefghij0_0_10\tDog,Speech\n"
    plain, marked = write(tmp_path, weak, "plain.csv"), write(tmp_path, BOM + weak, "marked.csv")
    assert marked.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_weak_labels(marked).video_ids == read_weak_labels(plain).video_ids == ["abcdefghij0_0_10"]
    assert np.array_equal(read_weak_labels(marked).labels, read_weak_labels(plain).labels)
    # a label or prediction file
    events = "filename\tonset\toffset\tevent_labels\nabcdefghij0_0_10\t2\t5\tDog\n"
    marked_events = write(tmp_path, BOM + events, "events.csv")
    assert read_event_rows(marked_events) == [EventRow("abcdefghij0_0_10", 2, 5, "Dog")]
    assert read_dense_labels(marked_events, ["abcdefghij0_0_10"]).sum() == 3
