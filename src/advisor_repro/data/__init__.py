"""The dataset: as its source holds it (source.py: reading the hub, the bundled generators or a
local folder), and as the `data` stage takes it (records.py: validated, rendered, drawn).

Two stages read it: `data` (which validates every record and refuses an invalid one before
training) and `audit-data` (which audits the records as they are, invalid ones included, as
the author's evaluate_dataset.py does).
"""

from advisor_repro.data.records import (
    SPLITS,
    check_sizes,
    draw_eval_prompts,
    record_problem,
    render_training_text,
    validate,
)
from advisor_repro.data.source import (
    Fingerprint,
    Provenance,
    check_source,
    ensure_available,
    eval_draw_indices,
    fingerprint,
    load_splits,
    source_caches,
    source_inputs,
)

__all__ = ["SPLITS", "Fingerprint", "Provenance", "check_sizes", "check_source",
           "draw_eval_prompts", "ensure_available", "eval_draw_indices", "fingerprint",
           "load_splits", "record_problem", "render_training_text", "source_caches",
           "source_inputs", "validate"]  # fmt: skip
