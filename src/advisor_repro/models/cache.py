"""The one cache root that the smoke model, the hub helpers and the rehearsal stand-ins share."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Where converted models and other caches live: $ADVISOR_REPRO_CACHE, else
    ~/.cache/advisor-repro. Kept out of the Config so moving machines changes no hash."""
    return Path(os.environ.get("ADVISOR_REPRO_CACHE") or Path.home() / ".cache" / "advisor-repro")
