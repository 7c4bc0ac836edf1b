"""The benchmarks (`repro bench ...`): each measures a baseline and the package's way in the
same run, on one GPU, and records the ratios with the GPU's name.

`train` times the package's trainer against a bare Unsloth loop and transformers + PEFT at the
paper's shapes; `lengths` the written micro-batch split against `auto` (and padding-free,
checkpointed layers) at the data's own lengths; `utilisation` turns their step times into
MFU/HFU; `generate` batched generation against one prompt at a time; `judge` the local judge
batched against one question at a time, under the rubric's grammar and without it.
`records` holds the shapes of the training benches' JSON records, which the workers write and
`utilisation` and the tables read; generate's and judge's live in their own modules.
"""
