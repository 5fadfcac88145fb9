"""``python -m evaluate.bench``: see ``evaluate.bench.cli``."""

from evaluate.bench.cli import main
from evaluate.cli_errors import run_cli

run_cli(main)
