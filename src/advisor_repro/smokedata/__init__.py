"""Bundled offline data about a FICTIONAL university (Veldmark Institute of Technology).

Used by the smoke profile and by tests: a small dataset with labelled planted errors, and a
stand-in of the paper's size and shape, both generated deterministically from `handbook.toml`.
"""

from advisor_repro.smokedata.generate import (
    handbook,
    smoke_dataset,
    standin_dataset,
    write_splits,
)

__all__ = ["handbook", "smoke_dataset", "standin_dataset", "write_splits"]
