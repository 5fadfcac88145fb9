"""Source localization from a microphone array, by design.

- ``srp``: ``LearnedSRP``, a learned steered-response power with the phase transform
  (GCC-PHAT per microphone pair, SRP-PHAT over directions) whose logit is an exact sum of
  per-(frame, pair, lag) terms; its explanation is the delay each pair used and when it
  listened. ``array_geometry`` turns a dataset's ``meta/array.json`` into its arguments.
"""

from interp_models.localization.srp import (
    LearnedSRP,
    angular_error_deg,
    array_geometry,
    sector_centres_deg,
)

__all__ = ["LearnedSRP", "angular_error_deg", "array_geometry", "sector_centres_deg"]
