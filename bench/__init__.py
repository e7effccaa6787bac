"""Load benchmarks for Strongroom: real servers on loopback driven by wrk (see bench/README.md).

Not part of the test suite.  Each scenario is one module runnable as
``.venv/bin/python -m bench.NAME``; ``make bench`` runs them all.
"""
