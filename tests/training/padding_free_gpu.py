"""The padding-free separation check on the GPU, run in a fresh process (Unsloth must be
imported before transformers, TRL and PEFT, as in the training process):

  python tests/training/padding_free_gpu.py BACKEND BASE_DIR OUT.json

It loads the tiny random Mistral base in NF4 with the paper's LoRA through the training
backend, builds the trainer through `trainer.build_trainer` with `train.padding_free = true`
(so Unsloth wraps TRL's collator as it does in training: `packed_seq_lengths`), packs three
sequences of different lengths into one micro-batch with that collator, and, for each sequence,
computes the model's own loss (labels of the other sequences masked) and the gradient of every
LoRA weight, packed and alone (the same collator over that sequence only). The control hides
the boundaries (an all-ones attention mask, positions 0..n-1 over the whole row, no
`packed_seq_lengths`): plain causal attention over the row, so the later sequences see the
earlier ones. Writes the per-sequence distances; tests/training/test_padding_free.py judges
them."""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

TEXT = ("students ask how to apply for a visa and which documents a university admission "
        "office needs before the semester starts in autumn")
LENGTHS = (9, 21, 14)  # words of the three conversations: different lengths in one row


def main(argv: list[str]) -> int:
    backend_name, base_dir, out, *rest = argv
    device = rest[0] if rest else "cuda"  # "cpu": the hf backend's same check, for development
    from advisor_repro.training.backends import get_backend

    backend = get_backend(backend_name)
    backend.prepare()  # unsloth first
    import torch
    from datasets import Dataset

    from advisor_repro.config import load_config
    from advisor_repro.training.backends import LoadSpec
    from advisor_repro.training.records import SegmentRun
    from advisor_repro.training.segments import SegmentPlan, Shape
    from advisor_repro.training.trainer import build_trainer

    cfg = load_config("rehearsal", ["train.padding_free=true", "train.max_seq_length=128"])
    spec = LoadSpec(Path(base_dir), device, "fp16" if device == "cuda" else "fp32", 128,
                    cfg.train.lora, True)
    model, tokenizer = backend.load(spec)
    words = TEXT.split()
    texts = [" ".join(words[i % 5:][:n]) + "</s>" for i, n in enumerate(LENGTHS)]
    shape = Shape(len(texts), 1)
    plan = SegmentPlan("train-1", 1, 1, shape, 2e-4, 0.0, 1, 0.0, False, False)
    train = dataclasses.replace(cfg.train, checkpoint_every=1000)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(SegmentRun(model, tokenizer, plan, train, spec, backend,
                                           Path(tmp)),
                                Dataset.from_list([{"text": t} for t in texts]), shape, [],
                                extra={"save_strategy": "no", "report_to": []})
    collate = trainer.data_collator
    rows = [trainer.train_dataset[i] for i in range(len(texts))]
    keep = ("input_ids", "completion_mask", "assistant_masks", "seq_lengths")
    rows = [{k: v for k, v in r.items() if k in keep} for r in rows]
    lengths = [len(r["input_ids"]) for r in rows]
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()

    def on_gpu(batch):
        return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}

    def loss_and_grad(batch):
        model.zero_grad(set_to_none=True)
        loss = model(**batch, use_cache=False).loss
        loss.backward()  # not autograd.grad: checkpointed layers refuse it
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).float()
                          .flatten() for p in params])
        return float(loss), flat

    def one_sequence(batch, i):
        """The packed row's batch with only sequence i's labels kept."""
        labels = batch["labels"].clone()
        start = sum(lengths[:i])
        mask = torch.ones_like(labels, dtype=torch.bool)
        mask[0, start:start + lengths[i]] = False
        labels[mask] = -100
        return {**batch, "labels": labels}

    packed = on_gpu(collate(rows))
    keys = sorted(packed)
    crossed = {k: v for k, v in packed.items() if k != "packed_seq_lengths"}
    crossed["position_ids"] = torch.arange(sum(lengths), device=device)[None]
    crossed["attention_mask"] = torch.ones_like(packed["input_ids"])
    report = {"backend": backend_name, "batch_keys": keys, "lengths": lengths,
              "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
              "sequences": []}
    for i, row in enumerate(rows):
        alone_loss, alone_grad = loss_and_grad(on_gpu(collate([row])))
        packed_loss, packed_grad = loss_and_grad(one_sequence(packed, i))
        crossed_loss, crossed_grad = loss_and_grad(one_sequence(crossed, i))
        norm = float(alone_grad.norm())
        report["sequences"].append({
            "tokens": lengths[i], "alone_loss": alone_loss, "grad_norm": norm,
            "packed_loss_diff": abs(packed_loss - alone_loss),
            "packed_grad_rel": float((packed_grad - alone_grad).norm()) / norm,
            "crossed_loss_diff": abs(crossed_loss - alone_loss),
            "crossed_grad_rel": float((crossed_grad - alone_grad).norm()) / norm,
        })
    Path(out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
