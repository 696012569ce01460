"""The LLP protocol on hand-computed cases, and against a direct per-video loop on random data."""

from __future__ import annotations

import numpy as np
import pytest

from avvp.evaluation.metrics import event_counts, extract_events, llp_scores, segment_counts

DOG, CAT = 3, 4


def empty(n: int = 1) -> np.ndarray:
    return np.zeros((n, 10, 25), dtype=bool)


def with_runs(*runs: tuple[int, int, int]) -> np.ndarray:
    """One video with (class, onset, offset) runs set."""
    m = empty()
    for c, a, b in runs:
        m[0, a:b, c] = True
    return m


def test_both_empty_scores_one():
    s = llp_scores(empty(), empty(), empty(), empty())
    assert all(v == 100.0 for level in ("segment", "event") for v in s[level].values())


def test_empty_prediction_scores_zero_where_ground_truth_exists():
    gt = with_runs((DOG, 0, 4))
    s = llp_scores(empty(), empty(), gt, empty())
    assert s["segment"]["audio"] == 0.0 and s["event"]["audio"] == 0.0
    assert s["segment"]["visual"] == 100.0  # nothing predicted, nothing there
    assert s["segment"]["audio_visual"] == 100.0
    assert s["segment"]["type"] == pytest.approx(200 / 3)
    assert s["segment"]["event"] == 0.0  # pooled: Dog has FN only


def test_empty_ground_truth_scores_zero_where_predicted():
    s = llp_scores(empty(), with_runs((CAT, 2, 3)), empty(), empty())
    assert s["segment"]["visual"] == 0.0 and s["event"]["visual"] == 0.0
    assert s["segment"]["audio"] == 100.0


def test_segment_f1_averages_over_present_classes():
    # Dog: pred 0-4, gt 2-6 -> TP 2, FP 2, FN 2 -> F1 0.5; Cat: gt only -> 0; other classes absent
    pred = with_runs((DOG, 0, 4))
    gt = with_runs((DOG, 2, 6), (CAT, 0, 1))
    s = llp_scores(pred, empty(), gt, empty())
    assert s["segment"]["audio"] == pytest.approx(100 * (0.5 + 0.0) / 2)


def test_event_ending_at_second_ten():
    starts, ends = extract_events(np.array([[0, 0, 0, 0, 0, 0, 0, 1, 1, 1]], dtype=bool))
    assert starts[0].tolist() == [7, -1, -1, -1, -1] and ends[0].tolist() == [10, -1, -1, -1, -1]
    s = llp_scores(with_runs((DOG, 7, 10)), empty(), with_runs((DOG, 6, 10)), empty())
    assert s["event"]["audio"] == 100.0  # IoU 3/4


def test_two_events_of_one_class():
    # gt Dog 0-2 and 5-9; pred Dog 0-2 and 8-10: first matches (IoU 1), second IoU 1/5 -> FP, gt 5-9 FN
    tp, fp, fn = event_counts(with_runs((DOG, 0, 2), (DOG, 8, 10)), with_runs((DOG, 0, 2), (DOG, 5, 9)))
    assert (tp[0, DOG], fp[0, DOG], fn[0, DOG]) == (1, 1, 1)
    s = llp_scores(
        with_runs((DOG, 0, 2), (DOG, 8, 10)), empty(), with_runs((DOG, 0, 2), (DOG, 5, 9)), empty()
    )
    assert s["event"]["audio"] == pytest.approx(100 * 2 / (2 + 1 + 1))


@pytest.mark.parametrize(
    ("pred", "matched"),
    [((0, 2), True), ((0, 1), False), ((1, 5), True), ((2, 6), False), ((0, 8), True), ((0, 9), False)],
)
def test_iou_threshold_against_gt_0_4(pred: tuple[int, int], matched: bool):
    # gt Dog 0-4; IoU 0-2: 2/4, 0-1: 1/4, 1-5: 3/5, 2-6: 2/6, 0-8: 4/8, 0-9: 4/9 (>= 0.5 is a match)
    inter = max(0, min(pred[1], 4) - max(pred[0], 0))
    union = (pred[1] - pred[0]) + 4 - inter
    assert (2 * inter >= union) == matched
    tp, fp, fn = event_counts(with_runs((DOG, *pred)), with_runs((DOG, 0, 4)))
    assert (tp[0, DOG], fp[0, DOG], fn[0, DOG]) == (int(matched), int(not matched), int(not matched))


def test_iou_exactly_half_is_a_match():
    tp, _, _ = event_counts(with_runs((DOG, 0, 2)), with_runs((DOG, 0, 4)))  # 2 / 4
    assert tp[0, DOG] == 1
    tp, _, _ = event_counts(with_runs((DOG, 0, 3)), with_runs((DOG, 1, 5)))  # 2 / 5
    assert tp[0, DOG] == 0


def test_audio_visual_is_the_and_of_both():
    pa, pv = with_runs((DOG, 0, 6)), with_runs((DOG, 3, 10))
    ga, gv = with_runs((DOG, 0, 6)), with_runs((DOG, 3, 10))
    s = llp_scores(pa, pv, ga, gv)
    assert s["segment"]["audio_visual"] == 100.0
    s = llp_scores(pa, with_runs((DOG, 0, 2)), ga, gv)  # predicted AV 0-2 vs true AV 3-6
    assert s["segment"]["audio_visual"] == 0.0


def reference_counts(pred: np.ndarray, gt: np.ndarray, events: bool) -> tuple[int, int, int]:
    """Direct loop: one class sequence of one video."""
    if not events:
        return int((pred & gt).sum()), int((pred & ~gt).sum()), int((~pred & gt).sum())

    def runs(seq):
        out, i = [], 0
        while i < 10:
            if seq[i]:
                j = i
                while j < 10 and seq[j]:
                    j += 1
                out.append((i, j))
                i = j
            else:
                i += 1
        return out

    def iou_ok(a, b):
        inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
        return inter >= 0.5 * ((a[1] - a[0]) + (b[1] - b[0]) - inter)

    p, g = runs(pred), runs(gt)
    tp = sum(any(iou_ok(a, b) for b in g) for a in p)
    fn = sum(not any(iou_ok(a, b) for a in p) for b in g)
    return tp, len(p) - tp, fn


def reference_scores(pa, pv, ga, gv) -> dict[str, dict[str, float]]:
    out = {}
    for level, events in (("segment", False), ("event", True)):
        per_video = {k: [] for k in ("audio", "visual", "audio_visual", "event")}
        for i in range(len(pa)):
            counts = {}
            for name, (p, g) in {
                "audio": (pa[i], ga[i]),
                "visual": (pv[i], gv[i]),
                "audio_visual": (pa[i] & pv[i], ga[i] & gv[i]),
            }.items():
                counts[name] = np.array([reference_counts(p[:, c], g[:, c], events) for c in range(25)])
            counts["event"] = counts["audio"] + counts["visual"]
            for name, c in counts.items():
                f = [2 * t / (2 * t + fp + fn) for t, fp, fn in c if t + fp + fn > 0]
                per_video[name].append(sum(f) / len(f) if f else 1.0)
        out[level] = {k: 100 * float(np.mean(v)) for k, v in per_video.items()}
    return out


def test_matches_direct_loop_on_random_data():
    rng = np.random.default_rng(7)
    n = 120
    pa, pv, ga, gv = (rng.random((n, 10, 25)) < 0.1 for _ in range(4))
    pa[:20] = False
    gv[10:30] = False
    pa[30:40], ga[30:40] = False, False
    s = llp_scores(pa, pv, ga, gv)
    ref = reference_scores(pa, pv, ga, gv)
    for level in ("segment", "event"):
        for name, value in ref[level].items():
            assert s[level][name] == pytest.approx(value, abs=1e-9), (level, name)
        assert s[level]["type"] == pytest.approx(
            (ref[level]["audio"] + ref[level]["visual"] + ref[level]["audio_visual"]) / 3
        )


def test_per_class_pools_over_videos():
    pred = np.concatenate([with_runs((DOG, 0, 4)), with_runs((DOG, 0, 2))])
    gt = np.concatenate([with_runs((DOG, 0, 4)), with_runs((CAT, 0, 2))])
    s = llp_scores(pred, empty(2), gt, empty(2))
    seg = s["per_class"]["segment"]["audio"]
    assert seg["Dog"] == pytest.approx(100 * 8 / (8 + 2))  # TP 4, FP 2
    assert seg["Cat"] == 0.0 and seg["Speech"] is None
    assert segment_counts(pred, gt).shape == (3, 2, 25)


def test_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"pred_visual: shape \(2, 10, 25\) differs"):
        llp_scores(empty(1), empty(2), empty(1), empty(1))
    with pytest.raises(ValueError, match="expected shape"):
        llp_scores(np.zeros((1, 9, 25), bool), empty(), empty(), empty())
