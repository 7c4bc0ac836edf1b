"""Decoding under the reply's JSON schema: llguidance driving transformers' `generate`.

Why llguidance (pinned 1.9.1): one 3 MB abi3 wheel with no dependencies, works with any
fast (Rust) tokenizer on CPU and CUDA, computes a token mask in tens of microseconds, and is
maintained (it is the grammar engine behind vLLM's and SGLang's `guidance` backend).
xgrammar needs triton on Linux (the CPU tier installs none); outlines pulls a large stack;
lm-format-enforcer and transformers-cfg walk the vocabulary in Python at each step.

`GrammarProcessor` is a LogitsProcessor with one matcher per row of the batch: before each
step it feeds every row's previous token to its matcher, writes the rows' allowed-token bitmask
and sets every other logit to -inf. A row whose matcher has stopped (its reply closed and the
end-of-sequence token allowed) may take only that token: `generate` ends it there and pads
it afterwards. Greedy decoding then
picks the best token the grammar allows, so a reply is the rubric's JSON whatever the model.

`check_tokenizer` refuses, before the first question, a tokenizer that cannot serve the
schema: not a fast tokenizer, no end-of-sequence token, no chat template, or one that cannot
spell a valid reply.
"""

from __future__ import annotations

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


class GrammarProcessor:
    """A transformers LogitsProcessor: row i of the batch decodes under grammars[i]."""

    def __init__(self, lltok: Any, grammars: list[str], prompt_len: int) -> None:
        import llguidance
        import torch

        self.matchers = [llguidance.LLMatcher(lltok, g, log_level=0) for g in grammars]
        for m in self.matchers:
            if m.is_error():
                raise GrammarUnavailable(m.get_error())
        self.prompt_len = prompt_len
        self.eos = lltok.eos_token
        self.vocab = lltok.vocab_size
        self.words = torch.full(((len(grammars)), (self.vocab + 31) // 32), -1,
                                dtype=torch.int32)
        self.seconds = 0.0  # time spent on masks: the grammar's own cost

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import time

        import llguidance.torch
        import torch

        t0 = time.perf_counter()
        last = input_ids[:, -1].tolist() if input_ids.shape[1] > self.prompt_len else None
        self.words.zero_()
        for i, m in enumerate(self.matchers):
            if last is not None and not m.is_stopped() and not m.consume_token(last[i]):
                raise RuntimeError(f"grammar refused a token it allowed ({m.get_error()})")
            if m.is_stopped():  # the reply is closed: end it (then generate pads the row)
                self.words[i, self.eos // 32] = _bit(self.eos % 32)
            else:
                llguidance.torch.fill_next_token_bitmask(m, self.words, i)
        words = self.words.to(scores.device, non_blocking=True)  # 1/32 of the mask's bytes
        allowed = _unpack(words, min(self.vocab, scores.shape[1]))
        if scores.shape[1] > allowed.shape[1]:  # the model's padded vocabulary rows
            pad = torch.zeros((scores.shape[0], scores.shape[1] - allowed.shape[1]),
                              dtype=torch.bool, device=scores.device)
            allowed = torch.cat([allowed, pad], dim=1)
        out = scores.masked_fill(~allowed, float("-inf"))
        self.seconds += time.perf_counter() - t0
        return out
