"""Descriptor, distances, the decision and re-filtering."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import describe_images as di
from tests.conftest import PROJECT_TOYDATA, original_toydata


def _naive_rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def _naive_refilter(feats: np.ndarray, th: float, forced=None) -> list[int]:
    kept: list[int] = []
    for i, f in enumerate(feats):
        dmin = min((_naive_rms(f, feats[j]) for j in kept), default=np.inf)
        if dmin > th or (forced is not None and forced[i]):
            kept.append(i)
    return kept


def test_rms_distances_match_the_definition():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(50, 576)).astype(np.float32)
    q = rng.normal(size=576).astype(np.float32)
    got = di.rms_distances(feats, q)
    want = [_naive_rms(f, q) for f in feats]
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert di.rms_distances(feats, feats[3])[3] == pytest.approx(0.0, abs=1e-3)


def test_feature_index_nearest_and_growth():
    rng = np.random.default_rng(2)
    idx = di.FeatureIndex(capacity=4)
    assert idx.nearest(np.zeros(576)) == (float("inf"), -1)
    feats = rng.normal(size=(100, 576)).astype(np.float32)
    idx.extend(feats)
    assert len(idx) == 100
    q = feats[57] + 0.001
    dist, row = idx.nearest(q)
    assert row == 57 and dist == pytest.approx(0.001, abs=1e-3)
    np.testing.assert_array_equal(idx.matrix(), feats)
    with pytest.raises(ValueError):
        idx.add(np.zeros(10))


def test_refilter_is_greedy_in_capture_order_like_the_loop():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(6, 576)).astype(np.float32)
    # clusters of near-duplicates in capture order
    feats = np.concatenate([base[i] + rng.normal(scale=0.05, size=(5, 576)).astype(np.float32) for i in range(6)])
    for th in (0.1, 0.5, 1.2, 1.5, 3.0):
        assert list(np.flatnonzero(di.refilter(feats, th))) == _naive_refilter(feats, th)
    assert list(np.flatnonzero(di.refilter(feats, 0.5))) == [0, 5, 10, 15, 20, 25]
    forced = np.zeros(len(feats), bool)
    forced[7] = True
    got = list(np.flatnonzero(di.refilter(feats, 0.5, forced)))
    assert got == _naive_refilter(feats, 0.5, forced) and 7 in got
    assert not di.refilter(np.zeros((0, 576), np.float32), 0.3).any()


def test_decision_rule_is_strictly_above_threshold():
    assert di.is_distinct(0.33, 0.325)
    assert not di.is_distinct(0.325, 0.325)
    assert di.is_distinct(float("inf"), 0.5)


def test_untrained_descriptor_is_deterministic_in_both_modes(descriptor):
    img = Image.open(PROJECT_TOYDATA / "07.jpg")
    a = descriptor.describe(img)
    b = di.untrained_descriptor(seed=0).describe(img)
    assert descriptor.mode == "regional" and a.shape == (descriptor.layout.dim,) and a.dtype == np.float32
    assert descriptor.layout.regions == 24 and descriptor.layout.has_gain
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert descriptor.status.kind == "untrained" and not descriptor.status.pretrained
    original = di.untrained_descriptor(seed=0, mode="original")
    assert original.describe(img).shape == (576,) and original.layout == di.ORIGINAL_LAYOUT


def test_preprocessing_sees_the_whole_frame(descriptor):
    """A change at the far left of a wide frame (cut off by the original centre crop) changes the features."""
    w, h = 1600, 600
    base = Image.new("RGB", (w, h), (200, 200, 200))
    changed = base.copy()
    changed.paste((20, 20, 200), (0, 0, 180, h))  # the left 11 %: outside a 224/256 centre crop
    prep, _ = descriptor.prepare(base)
    assert prep.shape[0] == 3 and min(prep.shape[1:]) == 224  # no crop: aspect kept, shorter side 224
    assert prep.shape[2] > prep.shape[1]
    assert di.pair_distance(descriptor.describe(base), descriptor.describe(changed), descriptor.layout) > 1.0


def test_original_toydata_identical_pairs_never_both_kept(descriptor):
    files = original_toydata()
    imgs = [Image.open(f) for f in files]
    fallback = di.load_descriptor(allow_download=False, fallback="thumbnail")
    for desc in (descriptor, fallback):
        feats = np.stack([desc.describe(im) for im in imgs])
        for th in (0.15, 0.325, 0.5):
            keep = di.refilter(feats, th, layout=desc.layout)
            assert keep[0], "the first frame is always kept"
            assert not (keep[0] and keep[1]), f"01/02 both kept at {th} with {desc.status.name}"
            assert not (keep[3] and keep[4]), f"04/05 both kept at {th} with {desc.status.name}"
        # the black frame (17) differs from everything
        assert di.refilter(feats, 0.325, layout=desc.layout)[16]


def test_load_descriptor_says_why_it_falls_back(tmp_path, caplog):
    missing = tmp_path / "nope.pth"
    with caplog.at_level("WARNING"):
        d = di.load_descriptor(weights_file=missing, allow_download=False, fallback="thumbnail")
    assert d.status.kind == "fallback" and not d.status.pretrained
    assert "not available" in d.status.reason and str(missing) in d.status.reason
    assert "fallback" in caplog.text
    with pytest.raises(di.DescriptorUnavailable, match="DESCRIPTOR_WEIGHTS_FILE"):
        di.load_descriptor(allow_download=False, fallback="error")
    u = di.load_descriptor(allow_download=False, fallback="untrained")
    assert u.status.kind == "untrained" and "UNTRAINED" in u.status.name


def test_local_weights_file_is_loaded_as_pretrained(tmp_path):
    """A state dict saved to a file (as an offline site would copy it) is used and reported."""
    import torch
    from torchvision.models import mobilenet_v3_small

    torch.manual_seed(5)
    model = mobilenet_v3_small(weights=None)
    path = tmp_path / "mobilenet_v3_small.pth"
    torch.save(model.state_dict(), path)
    d = di.load_descriptor(weights_file=path, allow_download=False, mode="original")
    assert d.status.kind == "pretrained" and str(path) in d.status.reason
    img = Image.open(PROJECT_TOYDATA / "03.jpg")
    net = torch.nn.Sequential(model.features, model.avgpool, torch.nn.Flatten()).eval()
    with torch.inference_mode():
        want = net(torch.from_numpy(d.prepare(img))[None]).numpy().reshape(-1)
    np.testing.assert_allclose(d.describe(img), want, rtol=1e-4, atol=1e-6)
    regional = di.load_descriptor(weights_file=path, allow_download=False)  # the default decision's layers
    assert regional.status.kind == "pretrained" and regional.layout.regions == 24
    first = torch.nn.Sequential(*list(model.features)[:2]).eval()
    net_in, _ = regional.prepare(img)
    with torch.inference_mode():
        fmap = torch.nn.functional.adaptive_avg_pool2d(first(torch.from_numpy(net_in)[None]), (4, 6))
    want = fmap[0].permute(1, 2, 0).reshape(-1).numpy()
    got = regional.describe(img)[:-1]
    np.testing.assert_allclose(got / np.linalg.norm(got), want / np.linalg.norm(want), rtol=1e-4, atol=1e-6)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    d2 = di.load_descriptor(weights_file=bad, allow_download=False)
    assert d2.status.kind == "fallback" and "weights file failed" in d2.status.reason
