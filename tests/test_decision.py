"""The decision of what to keep, on scenes made here with known answers (tests/scenes.py): a camera's noise,
flicker and jitter on every frame, items of known size, a passing hand. Both descriptors a site can run
without the ImageNet weights: the thumbnail fallback and the (seeded, untrained) network."""

from __future__ import annotations

import numpy as np
import pytest

import describe_images as di
from tests.scenes import BASE, BROWN, GREEN, GREY, Camera, item_of_area, stream, with_items
from utils.decision.index import region_distances
from utils.synthetic import Scene

DEFAULT_TH = 0.325


@pytest.fixture(scope="module", params=["thumbnail", "network"])
def desc(request, descriptor):
    return di.load_descriptor(None, False, "thumbnail") if request.param == "thumbnail" else descriptor


def decide(desc, frames, threshold=DEFAULT_TH, settle=2, still=False) -> list[bool]:
    decider = di.Decider(desc.layout, threshold, settle)
    kept = []
    for img in frames:
        features = desc.describe(img)
        d = decider.step(features, still=still)
        if d.keep:
            decider.kept(features)
        kept.append(d.keep)
    return kept


def kept_labels(labels, kept) -> list[str]:
    return [label for label, k in zip(labels, kept) if k]


SMALL = item_of_area(0.02, 0.62, 0.62, GREEN)  # 2 % of the frame


def test_an_item_of_two_percent_put_down_is_kept_once(desc):
    frames, labels = stream(Camera(1), [(BASE, 6), (with_items(SMALL), 8)])
    assert kept_labels(labels, decide(desc, frames)) == ["s0", "s1"]


def test_a_passing_hand_is_not_kept_and_the_settled_scene_after_it_is(desc):
    frames, labels = stream(Camera(2), [(BASE, 6), (BASE, 5, "hand"), (with_items(SMALL), 6), (with_items(SMALL), 4, "hand"),
                                        (with_items(SMALL), 6)])
    kept = decide(desc, frames)
    assert kept_labels(labels, kept) == ["s0", "s1"]
    first_after_hand = labels.index("s1")
    assert kept.index(True, 6) >= first_after_hand + 2  # the settled frame, not the first one after the hand
    # judged frame by frame (settle 0), hand frames are kept: the settling is what leaves them out
    assert "T" in kept_labels(labels, decide(desc, frames, settle=0))


def test_camera_noise_and_flicker_alone_keep_nothing_new(desc):
    frames, labels = stream(Camera(3), [(BASE, 40)])
    for threshold in (DEFAULT_TH, 0.15):  # even at the slider's lowest
        assert sum(decide(desc, frames, threshold)) == 1


def test_an_item_put_back_to_an_earlier_state_is_not_kept_again(desc):
    frames, labels = stream(Camera(4), [(BASE, 6), (with_items(SMALL), 6), (BASE, 6), (with_items(SMALL), 6)])
    assert kept_labels(labels, decide(desc, frames)) == ["s0", "s1"]


def test_a_small_low_contrast_item_and_a_moved_item_are_new_states(desc):
    low = item_of_area(0.01, 0.62, 0.40, BROWN)  # brown on the brown box: 1 % of the frame
    moved = item_of_area(0.02, 0.40, 0.70, GREEN)
    plan = [(BASE, 6), (with_items(SMALL), 6), (with_items(SMALL, low), 6), (with_items(moved, low), 6)]
    frames, labels = stream(Camera(5), plan)
    assert kept_labels(labels, decide(desc, frames)) == ["s0", "s1", "s2", "s3"]


def test_lights_dimmed_for_good_are_a_new_state(desc):
    dim = Scene(BASE.box_x, BASE.items, light=0.7)
    frames, labels = stream(Camera(6), [(BASE, 6), (dim, 6)])
    assert kept_labels(labels, decide(desc, frames)) == ["s0", "s1"]


def test_a_noisier_camera_raises_the_bar_only_where_it_is_noisy(desc):
    """Each region's measured noise divides its distances (at least 1): a camera twice as noisy still keeps
    nothing new on a still scene and still sees the item."""
    frames, labels = stream(Camera(7, noise=8.0, flicker=0.04), [(BASE, 12), (with_items(SMALL), 8)])
    assert kept_labels(labels, decide(desc, frames)) == ["s0", "s1"]


def test_stills_are_settled_at_once():
    """A folder of stills (the demo camera, extract.py on a folder): each image is judged as it comes."""
    frames, labels = stream(Camera(8, noise=0.0, flicker=0.0), [(BASE, 1), (with_items(SMALL), 1), (BASE, 1)])
    desc = di.load_descriptor(None, False, "thumbnail")
    assert decide(desc, frames, still=True) == [True, True, False]
    assert decide(desc, frames, still=False) == [False, False, False]  # a stream of 3 never settles


def test_save_image_keeps_the_next_frame_at_once(descriptor):
    frames, _ = stream(Camera(9), [(BASE, 3, "hand")])
    decider = di.Decider(descriptor.layout, DEFAULT_TH, 2)
    features = descriptor.describe(frames[0])
    d = decider.step(features, force=True)
    assert d.keep and d.forced and d.settling


def test_the_original_setting_reproduces_the_original_decision(descriptor):
    """DECISION_MODE=original: globally pooled features, RMS distance, every frame judged alone - the very
    rule of the original app, checked against a plain loop over the kept features."""
    original = di.untrained_descriptor(seed=0, mode="original")
    frames, _ = stream(Camera(10), [(BASE, 4), (BASE, 3, "hand"), (with_items(SMALL), 4)])
    feats = [original.describe(f) for f in frames]
    for threshold in (0.15, 0.325, 0.5):
        kept_loop, kept_feats = [], []
        for f in feats:
            dmin = min((float(np.sqrt(np.mean((f - k) ** 2))) for k in kept_feats), default=np.inf)
            kept_loop.append(dmin > threshold)
            if dmin > threshold:
                kept_feats.append(f)
        decider = di.Decider(original.layout, threshold, 0, adaptive=False)
        kept = []
        for f in feats:
            d = decider.step(f)
            if d.keep:
                decider.kept(f)
            kept.append(d.keep)
        assert kept == kept_loop


def test_refilter_uses_the_same_distance(desc):
    """Update images re-judges the kept images with the live decision's distance (region by region)."""
    frames, _ = stream(Camera(11), [(BASE, 1), (with_items(SMALL), 1), (with_items(SMALL), 1)])
    feats = np.stack([desc.describe(f) for f in frames])
    assert list(di.refilter(feats, DEFAULT_TH, layout=desc.layout)) == [True, True, False]
    forced = np.array([False, False, True])
    assert list(di.refilter(feats, DEFAULT_TH, forced, layout=desc.layout)) == [True, True, True]


def test_regional_distance_sees_what_the_global_one_averages_away():
    """The structural point: an item of 2 % changes one region a lot and the whole frame a little."""
    frames, _ = stream(Camera(12, noise=0.0, flicker=0.0), [(BASE, 1), (with_items(item_of_area(0.02, 0.8, 0.8, GREY)), 1)])
    regional = di.load_descriptor(None, False, "thumbnail")
    a, b = (regional.describe(f) for f in frames)
    per_region, _ = region_distances(a, b, regional.layout)
    assert per_region.max() > 3 * np.sqrt((per_region ** 2).mean())  # one region carries the change


def test_index_distance_matches_the_pairwise_one(desc):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, desc.layout.dim)).astype(np.float32)
    index = di.FeatureIndex(desc.layout)
    index.extend(feats)
    q = rng.normal(size=desc.layout.dim).astype(np.float32)
    scale = rng.uniform(1, 3, desc.layout.regions).astype(np.float32)
    want = [di.pair_distance(f, q, desc.layout, scale) for f in feats]
    dist, row = index.nearest(q, scale)
    assert row == int(np.argmin(want)) and dist == pytest.approx(min(want), rel=1e-4)
    np.testing.assert_allclose(di.distances(feats, q, desc.layout), [di.pair_distance(f, q, desc.layout) for f in feats],
                               rtol=1e-4)
    np.testing.assert_allclose(index.matrix(), feats, rtol=1e-6)
