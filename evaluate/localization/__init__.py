"""Explanations of microphone-array source-localization models (#15): ground-truth checks
in time (direct path, TDOA) and perturbation faithfulness; see ``metrics``."""
