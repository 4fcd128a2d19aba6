"""The parts of `scripts/bench.py`: the machine, the timing, each side of the comparisons and the report.

They live outside the `jaxrl` package so that `bench.py --against REV` can time another revision's
`jaxrl` with this revision's measuring code (`against.py` runs them with that tree on PYTHONPATH).
"""
