"""Does the local judge fit the 16 GB budget? Load it in NF4 and judge a few pairs on the GPU.

    python -m advisor_repro.judges.gpu_check --out judge_gpu_check.json

The judge is the paper profile's `judge.local_model` (Qwen/Qwen2.5-14B-Instruct) when its
weights are in the local Hugging Face cache; otherwise a stand-in of the same architecture and
size with random weights (Qwen2 config of Qwen2.5-14B-Instruct, 14.8B parameters, written
once as fp16 safetensors, tokenizer a byte-level BPE with ChatML) is loaded by the same code
path: LocalJudge -> from_pretrained with BitsAndBytesConfig NF4. The process is capped at
`hardware.vram_budget_gib` (14.74 GiB, a T4) with torch's per-process memory fraction, so an
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

from advisor_repro.hardware.gpu import GIB

QWEN25_14B = {  # config.json of Qwen/Qwen2.5-14B-Instruct (architecture only)
    "hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 48,
    "num_attention_heads": 40, "num_key_value_heads": 8, "vocab_size": 152064,
    "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
    "hidden_act": "silu", "tie_word_embeddings": False, "use_sliding_window": False,
}
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_standin(
    out: Path, shape: dict[str, Any] = QWEN25_14B, device: str = "cuda", conversations: int = 600,
    seed: int = 0,
) -> Path:
    """Random fp16 weights of the Qwen2.5-14B shape (or `shape`) + a ChatML byte-level BPE
    tokenizer trained on stand-in conversations, saved to `out` like a hub snapshot."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config

    from advisor_repro.audits.core import load_catalog
    from advisor_repro.judges.rubric import ANSWER_TEMPLATE, PAIR_TEMPLATE, RUBRIC
    from advisor_repro.smokedata import standin_dataset

    if (out / "standin.json").is_file():
        return out
    texts = [t["value"] for r in standin_dataset(seed=0, n_train=conversations, n_test=0)["train"]
             for t in r["conversations"]]
    texts += [RUBRIC, PAIR_TEMPLATE, ANSWER_TEMPLATE]
    texts += [c.claim + " " + c.fact for c in load_catalog("artifacts/factuality_catalog.toml")
              .claims]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=16000, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", model_max_length=32768)
    tok.chat_template = CHATML
    cfg = Qwen2Config(**shape, bos_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(
            cfg, dtype=torch.float16 if device == "cuda" else torch.float32)
    n = sum(p.numel() for p in model.parameters())
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out, max_shard_size="5GB")
    tok.save_pretrained(out)
    (out / "standin.json").write_text(json.dumps({"params": n, "seed": seed, "shape": shape}))
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


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
    torch.cuda.set_per_process_memory_fraction(
        min(1.0, cfg.hardware.vram_budget_gib * GIB / torch.cuda.get_device_properties(0)
            .total_memory))
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
