"""The dataset as its source holds it: reading the hub, the bundled generators or a local folder.

Two stages read it: `data` (which validates every record and refuses an invalid one before
training) and `audit-data` (which audits the records as they are, invalid ones included, as
the author's evaluate_dataset.py does).
"""

from advisor_repro.data.source import (
    check_source,
    ensure_available,
    eval_draw_indices,
    fingerprint,
    load_splits,
    source_caches,
    source_inputs,
)

__all__ = ["check_source", "ensure_available", "eval_draw_indices", "fingerprint", "load_splits",
           "source_caches", "source_inputs"]  # fmt: skip
