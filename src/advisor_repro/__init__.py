"""advisor-repro: replay and check arXiv 2504.15610 (a 7B QLoRA advisor on free-tier GPUs)."""

__version__ = "0.1.0"
