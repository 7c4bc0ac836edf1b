"""`train.padding_free`: each micro-batch packed into one row without padding.

TRL's padding-free collator concatenates the micro-batch's sequences into one row, restarts
the position ids at each sequence and masks the label of each sequence's first token (so no
token is trained to predict the next sequence); it sends no attention mask. The loss is the
same sum of the same per-token cross-entropies over the same label count as the padded
micro-batch, provided no token attends across a sequence boundary:
  - flash-attention variants read the boundaries from the restarting position ids;
  - sdpa and eager (the CPU tier: the hf backend without flash-attention) get them from
    transformers' masking_utils, which, when no attention mask is passed, finds packed
    sequences in the position ids (find_packed_sequence_indices) and builds a block-diagonal
    causal mask. So the CPU tier runs the same math by another path, not a refusal
    (tests/training/test_padding_free.py: each sequence's loss and gradient equal to its own
    alone, and an all-ones mask, which hides the boundaries, fails the same test).
  - Unsloth attends through its own kernels: the GPU tier's separation is checked on the GPU.

TRL does not truncate a padding-free dataset without packing (it refuses max_length), so the
trainer passes max_length None and refuses a conversation longer than train.max_seq_length:
the padded run cuts it there, and training on its tail would be different math.

`auto`'s memory model (microbatch.py) is left as it is: it bounds the worst micro-batch, every
sequence at the data's longest, and packing removes no token from that one. The lower peaks
measured with padding-free come from typical micro-batches, which the model does not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from advisor_repro.config import Train
from advisor_repro.errors import ConfigError


def sft_fields(train: Train) -> dict[str, Any]:
    """SFTConfig's padding_free and max_length for this setting, and how the Trainer counts
    the real tokens (steps.jsonl's tokens, the benches' tokens/s): "non_padding" sums the
    attention mask, which the padding-free collator does not send; the Trainer then counts
    the ids that are not the pad token, which misses every real EOS where pad = EOS (12 of 126
    tokens in the CPU test). Packed without pad_to_multiple_of, every id is a real token."""
    exact = train.padding_free and not train.pad_to_multiple_of
    return {"padding_free": train.padding_free,
            "max_length": None if train.padding_free else train.max_seq_length,
            "include_num_input_tokens_seen": "all" if exact else "non_padding"}


def check_lengths(input_ids: Sequence[Sequence[int]], max_seq_length: int) -> None:
    """Refuse conversations that the padded run would truncate (TRL's own tokenization)."""
    over = [len(ids) for ids in input_ids if len(ids) > max_seq_length]
    if over:
        raise ConfigError(
            f"train.padding_free: {len(over)} conversation(s) are longer than "
            f"train.max_seq_length = {max_seq_length} tokens (the longest: {max(over)}); TRL's "
            "padding-free path does not truncate, so they would train on tokens the padded run "
            "cuts off",
            f"--set train.max_seq_length={max(over)} (more memory per micro-batch), or "
            "--set train.padding_free=false (the paper's padded micro-batches)")
