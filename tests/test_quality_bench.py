"""The labelled benchmark sequences (bench/sequences.py) and the quality harness (bench/quality.py)."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from bench.quality import AXES, DECISIONS, MODES, FeatureStore, metrics, pool, register_decision, settings_grid, sweep
from bench.sequences import TRANSIENT, Sequence, all_sequences

T = TRANSIENT


@pytest.fixture(scope="module")
def quick() -> list[Sequence]:
    return all_sequences(quick=True)


# ---------------------------------------------------------------- metrics


def test_metrics_hand_made():
    labels = ["s0", "s0", T, "s1", "s1", T, "s0", "s2"]
    kept = [True, True, True, False, False, False, True, False]
    m = metrics(labels, kept)
    assert (m["states"], m["states_kept"], m["kept"], m["kept_transient"], m["kept_duplicate"]) == (3, 1, 4, 1, 2)
    assert m["state_recall"] == pytest.approx(1 / 3)
    assert m["transient_share"] == pytest.approx(1 / 4)
    assert m["duplicate_share"] == pytest.approx(2 / 4)  # s0 kept three times: two beyond the first
    assert m["missed_states"] == ["s1", "s2"]


def test_metrics_perfect_and_empty():
    labels = ["s0", "s0", T, T, "s1", "s1", "s0"]
    perfect = metrics(labels, [True, False, False, False, True, False, False])
    assert (perfect["state_recall"], perfect["transient_share"], perfect["duplicate_share"]) == (1.0, 0.0, 0.0)
    none = metrics(labels, [False] * len(labels))
    assert (none["state_recall"], none["transient_share"], none["duplicate_share"], none["kept"]) == (0.0, 0.0, 0.0, 0)
    only_t = metrics([T, T], [True, False])
    assert (only_t["states"], only_t["state_recall"], only_t["transient_share"]) == (0, 1.0, 1.0)
    with pytest.raises(ValueError):
        metrics(["s0"], [True, False])


def test_pool_sums_counts_not_mean_of_ratios():
    a = metrics(["s0", "s1", "s2", "s3"], [True, True, True, True])  # recall 1, 4 kept
    b = metrics(["s0", "s1", T, "s1"], [True, False, True, False])  # recall 1/2, 2 kept: 1 T, 0 dup
    c = metrics(["s0", "s0"], [True, True])  # 1 dup of 2 kept
    p = pool([a, b, c])
    assert (p["states"], p["states_kept"], p["kept"], p["kept_transient"], p["kept_duplicate"]) == (7, 6, 8, 1, 1)
    assert p["state_recall"] == pytest.approx(6 / 7)  # the mean of ratios would be (1 + 0.5 + 1) / 3
    assert p["transient_share"] == pytest.approx(1 / 8)
    assert p["duplicate_share"] == pytest.approx(1 / 8)
    assert pool([])["state_recall"] == 1.0 and pool([])["kept"] == 0


# ---------------------------------------------------------------- the sequences


def test_quick_build_is_deterministic(quick):
    again = all_sequences(quick=True)
    assert [s.name for s in quick] == [s.name for s in again]
    for a, b in zip(quick, again):
        assert a.labels == b.labels
        assert hashlib.sha256(b"".join(a.frames)).hexdigest() == hashlib.sha256(b"".join(b.frames)).hexdigest()


def test_labels_sane(quick):
    names = [s.name for s in quick]
    assert "toydata" in names and len(names) >= 3
    for seq in quick:
        assert len(seq.frames) == len(seq.labels) > 0
        assert all(label == T or (label.startswith("s") and label[1:].isdigit()) for label in seq.labels)
        assert seq.states(), seq.name
        if seq.stills:
            assert seq.transients == 0, seq.name
        else:
            assert seq.transients > 0, seq.name
            assert seq.fps > 0
            # state ids are numbered in order of first appearance
            assert seq.states() == [f"s{i}" for i in range(len(seq.states()))]
        for data in seq.frames[:3] + seq.frames[-2:]:
            img = Image.open(io.BytesIO(data))
            assert img.format == "JPEG"


def test_stream_frames_of_one_state_differ_slightly(quick):
    """Camera noise, flicker and jitter: two frames of a held state are not identical, but close."""
    import numpy as np

    seq = next(s for s in quick if not s.stills)
    i = seq.labels.index("s0")
    assert seq.labels[i + 1] == "s0"
    a, b = (np.asarray(Image.open(io.BytesIO(seq.frames[k])).convert("L"), np.float32) for k in (i, i + 1))
    assert seq.frames[i] != seq.frames[i + 1]
    assert 0.5 < np.abs(a - b).mean() < 12


def test_removal_returns_to_an_earlier_state(quick):
    """A state that comes back after another one has the earlier id (keeping it again is a duplicate)."""
    seq = next(s for s in quick if s.name == "photo-rapid-short-holds")
    runs = [label for k, label in enumerate(seq.labels) if label != T and (k == 0 or seq.labels[k - 1] != label)]
    seen, returned = set(), []
    for label in runs:
        if label in seen:
            returned.append(label)
        seen.add(label)
    assert returned, runs


def test_toydata_labels(quick):
    toy = next(s for s in quick if s.name == "toydata")
    assert len(toy.frames) == 16 and len(toy.states()) == 13
    assert toy.labels[0] == toy.labels[1] and toy.labels[3] == toy.labels[4] and toy.labels[8] == toy.labels[9]
    original = [s for s in quick if s.name == "original-toydata"]
    if not original:
        pytest.skip("original toydata not beside the checkout")
    seq = original[0]
    assert len(seq.frames) == 17 and len(seq.states()) == 14 and seq.transients == 0
    assert seq.labels[0] == seq.labels[1] and seq.labels[3] == seq.labels[4] and seq.labels[9] == seq.labels[10]


# ---------------------------------------------------------------- the harness


def test_decisions_on_quick_set(quick, descriptor):
    """The regional decision with the thumbnail fallback and the untrained network (conftest's ``descriptor``),
    and the original decision on the original-mode thumbnail: each only on descriptors of its mode."""
    from describe_images import load_descriptor

    store = FeatureStore({"thumbnail": load_descriptor(None, False, "thumbnail"), "untrained": descriptor,
                          "thumbnail/original": load_descriptor(None, False, "thumbnail", mode="original")})
    runs = sweep(quick, store, ["regional", "original"], [0.2, 0.325])
    assert [(r["descriptor"], r["decision"], r["threshold"]) for r in runs] == [
        ("thumbnail", "regional", 0.2), ("thumbnail", "regional", 0.325), ("untrained", "regional", 0.2),
        ("untrained", "regional", 0.325), ("thumbnail/original", "original", 0.2),
        ("thumbnail/original", "original", 0.325)]
    for r in runs:
        for key in ("state_recall", "transient_share", "duplicate_share"):
            assert 0.0 <= r["pooled"][key] <= 1.0
        assert set(r["per_sequence"]) == {s.name for s in quick}
        for seq in quick:
            assert r["per_sequence"][seq.name]["kept"] >= 1  # the first frame is always kept
    # the features are computed once per descriptor and sequence, reused across thresholds
    assert set(store._features) == {(d, s.name) for d in ("thumbnail", "untrained", "thumbnail/original")
                                     for s in quick}


def test_extra_decision_axis(quick):
    """A decision with its own setting becomes another axis of the sweep."""
    from describe_images import load_descriptor

    def every_nth(src, threshold, n=1):
        return lambda seq: [i % n == 0 for i in range(len(seq.frames))]

    register_decision("every_nth", every_nth, n=[1, 1000])
    try:
        assert settings_grid({"n": [1, 2], "m": ["a"]}) == [{"n": 1, "m": "a"}, {"n": 2, "m": "a"}]
        store = FeatureStore({"thumbnail": load_descriptor(None, False, "thumbnail")})
        runs = sweep(quick[:2], store, ["every_nth"], [0.3])
        assert [r["settings"] for r in runs] == [{"n": 1}, {"n": 1000}]
        assert runs[0]["pooled"]["state_recall"] == 1.0
        assert runs[1]["pooled"]["kept"] == 2
    finally:
        DECISIONS.pop("every_nth")
        AXES.pop("every_nth")
        MODES.pop("every_nth")
