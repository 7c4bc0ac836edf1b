"""Batched greedy generation for the evaluation: chat prompts, model loading, the answers log.

The paper's settings (PAPER.md "Evaluation"): Mistral chat template with the generation prompt,
greedy, max_new_tokens 256 and 512, left padding with pad = eos, both models 4-bit NF4 (double
quant, fp16 compute). The author generated one prompt at a time; here prompts are batched
(left padding), which is what makes the 50 x 2 x 2 answers take minutes instead of an hour.

Counting follows the author's notebook: an answer's `new_tokens` is the number of tokens it
generated including the EOS token (padding after it excluded), and it is `truncated` when
new_tokens >= the cap. With greedy decoding the first c tokens of a longer answer are exactly
what a run capped at c generates, so by default one pass at the largest cap yields every cap
(`generate.shared_prefix`); a per-step clock gives each cap its own seconds.

Heavy imports (torch, transformers, peft) stay inside the functions.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from advisor_repro.errors import DataError
from advisor_repro.files import canonical_json
from advisor_repro.hardware.gpu import GIB, nf4_config

MODELS = ("base", "ft")
RESERVE_GIB = 1.0  # CUDA context + allocator slack kept free when fitting the batch
KV_GROWTH = 1.25  # the dynamic KV cache grows by concatenation: slack for the copies
CPU_MAX_BATCH = 16  # batch_size = 0 on the CPU: memory is not the limit, latency is

SampleId = str | int  # as data/eval_prompts.jsonl holds it (the release's ids are ints)
Key = tuple[SampleId, str, int]  # (sample_id, model, cap)


class EvalPrompt(TypedDict):
    """A row of data/eval_prompts.jsonl, the parts generation, metrics and the judge read (an
    imported release holds no reference)."""

    sample_id: SampleId
    dataset_index: NotRequired[int | None]
    prompt: str
    reference: NotRequired[str]


class CapResult(TypedDict):
    """One prompt's answer at one cap, as `generate_batch` returns it."""

    new_tokens: int
    truncated: bool
    seconds: float
    text: NotRequired[str]  # when `decode` is given


class AnswerRow(TypedDict):
    """A line of generate/answers.jsonl."""

    sample_id: SampleId
    dataset_index: int | None
    model: str  # "base" | "ft"
    cap: int
    text: str
    new_tokens: int
    truncated: bool
    seconds: float
    prompt_tokens: int
    batch_size: int


# ---- prompts ---------------------------------------------------------------------------------
def chat_text(tok: Any, prompt: str) -> str:
    """The model's chat template around one user turn, with the generation prompt."""
    return tok.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )


def encode_prompts(tok: Any, prompts: list[str], double_bos: bool = False) -> list[list[int]]:
    """Token ids of each templated prompt. The template already holds the BOS text; the
    author's notebook tokenized it again with special tokens on (a second BOS for Mistral):
    double_bos=True reproduces that."""
    return [tok(chat_text(tok, p), add_special_tokens=double_bos).input_ids for p in prompts]


def left_pad(seqs: list[list[int]], pad_id: int) -> tuple[list[list[int]], list[list[int]]]:
    width = max(len(s) for s in seqs)
    ids = [[pad_id] * (width - len(s)) + s for s in seqs]
    mask = [[0] * (width - len(s)) + [1] * len(s) for s in seqs]
    return ids, mask


def answer_length(row: list[int], eos_ids: set[int]) -> int:
    """Generated tokens up to and including the first EOS (the rest is padding)."""
    for i, t in enumerate(row):
        if t in eos_ids:
            return i + 1
    return len(row)


# ---- models ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadSpec:
    device: str  # "cuda" or "cpu"
    quant: bool  # 4-bit NF4 via bitsandbytes
    double_quant: bool = True
    compute_dtype: str = "float16"  # "float16" on the GPU (the paper), "float32" on the CPU


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # the paper: pad = eos
    tok.padding_side = "left"
    return tok


def load_model(folder: Path, spec: LoadSpec, adapter: Path | None = None) -> Any:
    """The base (optionally with a PEFT adapter on top), quantized at load when spec.quant."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, spec.compute_dtype)
    kwargs: dict[str, Any] = {}
    if spec.quant:
        kwargs["quantization_config"] = nf4_config(dtype, spec.double_quant)
    device_map = {"": 0} if spec.device == "cuda" else {"": "cpu"}
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=dtype, device_map=device_map, use_safetensors=True, **kwargs
    )
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    return model.eval()


def merge_adapter(base: Path, adapter: Path, out: Path, dtype: str) -> Path:
    """The paper's "merged" model: LoRA merged into the unquantized base on the CPU (fp16 for
    the GPU tier), saved as a plain folder that `load_model` then quantizes like any base."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        base, dtype=getattr(torch, dtype), device_map={"": "cpu"}, use_safetensors=True
    )
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    merged.save_pretrained(out)
    load_tokenizer(base).save_pretrained(out)
    del model, merged
    gc.collect()
    return out


def free(model: Any) -> None:
    """Drop a model and give its memory back before the next one loads."""
    import torch

    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()



def kv_bytes_per_token(config: Any, dtype_bytes: int) -> int:
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * dtype_bytes


def fit_batch_size(
    free_bytes: int, config: Any, prompt_len: int, cap: int, dtype_bytes: int, n: int
) -> int:
    """Prompts per batch that fit in `free_bytes`: KV cache for prompt + cap tokens (with
    growth slack), the prefill MLP activations and the fp32 logits of one step."""
    kv = kv_bytes_per_token(config, dtype_bytes) * (prompt_len + cap) * KV_GROWTH
    prefill = prompt_len * config.intermediate_size * 3 * dtype_bytes
    logits = config.vocab_size * 4 * 2
    per_seq = int(kv + prefill + logits)
    return max(1, min(n, free_bytes // per_seq))


def batch_size_for(model: Any, spec: LoadSpec, budget_gib: float, prompt_len: int, cap: int,
                   n: int, requested: int) -> int:
    """The configured batch size, or (0) the largest that fits the VRAM budget."""
    if requested > 0:
        return min(requested, n)
    if spec.device != "cuda":
        return min(n, CPU_MAX_BATCH)
    import torch

    free_bytes = int((budget_gib - RESERVE_GIB) * GIB) - torch.cuda.memory_allocated(0)
    dtype_bytes = 2 if spec.compute_dtype in ("float16", "bfloat16") else 4
    return fit_batch_size(free_bytes, model.config, prompt_len, cap, dtype_bytes, n)


# ---- one batch -------------------------------------------------------------------------------
def _step_clock(on_step: Callable[[], None] | None) -> Any:
    """A StoppingCriteria that never stops: it timestamps every decoding step."""
    import torch
    from transformers import StoppingCriteria

    class StepClock(StoppingCriteria):
        def __init__(self) -> None:
            self.times: list[float] = []

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            self.times.append(time.perf_counter())
            if on_step is not None:
                on_step()
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return StepClock()


@dataclass(frozen=True)
class Decoding:
    """How a batch decodes (greedy): its pad and end tokens, a floor on new tokens (the bench
    only), and the KV cache (None = transformers' dynamic cache)."""

    pad_id: int
    eos_ids: Iterable[int]
    min_new_tokens: int = 0
    cache_implementation: str | None = None


def generate_batch(
    model: Any,
    prompt_ids: list[list[int]],
    caps: list[int],
    decoding: Decoding,
    *,
    on_step: Callable[[], None] | None = None,
    decode: Callable[[list[int]], str] | None = None,
) -> list[list[CapResult]]:
    """Greedy generation of one left-padded batch at max(caps). Returns, per prompt, one
    result per cap: text (when `decode` is given), new_tokens, truncated, seconds (from the
    batch start to this answer's last token)."""
    import torch
    from transformers import GenerationConfig, StoppingCriteriaList

    pad_id = decoding.pad_id
    eos = sorted(set(decoding.eos_ids))
    ids, mask = left_pad(prompt_ids, pad_id)
    device = next(model.parameters()).device
    input_ids = torch.tensor(ids, device=device)
    attention = torch.tensor(mask, device=device)
    gen_config = GenerationConfig(
        max_new_tokens=max(caps),
        min_new_tokens=decoding.min_new_tokens or None,
        do_sample=False,
        num_beams=1,
        pad_token_id=pad_id,
        eos_token_id=eos,
        cache_implementation=decoding.cache_implementation,  # None = transformers' dynamic cache
    )
    clock = _step_clock(on_step)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            generation_config=gen_config,
            stopping_criteria=StoppingCriteriaList([clock]),
        )
    t_end = time.perf_counter()
    rows = out[:, input_ids.shape[1] :].tolist()
    results = []
    for row in rows:
        full = answer_length(row, set(eos))
        per_cap = []
        for cap in caps:
            n = min(full, cap)
            seconds = (clock.times[n - 1] if n - 1 < len(clock.times) else t_end) - t0
            result: CapResult = {"new_tokens": n, "truncated": n >= cap,
                                 "seconds": round(seconds, 4)}
            if decode is not None:
                result["text"] = decode(row[:n])
            per_cap.append(result)
        results.append(per_cap)
    return results


# ---- the answers log (crash-resume) ----------------------------------------------------------
def answer_key(row: AnswerRow) -> Key:
    return (row["sample_id"], row["model"], int(row["cap"]))


class AnswerLog:
    """generate/answers.jsonl, appended and fsynced per batch. Opening it keeps every complete
    line and cuts a half-written last line (a kill mid-write), so a rerun redoes only what is
    missing."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows: dict[Key, AnswerRow] = {}
        self.dropped_bytes = self._load()

    def _load(self) -> int:
        if not self.path.is_file():
            return 0
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            os.truncate(self.path, keep)
        for lineno, line in enumerate(data[:keep].decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                self.rows[answer_key(row)] = row
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DataError(
                    f"{self.path}:{lineno}: not a valid answer line ({exc})",
                    f"delete {self.path.parent} and rerun `repro generate` to regenerate",
                ) from exc
        return len(data) - keep

    def __contains__(self, key: Key) -> bool:
        return key in self.rows

    def append(self, rows: list[AnswerRow]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(canonical_json(row) + "\n")
                self.rows[answer_key(row)] = row
            fh.flush()
            os.fsync(fh.fileno())
