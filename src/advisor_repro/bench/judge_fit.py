"""Does the local judge fit the 16 GB budget? Load it in NF4 and judge a few pairs on the GPU.

    python -m advisor_repro.bench.judge_fit --out judge_gpu_check.json

The judge is the paper profile's `judge.local_model` (Qwen/Qwen2.5-14B-Instruct) when its
weights are in the local Hugging Face cache; otherwise a stand-in of the same architecture and
size with random weights (Qwen2 config of Qwen2.5-14B-Instruct, 14.8B parameters, written
once as fp16 safetensors, tokenizer a byte-level BPE with ChatML) is loaded by the same code
path: LocalJudge -> from_pretrained with the NF4 config of hardware/gpu.py. The process is capped at
`hardware.vram_budget_gib` (14.74 GiB, a T4) by hardware/gpu.cap_vram, so an
allocation beyond the budget fails here as it would on the 16 GB card. Recorded: load time,
each call's time and status, the peak allocated and reserved memory, and a worst case (the
longest judge prompt of the paper run plus 512 generated tokens, with no early stop).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from advisor_repro.hardware.gpu import GIB, cap_vram
from advisor_repro.models.standin import QWEN25_14B, judge_standin


def standin_texts(conversations: int = 600) -> list[str]:
    """What the stand-in's tokenizer learns from: stand-in conversations, the rubric's prompts
    and the factuality catalog, so the judge's prompts tokenize like text, not bytes."""
    from advisor_repro.audits.core import load_catalog
    from advisor_repro.judges.rubric import ANSWER_TEMPLATE, PAIR_TEMPLATE, RUBRIC
    from advisor_repro.smokedata import standin_dataset

    texts = [t["value"] for r in standin_dataset(seed=0, n_train=conversations, n_test=0)["train"]
             for t in r["conversations"]]
    texts += [RUBRIC, PAIR_TEMPLATE, ANSWER_TEMPLATE]
    return texts + [c.claim + " " + c.fact
                    for c in load_catalog("artifacts/factuality_catalog.toml").claims]


def build_standin(out: Path, shape: dict[str, Any] = QWEN25_14B, device: str = "cuda",
                  conversations: int = 600) -> Path:
    """The judge's random-weight stand-in (models/standin.py), written to `out` once."""
    if (out / "standin.json").is_file():
        return out
    return judge_standin(out, standin_texts(conversations), shape, device)


def pairs() -> list[tuple[str, str, str]]:
    """Three pairs of the paper's catalog prompts, answers of about 256 tokens each."""
    from advisor_repro.audits.core import load_catalog

    out = []
    for c in load_catalog("artifacts/factuality_catalog.toml").claims[:3]:
        right = " ".join([c.fact] * 6 + ["Check the official page before you apply."] * 3)
        wrong = " ".join([c.claim] * 6 + ["Prepare your documents early."] * 3)
        out.append((c.prompt, right, wrong))
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    from advisor_repro.config import load_config
    from advisor_repro.judges import CachedJudge, ask
    from advisor_repro.judges.local import LocalJudge, resolve_model
    from advisor_repro.judges.rubric import pair_messages, parse_pair

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="judge_gpu_check.json")
    ap.add_argument("--standin-dir", default="/tmp/advisor-repro-judge-standin")
    args = ap.parse_args(argv)
    cfg = load_config("paper", ["judge.backend='local'"])
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(0),
                              "total_gib": torch.cuda.get_device_properties(0).total_memory / GIB,
                              "budget_gib": cfg.hardware.vram_budget_gib}
    try:
        folder, revision, name = resolve_model(cfg)
        report["weights"] = f"{name}@{revision} (real weights from the local cache)"
    except Exception as exc:  # not cached offline: the random stand-in of the same shape
        t0 = time.time()
        folder = build_standin(Path(args.standin_dir))
        name, revision = "Qwen2.5-14B-shape-random", "standin"
        report["weights"] = f"random stand-in ({type(exc).__name__}: weights not cached)"
        report["standin_build_s"] = round(time.time() - t0, 1)
    cap_vram("cuda", cfg.hardware.vram_budget_gib)
    torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    backend = LocalJudge(folder, name, revision, cfg.judge, "cuda", cfg.judge.local_quant)
    report["load_s"] = round(time.time() - t0, 1)
    report["identity"] = backend.identity
    report["after_load_gib"] = torch.cuda.memory_allocated() / GIB
    judge, calls = CachedJudge(backend, None), []
    for q, right, wrong in pairs():
        t0 = time.time()
        msgs = pair_messages(q, right, wrong)
        reply = ask(judge, msgs, parse_pair, "gpu-check", cfg.judge.parse_retries)
        n_prompt = len(backend.tok.apply_chat_template(msgs, add_generation_prompt=True,
                                                       return_dict=True)["input_ids"])
        calls.append({"prompt_tokens": n_prompt, "status": reply.status,
                      "attempts": reply.attempts, "seconds": round(time.time() - t0, 2),
                      "raw": reply.raw[:200]})
    report["calls"] = calls
    # worst case: the longest prompt, 512 new tokens, no early stop
    q, right, wrong = pairs()[0]
    enc = backend.tok.apply_chat_template(pair_messages(q, right * 2, wrong * 2),
                                          add_generation_prompt=True, return_tensors="pt",
                                          return_dict=True).to("cuda")
    t0 = time.time()
    with torch.inference_mode():
        out = backend.model.generate(**enc, max_new_tokens=512, min_new_tokens=512,
                                     do_sample=False, pad_token_id=backend.tok.pad_token_id)
    report["worst_case"] = {"prompt_tokens": int(enc["input_ids"].shape[1]),
                            "new_tokens": int(out.shape[1] - enc["input_ids"].shape[1]),
                            "seconds": round(time.time() - t0, 1)}
    report["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / GIB
    report["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
    report["fits"] = report["peak_reserved_gib"] <= cfg.hardware.vram_budget_gib
    backend.close()
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0 if report["fits"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
