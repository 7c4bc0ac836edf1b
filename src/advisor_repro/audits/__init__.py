"""Audits: Tables 1 and 2 of the paper; the cores of the factuality and training-data audits."""
