"""What to keep: descriptors (frames -> features), distances and the kept-image index, and the decision."""

from utils.decision.decider import SETTLE_LIMIT, Decider, Decision, is_distinct, refilter
from utils.decision.descriptors import (
    FEATURE_DIM,
    THUMBNAIL_SCALE,
    THUMBNAIL_SIZE,
    DecisionMode,
    Descriptor,
    DescriptorStatus,
    DescriptorUnavailable,
    load_descriptor,
    untrained_descriptor,
)
from utils.decision.index import ORIGINAL_LAYOUT, FeatureIndex, Layout, distances, pair_distance, rms_distances

__all__ = [
    "FEATURE_DIM", "ORIGINAL_LAYOUT", "SETTLE_LIMIT", "THUMBNAIL_SCALE", "THUMBNAIL_SIZE", "Decider", "Decision",
    "DecisionMode", "Descriptor", "DescriptorStatus", "DescriptorUnavailable", "FeatureIndex", "Layout",
    "distances", "is_distinct", "load_descriptor", "pair_distance", "refilter", "rms_distances",
    "untrained_descriptor",
]
