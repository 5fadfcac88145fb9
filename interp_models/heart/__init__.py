"""Segmentation-aware heart-sound models (PhysioNet/CinC 2016).

- ``states``: the four cardiac states, segmentations, lesion spans and their conversions.
- ``dsp``: band-pass, spike removal, envelopes, Daubechies wavelets, FIR banks.
- ``springer``: the logistic-regression hidden semi-Markov segmenter of Springer et al.
  (IEEE TBME 2016), written from the paper.
- ``model``: ``SegmentationAwareNet``, whose abnormality logit is an exact sum of one
  evidence term per (beat, state), explained through ``explain``.
- ``listen``: listenable explanations (the recording gated to its relevant state spans).
"""
