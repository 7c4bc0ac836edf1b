"""train.checkpoint_layers through the real trainer, run in a fresh process (Unsloth must be
imported before transformers, TRL and PEFT, as in the training process):

  python tests/training/checkpointing_run.py BACKEND BASE_DIR OUT.json [cpu]

It loads the tiny random Mistral base (2 decoder layers) with the paper's LoRA through the
training backend with gradient checkpointing on, and trains the same 3 optimizer steps
(micro-batch 2 x grad-accum 2, the same sequences, the same fresh LoRA weights) three times
through `trainer.build_trainer`: every layer checkpointed (as loaded), 1 of 2 and 0 of 2
(`checkpointing.keeper`). Per run: the per-step losses, the LoRA weights at the end, the count
of layers the keeper found checkpointed at each step's end, and how often each decoder layer's
forward ran (a checkpointed layer runs it again in the backward, so it counts twice per
micro-batch). tests/training/test_checkpointing.py judges the record."""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

TEXT = ("students ask how to apply for a visa and which documents a university admission "
        "office needs before the semester starts in autumn")


def main(argv: list[str]) -> int:
    backend_name, base_dir, out, *rest = argv
    device = rest[0] if rest else "cuda"
    from advisor_repro.training.backends import get_backend

    backend = get_backend(backend_name)
    backend.prepare()  # unsloth first
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from advisor_repro.config import load_config
    from advisor_repro.training import checkpointing
    from advisor_repro.training.backends import LoadSpec
    from advisor_repro.training.records import SegmentRun
    from advisor_repro.training.segments import SegmentPlan, Shape
    from advisor_repro.training.trainer import build_trainer

    cfg = load_config("rehearsal", ["train.max_seq_length=64"])
    spec = LoadSpec(Path(base_dir), device, "fp16" if device == "cuda" else "fp32", 64,
                    cfg.train.lora, True)
    torch.manual_seed(0)
    model, tokenizer = backend.load(spec)
    fresh = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    words = TEXT.split()
    texts = [" ".join(words[i % 7:][:6 + 3 * (i % 4)]) + "</s>" for i in range(12)]
    shape = Shape(2, 2)
    plan = SegmentPlan("train-1", 1, 1, shape, 2e-4, 0.0, 3, 0.0, False, False)
    train = dataclasses.replace(cfg.train, checkpoint_every=1000, max_seq_length=64)
    layers = checkpointing.decoder_layers(model)
    calls = [0] * len(layers)
    for i, layer in enumerate(layers):
        layer.register_forward_pre_hook(lambda *_a, i=i: calls.__setitem__(i, calls[i] + 1))

    class Losses(TrainerCallback):
        def __init__(self) -> None:
            self.rows: list[float] = []

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.rows.append(float(logs["loss"]))

    report = {"backend": backend_name, "layers": len(layers), "runs": {},
              "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu"}
    for checkpointed in (len(layers), 1, 0):
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in fresh:
                    p.copy_(fresh[name])
        model.zero_grad(set_to_none=True)
        calls[:] = [0] * len(layers)
        keep = checkpointing.keeper(model, checkpointed, backend_name)
        losses = Losses()
        data = Dataset.from_list([{"text": t} for t in texts])
        with tempfile.TemporaryDirectory() as tmp:
            run = SegmentRun(model, tokenizer, plan, train, spec, backend, Path(tmp))
            trainer = build_trainer(run, data, shape, [keep, losses],
                                    extra={"save_strategy": "no", "report_to": []})
            trainer.train()
        weights = torch.cat([p.detach().float().flatten().cpu() for n, p in
                             model.named_parameters() if n in fresh])
        report["runs"][str(checkpointed)] = {
            "losses": losses.rows, "in_force": sorted(keep.seen), "forward_calls": list(calls),
            "weights": weights.tolist()}
        keep.restore()
    Path(out).write_text(json.dumps(report), encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
