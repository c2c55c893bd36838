"""How well a "distinct images" decision keeps one image per state of the table, on labelled sequences.

    python bench/quality.py                 # table per descriptor and threshold (a few minutes)
    python bench/quality.py --json          # ... and one JSON object as the last line
    python bench/quality.py --quick         # the small test subset of the sequences (seconds)
    python bench/quality.py --decision regional --descriptor thumbnail --threshold 0.325 --set settle=0,1,2,3

The sequences (bench/sequences.py) label every frame with the state of the table a person sees, or
"T" for a transient frame (hand, person, blur). For the frames a decision keeps:

* ``state_recall``: share of the states (distinct non-"T" labels) with at least one kept frame;
* ``transient_share``: kept frames labelled "T" / kept frames (0 when nothing is kept);
* ``duplicate_share``: kept frames beyond the first of their state / kept frames.

Pooled over sequences as sums of counts (states with a keep / all states; kept transient / kept;
kept duplicate / kept), not as means of the per-sequence ratios.

A *decision* is a callable ``decide(seq) -> list[bool]`` (which frames are kept), made by a factory in
:data:`DECISIONS` from a descriptor's cached features, a threshold and optional settings; the settings a
decision takes are the extra axes of the sweep (:data:`AXES`, overridable with ``--set name=v1,v2``):

* ``regional`` (the product's default, ``DECISION_MODE=regional``): :class:`utils.decision.Decider` exactly as
  the capture runs it: features region by region, a frame judged once the scene has settled (``settle``
  frames; stills settle at once), distances relative to each region's measured noise;
* ``original`` (``DECISION_MODE=original``): the original app's rule on globally pooled features: keep a frame
  when its RMS distance to every kept frame is above the threshold, every frame judged alone.

Each descriptor (``thumbnail``, ``untrained``, and ``pretrained`` when the ImageNet weights are in the torch
cache) is loaded twice, for the regional and for the original decision.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence as Seq

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.sequences import TRANSIENT, Sequence, all_sequences  # noqa: E402

Decide = Callable[[Sequence], list[bool]]


# ---------------------------------------------------------------- metrics


def metrics(labels: Seq[str], kept: Seq[bool]) -> dict:
    """Counts and shares for one sequence: ``kept[i]`` says whether frame ``i`` (label ``labels[i]``) was kept.

    ``state_recall`` is 1.0 for a sequence without any state (nothing to miss).
    """
    if len(labels) != len(kept):
        raise ValueError(f"{len(labels)} labels but {len(kept)} keep flags")
    states = {label for label in labels if label != TRANSIENT}
    per_state = Counter(label for label, k in zip(labels, kept) if k and label != TRANSIENT)
    n_kept = int(sum(bool(k) for k in kept))
    kept_transient = sum(1 for label, k in zip(labels, kept) if k and label == TRANSIENT)
    kept_duplicate = sum(c - 1 for c in per_state.values())
    out = {
        "frames": len(labels),
        "states": len(states),
        "states_kept": len(per_state),
        "kept": n_kept,
        "kept_transient": kept_transient,
        "kept_duplicate": kept_duplicate,
    }
    out.update(_shares(out))
    out["missed_states"] = sorted(states - set(per_state), key=lambda s: (len(s), s))
    return out


def _shares(c: dict) -> dict:
    return {
        "state_recall": c["states_kept"] / c["states"] if c["states"] else 1.0,
        "transient_share": c["kept_transient"] / c["kept"] if c["kept"] else 0.0,
        "duplicate_share": c["kept_duplicate"] / c["kept"] if c["kept"] else 0.0,
    }


def pool(results: Iterable[dict]) -> dict:
    """Pooled figures over sequences: the counts summed, the shares computed from the sums."""
    keys = ("frames", "states", "states_kept", "kept", "kept_transient", "kept_duplicate")
    total = {k: 0 for k in keys}
    for r in results:
        for k in keys:
            total[k] += int(r[k])
    total.update(_shares(total))
    return total


# ---------------------------------------------------------------- features, computed once per run


def product_resolution() -> int:
    """The capture's default resolution (longer side frames are scaled to), as the product's settings say."""
    try:
        from utils.config import Settings

        f = Settings.model_fields
        return int(f["OPTIONS_IMAGE_RESOLUTION"].get_default(call_default_factory=True)[
            f["OPTIONS_IMAGE_RESOLUTION_INIT_IDX"].default])
    except Exception:  # noqa: BLE001 - a benchmark default, not worth failing over
        return 480


def slider_thresholds() -> tuple[list[float], float]:
    """The threshold slider's values (OPTIONS_TH_MIN..MAX step INC) and its preselected value, as defaults."""
    try:
        from utils.config import Settings

        f = Settings.model_fields
        lo, hi, inc, init = (float(f[k].default) for k in ("OPTIONS_TH_MIN", "OPTIONS_TH_MAX", "OPTIONS_TH_INC",
                                                            "OPTIONS_TH_INIT"))
    except Exception:  # noqa: BLE001
        lo, hi, inc, init = 0.15, 0.5, 0.025, 0.325
    n = int(round((hi - lo) / inc))
    return [round(lo + i * inc, 6) for i in range(n + 1)], init


class FeatureStore:
    """Features of every frame for several descriptors; each sequence is decoded once per run.

    Frames are decoded as the capture worker does (``decode_image(data, max_side=resolution)``, then
    ``descriptor.prepare`` + ``describe_prepared``). The decoded images of the last sequence asked for are
    kept for decisions that look at pixels (:meth:`DescriptorFeatures.images`).
    """

    def __init__(self, descriptors: dict[str, object], resolution: int | None = None):
        self.descriptors = descriptors
        self.resolution = resolution or product_resolution()
        self._features: dict[tuple[str, str], np.ndarray] = {}
        self._last_images: tuple[str, list] | None = None
        self.seconds: dict[str, float] = {name: 0.0 for name in descriptors}
        self.decode_seconds = 0.0

    def images(self, seq: Sequence) -> list:
        from utils.imaging import decode_image

        if self._last_images is None or self._last_images[0] != seq.name:
            t0 = time.perf_counter()
            imgs = [decode_image(data, max_side=self.resolution) for data in seq.frames]
            self.decode_seconds += time.perf_counter() - t0
            self._last_images = (seq.name, imgs)
        return self._last_images[1]

    def features(self, name: str, seq: Sequence) -> np.ndarray:
        key = (name, seq.name)
        if key not in self._features:
            missing = [n for n in self.descriptors if (n, seq.name) not in self._features]
            imgs = self.images(seq)
            for n in missing:
                desc = self.descriptors[n]
                t0 = time.perf_counter()
                feats = np.stack([desc.describe_prepared(desc.prepare(img)) for img in imgs]).astype(np.float32)
                self.seconds[n] += time.perf_counter() - t0
                self._features[(n, seq.name)] = feats
        return self._features[key]

    def source(self, name: str) -> "DescriptorFeatures":
        return DescriptorFeatures(name, self.descriptors[name], self)


@dataclass
class DescriptorFeatures:
    """What a decision factory gets: one descriptor, its cached features per sequence, the decoded images."""

    name: str
    descriptor: object
    store: FeatureStore = field(repr=False)

    def features(self, seq: Sequence) -> np.ndarray:
        return self.store.features(self.name, seq)

    def images(self, seq: Sequence) -> list:
        return self.store.images(seq)


# ---------------------------------------------------------------- decisions


def _run_decider(src: DescriptorFeatures, threshold: float, settle: int, adaptive: bool) -> Decide:
    from describe_images import Decider

    def decide(seq: Sequence) -> list[bool]:
        decider = Decider(src.descriptor.layout, threshold, settle, adaptive=adaptive)
        kept = []
        for features in src.features(seq):
            decision = decider.step(features, still=seq.stills)
            if decision.keep:
                decider.kept(features)
            kept.append(decision.keep)
        return kept

    return decide


def regional_decision(src: DescriptorFeatures, threshold: float, settle: int | None = None) -> Decide:
    """The capture's decision (``DECISION_MODE=regional``), ``settle`` frames (default: the product's)."""
    from utils.config import DEFAULT_SETTLE_FRAMES

    return _run_decider(src, threshold, DEFAULT_SETTLE_FRAMES if settle is None else settle, adaptive=True)


def original_decision(src: DescriptorFeatures, threshold: float) -> Decide:
    """The original app's decision (``DECISION_MODE=original``): global features, every frame judged alone."""
    return _run_decider(src, threshold, 0, adaptive=False)


# name -> factory(source, threshold, **settings) -> decide(seq)
DECISIONS: dict[str, Callable[..., Decide]] = {"regional": regional_decision, "original": original_decision}
# name -> the settings swept for it (each a list of values); the cartesian product is run at every threshold
AXES: dict[str, dict[str, list]] = {"regional": {}, "original": {}}
# the descriptor mode each decision needs
MODES: dict[str, str] = {"regional": "regional", "original": "original"}


def register_decision(name: str, factory: Callable[..., Decide], mode: str = "regional", **axes: list) -> None:
    """Add a decision to the sweep, e.g. ``register_decision("settle", make, settle=[0, 1, 2])``."""
    DECISIONS[name] = factory
    AXES[name] = {k: list(v) for k, v in axes.items()}
    MODES[name] = mode


def settings_grid(axes: dict[str, list]) -> list[dict]:
    if not axes:
        return [{}]
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[n] for n in names))]


# ---------------------------------------------------------------- the sweep


def evaluate(decide: Decide, sequences: list[Sequence]) -> dict:
    """Run one decision on every sequence: per-sequence metrics and the pooled ones."""
    per = {}
    for seq in sequences:
        kept = [bool(k) for k in decide(seq)]
        per[seq.name] = metrics(seq.labels, kept)
    return {"pooled": pool(per.values()), "per_sequence": per}


def sweep(sequences: list[Sequence], store: FeatureStore, decisions: list[str], thresholds: list[float],
          axes: dict[str, dict[str, list]] | None = None, descriptors: list[str] | None = None) -> list[dict]:
    """Every descriptor x decision x settings x threshold; one result dict per combination."""
    axes = axes or AXES
    runs = []
    for dname in descriptors or list(store.descriptors):
        src = store.source(dname)
        mode = getattr(src.descriptor, "mode", "regional")
        if not any(MODES.get(name, "regional") == mode for name in decisions):
            continue
        for seq in sequences:  # features first (timed), then the cheap threshold loop
            src.features(seq)
        for name in decisions:
            if MODES.get(name, "regional") != mode:
                continue
            for settings in settings_grid(axes.get(name, {})):
                for th in thresholds:
                    decide = DECISIONS[name](src, th, **settings)
                    res = evaluate(decide, sequences)
                    runs.append({"descriptor": dname, "decision": name, "settings": settings, "threshold": th,
                                 **res})
    return runs


def load_descriptors(wanted: list[str], threads: int) -> tuple[dict[str, object], dict[str, str], dict[str, str]]:
    """The descriptors asked for, each for the regional and the original decision: (``name`` and
    ``name/original`` -> Descriptor, -> status text; name -> why skipped)."""
    from describe_images import DescriptorUnavailable, load_descriptor, untrained_descriptor

    descs, status, skipped = {}, {}, {}
    for name in wanted:
        for mode in ("regional", "original"):
            key = name if mode == "regional" else f"{name}/original"
            try:
                if name == "thumbnail":
                    d = load_descriptor(None, False, "thumbnail", torch_threads=threads, mode=mode)
                    if d.status.pretrained:  # the weights are cached here: the fallback is what we want, though
                        from describe_images import Descriptor, DescriptorStatus

                        from utils.decision.descriptors import REGIONAL_SCALE

                        d = Descriptor(DescriptorStatus("fallback", "colour thumbnail", "benchmark"), None,
                                       scale=REGIONAL_SCALE["thumbnail"] if mode == "regional" else 1.0, mode=mode)
                elif name == "untrained":
                    d = untrained_descriptor(seed=0, torch_threads=threads, mode=mode)
                elif name == "pretrained":
                    quiet = logging.getLogger("utils.decision.descriptors")
                    level, quiet.level = quiet.level, logging.CRITICAL  # "not available" is said below, once
                    try:
                        d = load_descriptor(None, False, "error", torch_threads=threads, mode=mode)
                    finally:
                        quiet.setLevel(level)
                else:
                    raise ValueError(f"unknown descriptor {name!r}")
            except DescriptorUnavailable as err:
                skipped[name] = ("skipped: the ImageNet weights are not in the torch cache (load_descriptor(None, "
                                 f"False, 'error') raised {type(err).__name__})")
                break
            descs[key] = d
            status[key] = f"{d.status.name} [{d.status.kind}, {mode}]"
    return descs, status, skipped


def _parse_set(items: list[str]) -> dict[str, list]:
    out = {}
    for item in items:
        key, _, values = item.partition("=")
        if not key or not values:
            raise SystemExit(f"--set expects name=v1,v2 (got {item!r})")
        parsed = []
        for v in values.split(","):
            try:
                parsed.append(json.loads(v))
            except json.JSONDecodeError:
                parsed.append(v)
        out[key] = parsed
    return out


def _fmt(x: float) -> str:
    return f"{x:6.3f}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--quick", action="store_true", help="the small test subset of the sequences")
    parser.add_argument("--decision", action="append", default=[], choices=sorted(DECISIONS),
                        help="decision(s) to run (default: all registered)")
    parser.add_argument("--descriptor", action="append", default=[], choices=["thumbnail", "untrained", "pretrained"],
                        help="descriptor(s) (default: all; pretrained only if its weights are cached)")
    parser.add_argument("--threshold", action="append", type=float, default=[],
                        help="threshold(s) (default: the slider's range)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=V1,V2",
                        help="values of a decision setting to sweep (an extra axis)")
    parser.add_argument("--only", action="append", default=[], help="only this sequence (repeatable)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the network (default 1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    thresholds, default_th = slider_thresholds()
    if args.threshold:
        thresholds = sorted(set(args.threshold))
    decisions = args.decision or list(DECISIONS)
    axes = {name: dict(AXES.get(name, {})) for name in decisions}
    for name in decisions:
        axes[name].update(_parse_set(args.set))

    t0 = time.perf_counter()
    sequences = all_sequences(quick=args.quick, only=args.only)
    build_s = time.perf_counter() - t0
    descs, status, skipped = load_descriptors(args.descriptor or ["thumbnail", "untrained", "pretrained"],
                                              args.threads)
    store = FeatureStore(descs)
    t1 = time.perf_counter()
    runs = sweep(sequences, store, decisions, thresholds, axes)
    sweep_s = time.perf_counter() - t1

    n_frames = sum(len(s.frames) for s in sequences)
    n_states = sum(len(s.states()) for s in sequences)
    print(f"{len(sequences)} sequences, {n_frames} frames, {n_states} states, "
          f"{sum(s.transients for s in sequences)} transient frames (built in {build_s:.1f} s); "
          f"frames decoded at resolution {store.resolution}")
    for name, why in skipped.items():
        print(f"descriptor {name}: {why}")
    for dname in descs:
        mode = getattr(descs[dname], "mode", "regional")
        if not any(MODES.get(name, "regional") == mode for name in decisions):
            continue
        print(f"\ndescriptor {dname}: {status[dname]}  (features {store.seconds[dname]:.1f} s)")
        for name in decisions:
            if MODES.get(name, "regional") != mode:
                continue
            for settings in settings_grid(axes.get(name, {})):
                label = name + ("" if not settings else " " + " ".join(f"{k}={v}" for k, v in settings.items()))
                print(f"  decision {label}")
                print("    threshold  state_recall  transient_share  duplicate_share   kept")
                for r in runs:
                    if r["descriptor"] != dname or r["decision"] != name or r["settings"] != settings:
                        continue
                    p = r["pooled"]
                    mark = "*" if math.isclose(r["threshold"], default_th) else " "
                    print(f"  {mark} {r['threshold']:7.3f}   {_fmt(p['state_recall'])}        "
                          f"{_fmt(p['transient_share'])}           {_fmt(p['duplicate_share'])}       {p['kept']:5d}")
    print(f"\n* = the preselected threshold {default_th}; decode {store.decode_seconds:.1f} s, "
          f"sweep {sweep_s:.1f} s in all")

    result = {
        "sequences": [{"name": s.name, "frames": len(s.frames), "states": len(s.states()),
                       "transients": s.transients, "stills": s.stills, "fps": s.fps} for s in sequences],
        "build_s": round(build_s, 2),
        "sweep_s": round(sweep_s, 2),
        "resolution": store.resolution,
        "thresholds": thresholds,
        "default_threshold": default_th,
        "descriptors": {n: {"status": status[n], "features_s": round(store.seconds[n], 2)} for n in descs},
        "skipped": skipped,
        "axes": axes,
        "runs": runs,
    }
    if args.json:
        print(json.dumps(result, separators=(",", ":")))
    return result


if __name__ == "__main__":
    main()
