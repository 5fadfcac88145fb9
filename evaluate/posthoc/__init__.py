"""Post-hoc explanations of any trained model, in the units of a feature grouping.

``build_explainer(name, model, **opts).attribute(inputs, target, grouping=...)`` returns an
``Explanation`` (see ``evaluate.posthoc.explainers`` for the methods and
``evaluate.posthoc.groupings`` for the groupings); ``evaluate.posthoc.audio`` makes every
explanation listenable, ``evaluate.posthoc.export`` writes it as JSON, and
``evaluate.posthoc.dft_lrp`` carries waveform relevance to the frequency and time-frequency domains.
``evaluate.posthoc.output_bands.OutputBands`` makes an audio-out (waveform-to-waveform) model
explainable: its outputs become the output's band magnitudes per time division.
"""

from evaluate import zennit_compat  # noqa: F401  (before anything imports zennit / quantus)
from evaluate.posthoc.explainers import (
    COMPARED,
    GROUPED,
    INTENSITY,
    METHODS,
    Explainer,
    build_explainer,
)
from evaluate.posthoc.groupings import Bands, Grouping, NMFComponents, Samples, TFBins
from evaluate.posthoc.output_bands import OutputBands

__all__ = [
    "COMPARED",
    "GROUPED",
    "INTENSITY",
    "METHODS",
    "Bands",
    "Explainer",
    "Grouping",
    "NMFComponents",
    "OutputBands",
    "Samples",
    "TFBins",
    "build_explainer",
]
