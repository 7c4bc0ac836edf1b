"""What every wing that touches a GPU shares: the byte unit. Memory is counted in GiB (2**30
bytes) throughout, as torch and Unsloth report it; the paper's GB figures are converted where
they are quoted (report/verify_table.py)."""

from __future__ import annotations

GIB = 2**30  # bytes in a GiB
