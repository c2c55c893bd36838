"""Describe frames and decide which to keep: the public face of :mod:`utils.decision`.

* descriptors (:func:`load_descriptor`, :func:`untrained_descriptor`): MobileNetV3-small features, seen region by
  region (or globally, the original app's way), or a colour thumbnail without the ImageNet weights;
* distances and the index of kept images (:class:`FeatureIndex`): one matrix-vector product per region;
* the decision (:class:`Decider`): keep a frame once the scene has settled and when it is farther than the
  threshold from every kept image; :func:`refilter` re-applies it to a closed order ("Update images").

See the README, "Distinct images", for what the threshold means.
"""

from utils.decision import *  # noqa: F403
from utils.decision import __all__  # noqa: F401
