"""Mutation testing of the modules whose bugs lose money or evidence (see benchmarks/mutation/run.py)."""
