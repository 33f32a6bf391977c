"""The execution backend: JAX/Flax/optax training of an advisor Plan.

Imported lazily by ``advisor.run``; nothing here runs at import time beyond
definitions.  See ``engine.run.run_plan`` for the entry point.
"""
