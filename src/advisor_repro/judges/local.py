"""The `local` judge: an open model loaded with transformers, so the replay needs no API key.

On a CUDA GPU the judge loads in 4-bit NF4 (double quant; fp16 compute below sm 8, bf16 from
sm 8), after the generation stage has freed the trained models, held to
`hardware.vram_budget_gib`, and is freed again when the stage ends. The paper profile's
choice is Qwen2.5-14B-Instruct: about 10 GB in NF4 (README, "The judge"). The smoke profile
judges with the smoke model itself, in fp32 on the CPU.

Decoding is greedy at temperature 0 (sampling with the configured temperature otherwise),
the judge model's chat template renders the messages, and every reply is decoded under its
task's JSON schema (grammar.py: llguidance), so it is the rubric's JSON by construction,
whatever the model. A tokenizer that cannot serve the schema is refused when the judge is
built, before the first question. `decoding="free"` (the benchmark's baseline only) decodes
without the grammar.

Independent questions go through `generate` in left-padded batches: `judge.batch_size`, or
(0) the most that fit the VRAM budget (KV cache of prompt + reply budget per row), 8 on the
CPU. An out-of-memory batch is halved and asked again. Each reply is handed back as soon as
its batch ends, so the cache keeps every finished batch when a later one is killed.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor_repro.config import Config, Judge
from advisor_repro.errors import ConfigError
from advisor_repro.hardware.gpu import GIB, cap_vram, nf4_config
from advisor_repro.judges.cache import JudgeIdentity, settings
from advisor_repro.judges.rubric import Messages

RESERVE_GIB = 1.0  # CUDA context and allocator slack kept free when fitting the batch
KV_GROWTH = 1.25  # the dynamic KV cache grows by concatenation: slack for the copies
CPU_BATCH = 8  # judge.batch_size = 0 on the CPU: latency, not memory, is the limit
MAX_BATCH = 32

Item = tuple[Messages, str, str]  # (messages, question key, task)


def resolve_model(cfg: Config) -> tuple[Path, str, str]:
    """(folder, revision, name) of the local judge: "" = the profile's generation base, a
    local folder, or a hub id resolved (offline when HF_HUB_OFFLINE=1) to a snapshot."""
    from advisor_repro.models import hub as models

    name = cfg.judge.local_model
    if not name:
        folder, revision = models.base_model(cfg.model, "eval")
        return folder, revision, cfg.model.eval_base
    if Path(name).is_dir():
        return Path(name), "local-folder", Path(name).name
    from huggingface_hub import constants

    folder, revision = models.resolve_hub_model(
        name, cfg.judge.local_revision, None, offline=constants.HF_HUB_OFFLINE
    )
    return folder, revision, name


def model_caches(cfg: Config) -> dict[str, Path]:
    """The caches resolving the local judge's model would write into (models.hub); none for
    the API and replay judges, which load no model."""
    from advisor_repro.models import hub as models

    if cfg.judge.backend != "local":
        return {}
    if not cfg.judge.local_model:
        return models.base_model_caches(cfg.model, "eval")
    return models.hub_caches(cfg.judge.local_model)


def pick_device(requested: str) -> str:
    import torch

    if requested == "cpu" or not torch.cuda.is_available():
        return "cpu"
    return "cuda"


def kv_bytes_per_token(config: Any, dtype_bytes: int) -> int:
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * dtype_bytes


def fit_batch(free_bytes: int, config: Any, prompt_len: int, reply: int, dtype_bytes: int,
              n: int) -> int:
    """Rows that fit in `free_bytes`: KV cache of prompt + reply budget (with growth slack),
    the prefill MLP activations and the fp32 logits of one step."""
    kv = kv_bytes_per_token(config, dtype_bytes) * (prompt_len + reply) * KV_GROWTH
    prefill = prompt_len * config.intermediate_size * 3 * dtype_bytes
    per_row = int(kv + prefill + config.vocab_size * 4 * 2)
    return max(1, min(n, MAX_BATCH, free_bytes // per_row))


@dataclass(frozen=True)
class LocalRun:
    """How this judge runs here: the VRAM budget its batches fit (0 = the whole card) and its
    decoding ("grammar", or "free" for the benchmark's baseline only)."""

    budget_gib: float = 0.0
    decoding: str = "grammar"


class LocalJudge:
    # greedy grammar decoding may compute the next step's masks during the forward pass; the
    # same tokens either way (GrammarProcessor.check), so not part of the judge's identity.
    # Off: measured on the H100 (repro bench judge, 2026-12-06), a batch of 13 stepped in 59.2 ms
    # with the masks after the forward (59.4 free) and in 97.5 ms with them during it
    overlap_masks = False

    def __init__(self, folder: Path, name: str, revision: str, jc: Judge, device: str,
                 quant: str, run: LocalRun = LocalRun()) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        budget_gib, decoding = run.budget_gib, run.decoding
        self.jc, self.device, self.decoding, self.budget_gib = jc, device, decoding, budget_gib
        self.tok = AutoTokenizer.from_pretrained(folder)
        self.grammars: dict[str, str] = {}
        if decoding == "grammar":
            self._grammar_setup(name)
        if quant == "auto":
            quant = "nf4" if device == "cuda" else "none"
        if device == "cuda":
            major, _ = torch.cuda.get_device_capability()
            dtype = torch.bfloat16 if major >= 8 else torch.float16
            cap_vram(device, budget_gib)
            torch.cuda.reset_peak_memory_stats()  # this stage's peak, not an earlier stage's
        else:
            dtype = torch.float32
        if quant == "nf4":
            qc = nf4_config(dtype)
            where = {"": 0} if device == "cuda" else {"": "cpu"}
            self.model = AutoModelForCausalLM.from_pretrained(
                folder, quantization_config=qc, device_map=where, dtype=dtype, use_safetensors=True
            )
        else:
            self.model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=dtype, use_safetensors=True
            ).to(device)
        self.model.eval()
        self.dtype_bytes = 2 if dtype in (torch.float16, torch.bfloat16) else 4
        self.batch_sizes: list[int] = []  # every batch asked, in order (halvings show here)
        self.grammar_seconds = 0.0  # time decoding steps waited on token masks
        self.identity: JudgeIdentity = {
            "backend": "local",
            "model": name,
            "revision": revision,
            "quant": quant,
            "dtype": str(dtype).removeprefix("torch."),
            "decoding": self._decoding_name(),
            **settings(jc),
        }

    def _grammar_setup(self, name: str) -> None:
        from advisor_repro.judges.grammar import GrammarUnavailable, check_tokenizer, ll_tokenizer

        try:
            self.lltok = ll_tokenizer(self.tok)
            self.grammars = check_tokenizer(self.tok, self.lltok, self.jc.max_tokens)
        except GrammarUnavailable as exc:
            raise ConfigError(
                f"the local judge model {name} cannot decode under the rubric's JSON schema: "
                f"{exc}",
                "pick a judge model with a fast tokenizer (tokenizer.json), an EOS token and a "
                "chat template (--set judge.local_model=Qwen/Qwen2.5-14B-Instruct), raise "
                "judge.max_tokens, or use an API backend (--set judge.backend=anthropic)",
            ) from exc

    def _decoding_name(self) -> str:
        if self.decoding != "grammar":
            return "free"
        from importlib.metadata import version

        from advisor_repro.judges.schemas import SCHEMA_VERSION

        return f"grammar:llguidance-{version('llguidance')}:{SCHEMA_VERSION}"

    @classmethod
    def from_config(cls, cfg: Config) -> LocalJudge:
        folder, revision, name = resolve_model(cfg)
        return cls(folder, name, revision, cfg.judge, pick_device(cfg.hardware.device),
                   cfg.judge.local_quant, LocalRun(budget_gib=cfg.hardware.vram_budget_gib))

    # ---- asking ------------------------------------------------------------------------------
    def encode(self, messages: Messages) -> list[int]:
        text = self.tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tok.encode(text, add_special_tokens=False)

    def batch_size(self, prompt_len: int, n: int) -> int:
        if self.jc.batch_size > 0:
            return min(self.jc.batch_size, n)
        if self.device != "cuda":
            return min(CPU_BATCH, n)
        import torch

        budget = self.budget_gib or torch.cuda.get_device_properties(0).total_memory / GIB
        free = int((budget - RESERVE_GIB) * GIB) - torch.cuda.memory_allocated(0)
        return fit_batch(free, self.model.config, prompt_len, self.reply_tokens(),
                         self.dtype_bytes, n)

    def reply_tokens(self) -> int:
        """The most tokens a reply can take: the budget, or under the grammar the longest
        reply it allows plus EOS (schemas.json_bound), when that is less."""
        if self.decoding != "grammar":
            return self.jc.max_tokens
        from advisor_repro.judges.schemas import TASKS, json_bound, text_chars_for

        return min(self.jc.max_tokens, 1 + max(
            json_bound(t, text_chars_for(t, self.jc.max_tokens)) for t in TASKS))

    def complete(self, messages: Messages, key: str, task: str = "") -> str:
        out: list[str] = []
        self.complete_batch([(messages, key, task)], lambda i, text: out.append(text))
        return out[0]

    def complete_batch(self, items: list[Item], done: Callable[[int, str], None]) -> None:
        """Answer every item; done(index, text) as each batch ends. Rows are grouped by
        prompt length (less padding); greedy replies do not depend on the grouping."""
        import torch

        encoded = [self.encode(m) for m, _, _ in items]
        order = sorted(range(len(items)), key=lambda i: len(encoded[i]))
        at = 0
        bs = self.batch_size(len(encoded[order[-1]]), len(order)) if order else 1
        while at < len(order):
            chunk = order[at : at + bs]
            try:
                texts = self._generate([encoded[i] for i in chunk],
                                       [items[i][2] for i in chunk])
            except torch.cuda.OutOfMemoryError:
                if bs == 1:
                    raise
                bs = max(1, bs // 2)  # the same rows again, in two halves
                gc.collect()
                torch.cuda.empty_cache()
                continue
            self.batch_sizes.append(len(chunk))
            for i, text in zip(chunk, texts, strict=True):
                done(i, text)
            at += len(chunk)

    def _generate(self, prompts: list[list[int]], tasks: list[str], force_tokens: int = 0
                  ) -> list[str]:
        """One left-padded batch. `force_tokens` (benchmark only) makes every row decode
        exactly that many tokens, EOS or not. Step times land in self.last_steps."""
        import torch
        from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

        steps: list[float] = []

        class Clock(StoppingCriteria):  # never stops: timestamps each decoding step
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                steps.append(time.perf_counter())
                return torch.zeros(input_ids.shape[0], dtype=torch.bool,
                                   device=input_ids.device)

        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts],
                            device=self.device)
        processors = LogitsProcessorList()
        grammar = None
        sampling = self.jc.temperature > 0
        if self.decoding == "grammar":
            from advisor_repro.judges.grammar import GrammarProcessor

            missing = [t for t in tasks if t not in self.grammars]
            if missing:
                raise ValueError(f"no grammar for judge task {missing[0]!r}")
            # greedy: the next step's masks are computed during the forward pass (grammar.py)
            grammar = GrammarProcessor(self.lltok, [self.grammars[t] for t in tasks], width,
                                       overlap=self.overlap_masks and not sampling
                                       and not force_tokens)
            processors.append(grammar)
        t0 = time.perf_counter()
        try:
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=ids, attention_mask=mask,
                    max_new_tokens=force_tokens or self.jc.max_tokens,
                    min_new_tokens=force_tokens or None,
                    do_sample=sampling, temperature=self.jc.temperature if sampling else None,
                    top_p=None, top_k=None, pad_token_id=pad,
                    eos_token_id=self.tok.eos_token_id, logits_processor=processors,
                    stopping_criteria=StoppingCriteriaList([Clock()]),
                )
        finally:
            if grammar is not None:
                grammar.close()
        if self.device == "cuda":
            torch.cuda.synchronize()
        self.last_seconds = time.perf_counter() - t0
        self.last_steps = [t - t0 for t in steps]
        if grammar is not None:
            grammar.check(out[:, width:])
            self.grammar_seconds += grammar.seconds
        self.last_new_tokens = [self._length(row) for row in out[:, width:].tolist()]
        return [self.tok.decode(row[:n], skip_special_tokens=True)
                for row, n in zip(out[:, width:].tolist(), self.last_new_tokens, strict=True)]

    def _length(self, row: list[int]) -> int:
        """Generated tokens up to and including the first EOS (the padding after it is not)."""
        eos = self.tok.eos_token_id
        return row.index(eos) + 1 if eos in row else len(row)

    @property
    def peak_reserved_gib(self) -> float | None:
        """torch's reserved peak since this judge was loaded (CUDA), for the stage summary."""
        if self.device != "cuda":
            return None
        import torch

        return round(torch.cuda.max_memory_reserved() / GIB, 3)

    def close(self) -> None:
        """Free the model so the next stage has the GPU to itself."""
        import torch

        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
