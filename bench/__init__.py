"""Benchmarks of retail-datagen against the local stack; ``python -m bench.run`` (``make bench``) runs them all."""
