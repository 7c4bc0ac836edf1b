"""One module per stage; each exposes `STAGE` (see advisor_repro.pipeline.Stage)."""
