"""Training: the trainer, its segments, the step log, the handoff bundle, the backends and the
training benchmark (issue 14 moves the older modules in here)."""
