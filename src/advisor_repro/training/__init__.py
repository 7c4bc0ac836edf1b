"""The paper's training recipe (Section 3, Table 3 and the phase table): the QLoRA segments.

`segments` turns the config into each segment's plan (epochs, micro-batch x grad-accum,
optimizer steps by the Trainer's rule); `trainer` builds TRL's SFTTrainer on the 4-bit base
with a fresh LoRA or the handed-off adapter, under the VRAM budget and the session limit;
`steplog` writes the per-step log and crash-resume checkpoints; `handoff` builds and verifies
the adapter-only bundle that is all that crosses from segment 1 (the P100) to segment 2 (the
T4); `backends/` loads the model through Unsloth (the paper's) or plain transformers + PEFT;
`microbatch` splits a segment's effective batch to fit the VRAM budget (`split = "auto"`).
The benchmarks of this recipe live in the `bench` wing.
"""
