"""Benchmarks (``make bench``, ``python -m evaluate.bench``): explanation cost against its
limit for every family and method, cost next to deletion AUC, training throughput.

Modules: ``timing`` (medians after warm-up, peak memory), ``models`` (what each family's
benchmark runs), ``explanation``, ``quality``, ``training`` (the NMF interpreter's),
``report`` (the markdown) and ``cli`` (the command).
"""

from evaluate.bench.cli import main

__all__ = ["main"]
