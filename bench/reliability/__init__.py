"""Fault-injection runs (python -m bench.reliability); see docs/reliability.md."""
