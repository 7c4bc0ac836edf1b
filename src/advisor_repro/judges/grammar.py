"""Decoding under the reply's JSON schema: llguidance driving transformers' `generate`.

Why llguidance (pinned 1.9.1): one 3 MB abi3 wheel with no dependencies, works with any
fast (Rust) tokenizer on CPU and CUDA, computes a token mask in tens of microseconds, and is
maintained (it is the grammar engine behind vLLM's and SGLang's `guidance` backend).
xgrammar needs triton on Linux (the CPU tier installs none); outlines pulls a large stack;
lm-format-enforcer and transformers-cfg walk the vocabulary in Python at each step.

`GrammarProcessor` is a LogitsProcessor with one matcher per row of the batch: before each
step every row's previous token is fed to its matcher and the rows' allowed-token bitmask is
written, then every other logit is set to -inf. A row whose matcher has stopped (its reply
closed and the end-of-sequence token allowed) may take only that token: `generate` ends it
there and pads it afterwards. Greedy decoding then picks the best token the grammar allows,
so a reply is the rubric's JSON whatever the model.

The masks of the whole batch are computed together, in parallel, by llguidance's executor
(`consume_token_par`, `fill_next_token_bitmask_par`: Rust threads, outside the GIL), not row
after row. Under greedy decoding they can also be computed while the GPU runs the next forward
pass (`overlap`; LocalJudge.overlap_masks, off in the stages until measured on a GPU): the
token `generate` will pick is the argmax of the masked scores this processor returns, so the
processor takes that argmax itself, copies it to pinned host memory behind a CUDA event, and a
worker thread feeds it to the matchers and writes the next step's
masks as soon as the event has passed, while `generate` launches the next forward. The next
call only waits for the worker. `check` compares, after `generate`, every token the matchers
were fed with the tokens `generate` emitted, so a prediction that ever differed is an error,
not a silent change of the reply.

`check_tokenizer` refuses, before the first question, a tokenizer that cannot serve the
schema: not a fast tokenizer, no end-of-sequence token, no chat template, or one that cannot
spell a valid reply.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from advisor_repro.judges.schemas import TASKS, local_schema, minimal_reply


class GrammarUnavailable(ValueError):
    """The judge model's tokenizer cannot serve the schema (the message says why)."""


def ll_tokenizer(tok: Any) -> Any:
    """The llguidance view of a transformers tokenizer (about 1 s: build once per judge)."""
    import llguidance.hf

    if not getattr(tok, "is_fast", False):
        raise GrammarUnavailable("its tokenizer is a slow (Python) tokenizer; the grammar "
                                 "needs a fast one (a tokenizer.json)")
    if tok.eos_token_id is None:
        raise GrammarUnavailable("its tokenizer has no end-of-sequence token")
    if not getattr(tok, "chat_template", None):
        raise GrammarUnavailable("its tokenizer has no chat template")
    try:
        return llguidance.hf.from_tokenizer(tok, n_vocab=len(tok))
    except Exception as exc:  # llguidance raises plain errors for tokenizers it cannot read
        raise GrammarUnavailable(f"llguidance cannot read its tokenizer ({exc})") from exc


def grammar(task: str, max_tokens: int) -> str:
    import llguidance

    options = {"whitespace_flexible": False}  # compact JSON: the byte bound holds
    return llguidance.LLMatcher.grammar_from_json_schema(
        json.dumps(local_schema(task, max_tokens)), overrides=options)  # type: ignore[arg-type]


def check_tokenizer(tok: Any, lltok: Any, max_tokens: int) -> dict[str, str]:
    """Each task's grammar, after checking that this tokenizer spells a valid reply and ends
    it with its EOS token. Raises GrammarUnavailable."""
    import llguidance

    out = {}
    for task in TASKS:
        try:
            g = grammar(task, max_tokens)
        except ValueError as exc:
            raise GrammarUnavailable(str(exc)) from exc
        m = llguidance.LLMatcher(lltok, g, log_level=0)
        ids = [*tok.encode(minimal_reply(task), add_special_tokens=False), tok.eos_token_id]
        if m.is_error() or not m.consume_tokens(ids) or not m.is_stopped():
            why = m.get_error() or "the reply's tokens are refused"
            raise GrammarUnavailable(f"its tokenizer cannot spell the {task} reply ({why})")
        out[task] = g
    return out


def _bit(k: int) -> int:
    """Bit k of an int32 word, as the signed value torch stores."""
    return (1 << k) - (1 << 32) if k == 31 else 1 << k


def _unpack(words: Any, vocab: int) -> Any:
    """(batch, ceil(V/32)) int32 bitmask -> (batch, vocab) bool: True = allowed."""
    import torch

    shifts = torch.arange(32, dtype=torch.int32, device=words.device)
    bits = (words.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(words.shape[0], -1)[:, :vocab].bool()


@functools.cache
def executor() -> Any:
    """llguidance's thread pool for batch masks (one per process; 80% of the CPUs, at most 32)."""
    import llguidance

    return llguidance.LLExecutor()


class GrammarProcessor:
    """A transformers LogitsProcessor: row i of the batch decodes under grammars[i]. With
    `overlap` (greedy decoding only) the next step's masks are computed during the forward."""

    def __init__(self, lltok: Any, grammars: list[str], prompt_len: int,
                 overlap: bool = False) -> None:
        import llguidance
        import llguidance.torch
        import torch

        self.matchers = [llguidance.LLMatcher(lltok, g, log_level=0) for g in grammars]
        for m in self.matchers:
            if m.is_error():
                raise GrammarUnavailable(m.get_error())
        self.prompt_len = prompt_len
        self.eos = lltok.eos_token
        self.vocab = lltok.vocab_size
        # pinned where CUDA is present: the host-to-device copy of the masks does not block
        self.words = (llguidance.torch.allocate_token_bitmask(len(grammars), self.vocab)
                      if torch.cuda.is_available() else
                      torch.full((len(grammars), (self.vocab + 31) // 32), -1, dtype=torch.int32))
        self.fed: list[list[int]] = [[] for _ in grammars]  # tokens each matcher consumed
        self.overlap = overlap
        self.pool: Any = None
        self.pending: Any = None  # the worker's future: the next step's masks
        self.host_tokens: Any = None
        self.seconds = 0.0  # time `generate` waited on masks: the grammar's cost to the step
        self.mask_seconds = 0.0  # time spent computing masks, overlapped or not

    def _advance(self, tokens: list[int] | None) -> None:
        """Feed each live row its last token (all rows at once), then write every row's mask."""
        import time

        import llguidance.torch

        t0 = time.perf_counter()
        pool = executor()
        if tokens is not None:
            live = [i for i, m in enumerate(self.matchers) if not m.is_stopped()]
            for i in live:
                self.fed[i].append(tokens[i])
            pairs = [(self.matchers[i], tokens[i]) for i in live]
            ok = llguidance.torch.consume_token_par(pool, pairs) if pairs else []
            if not all(ok):
                bad = next(m for (m, _), good in zip(pairs, ok, strict=True) if not good)
                raise RuntimeError(f"grammar refused a token it allowed ({bad.get_error()})")
        live_rows = []
        for i, m in enumerate(self.matchers):
            if not m.is_stopped():
                live_rows.append((m, i))
            else:  # the reply is closed: end it (then generate pads the row)
                self.words[i].zero_()
                self.words[i, self.eos // 32] = _bit(self.eos % 32)
        if live_rows:
            llguidance.torch.fill_next_token_bitmask_par(pool, live_rows, self.words)
        self.mask_seconds += time.perf_counter() - t0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import time

        import torch

        t0 = time.perf_counter()
        if input_ids.shape[1] <= self.prompt_len:  # the first step: nothing decoded yet
            self._advance(None)
        elif self.pending is not None:  # the worker fed the predicted token during the forward
            self.pending.result()
            self.pending = None
        else:
            self._advance(input_ids[:, -1].tolist())
        words = self.words.to(scores.device, non_blocking=True)  # 1/32 of the mask's bytes
        allowed = _unpack(words, min(self.vocab, scores.shape[1]))
        if scores.shape[1] > allowed.shape[1]:  # the model's padded vocabulary rows
            pad = torch.zeros((scores.shape[0], scores.shape[1] - allowed.shape[1]),
                              dtype=torch.bool, device=scores.device)
            allowed = torch.cat([allowed, pad], dim=1)
        out = scores.masked_fill(~allowed, float("-inf"))
        if self.overlap:
            self._predict(out)
        self.seconds += time.perf_counter() - t0
        return out

    def _predict(self, masked: Any) -> None:
        """Start the worker on the token greedy `generate` picks from `masked` (its argmax)."""
        import torch

        token = masked.argmax(dim=-1).to(torch.int32)
        if token.is_cuda:
            if self.host_tokens is None:
                self.host_tokens = torch.empty(token.shape, dtype=torch.int32, pin_memory=True)
            self.host_tokens.copy_(token, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record()
            host = self.host_tokens
        else:
            ready, host = None, token
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="grammar")

        def work() -> None:
            if ready is not None:
                ready.synchronize()  # the argmax and its copy, not the forward queued after
            self._advance(host.tolist())

        self.pending = self.pool.submit(work)

    def close(self) -> None:
        """Wait for the worker (a step the generation never took) and stop it."""
        if self.pending is not None:
            self.pending.result()
            self.pending = None
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None

    def check(self, generated: Any) -> None:
        """Every token fed to a matcher is the token `generate` emitted in that row."""
        rows = generated.tolist()
        for i, fed in enumerate(self.fed):
            if rows[i][: len(fed)] != fed:
                step = next(k for k, (a, b) in enumerate(zip(rows[i][: len(fed)], fed, strict=True))
                            if a != b)
                raise RuntimeError(f"grammar decoding: row {i} was fed a token that generate "
                                   f"did not emit (step {step})")
