"""Random-weight stand-ins of the paper's models, for a machine that cannot download them: the
byte-level BPE tokenizer they share, and the local judge's Qwen2.5-14B shape (the 7B base's
Mistral shape is `rehearsal.py`). Each is saved like a hub snapshot, so the code that loads the
real model loads the stand-in unchanged; only the weights are noise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Shape = dict[str, int | float | str | bool]  # a transformers config's architecture fields

QWEN25_14B: Shape = {  # config.json of Qwen/Qwen2.5-14B-Instruct (architecture only)
    "hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 48,
    "num_attention_heads": 40, "num_key_value_heads": 8, "vocab_size": 152064,
    "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
    "hidden_act": "silu", "tie_word_embeddings": False, "use_sliding_window": False,
}
QWEN_TINY: Shape = {  # the same architecture with 2 small layers, for the CPU tests
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 16064,
    "max_position_embeddings": 4096, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
    "hidden_act": "silu", "tie_word_embeddings": False, "use_sliding_window": False,
}
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CHATML_TOKENS = {"specials": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                 "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}


def bpe_tokenizer(texts: list[str], vocab_size: int, template: str, specials: list[str],
                  **roles: str) -> Any:
    """A byte-level BPE learnt from `texts` (at most `vocab_size` ids, `specials` first), with
    the chat `template` and the special tokens' roles (bos_token=..., eos_token=..., ...)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=roles.get("unk_token")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=32768, **roles)
    fast.chat_template = template
    return fast


def judge_standin(out: Path, texts: list[str], shape: Shape = QWEN25_14B,
                  device: str = "cuda", seed: int = 0) -> Path:
    """Random fp16 weights of the Qwen2.5-14B shape (or `shape`) and a ChatML tokenizer learnt
    from `texts`, saved to `out` once (standin.json marks it complete)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    if (out / "standin.json").is_file():
        return out
    tok = bpe_tokenizer(texts, 16000, CHATML, **CHATML_TOKENS)
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
