"""Training benchmarks (``python -m train.bench``): every family's training throughput,
input pipeline against the step and epoch time against data size
(``train.bench.families``). Explanation cost is ``python -m evaluate.bench``."""
