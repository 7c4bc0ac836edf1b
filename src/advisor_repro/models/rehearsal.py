"""The rehearsal base: a randomly initialised model of the exact Mistral-7B-Instruct-v0.3 shape.

Nobody can download Mistral-7B here, yet the package promises that the paper replays on one
16 GB GPU. The rehearsal profile runs every GPU stage on this stand-in: same architecture
(32 layers, hidden 4096, 8 KV heads, vocab 32768), same sequence length, same 4-bit NF4 and
LoRA r16 path; only the weights are noise and the tokenizer is a byte-level BPE trained on the
rehearsal corpus (capped at Mistral's 32,768 ids, with Mistral's [INST] chat template).

`repro fetch --profile rehearsal` creates it once (the analogue of downloading the base); it
is saved as fp16 safetensors so the backends load and quantize it exactly like a hub model.
`scale = "tiny"` keeps the same code path with 2 small layers, for CPU tests.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, TypedDict

from advisor_repro.errors import OfflineError
from advisor_repro.files import atomic_folder, read_json, write_json
from advisor_repro.models.standin import bpe_tokenizer

MISTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% endif %}{% endfor %}"
)
TINY = {"hidden_size": 256, "intermediate_size": 896, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64}


def mistral_config(scale: str = "full") -> Any:
    """transformers MistralConfig of Mistral-7B-Instruct-v0.3 (or its tiny test variant)."""
    from transformers import MistralConfig

    raw = json.loads(resources.files("advisor_repro.models").joinpath("mistral_7b_v0_3.json")
                     .read_text(encoding="utf-8"))
    raw.pop("architectures", None)
    if scale == "tiny":
        raw.update(TINY)
    return MistralConfig(**raw)


def train_tokenizer(texts: list[str], vocab_size: int = 32768) -> Any:
    """A byte-level BPE over the corpus, at most `vocab_size` ids, Mistral's special tokens."""
    return bpe_tokenizer(texts, vocab_size, MISTRAL_CHAT_TEMPLATE, ["<unk>", "<s>", "</s>"],
                         bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>")


def corpus(seed: int = 0) -> list[str]:
    """The texts the rehearsal tokenizer learns from: the stand-in dataset's turns."""
    from advisor_repro.smokedata import standin_dataset

    splits = standin_dataset(seed=seed)
    return [t["value"] for recs in splits.values() for r in recs for t in r["conversations"]]


class BaseSource(TypedDict):
    """source.json of the random-weight base: how it was made."""

    kind: str  # "random-init"
    scale: str
    seed: int
    params: int
    dtype: str
    device: str
    tokenizer_vocab: int


def random_base_dir(cache_root: Path, scale: str = "full", create: bool = False) -> Path:
    """Folder of the random-weight base. With create=False a missing one is an OfflineError
    whose fix is `repro fetch --profile rehearsal` (creating 14.5 GB is not done implicitly)."""
    final = Path(cache_root) / "models" / f"mistral-7b-v0.3-shape-random-{scale}"
    if (final / "source.json").is_file():
        return final
    if not create:
        raise OfflineError(f"the rehearsal base ({scale}) is not in {final.parent}",
                           "create it once with: repro fetch --profile rehearsal")
    with atomic_folder(final) as tmp:
        _create(tmp, scale)
    return final


def _create(out: Path, scale: str, seed: int = 1234) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    cfg = mistral_config(scale)
    tok = train_tokenizer(corpus(), vocab_size=cfg.vocab_size)
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out, safe_serialization=True, max_shard_size="5GB")
    tok.save_pretrained(out)
    n = sum(p.numel() for p in model.parameters())
    write_json(out / "source.json", BaseSource(kind="random-init", scale=scale, seed=seed,
                                               params=n, dtype=str(dtype), device=device,
                                               tokenizer_vocab=len(tok)))
    del model
    if device == "cuda":
        torch.cuda.empty_cache()


def describe(folder: Path) -> BaseSource:
    return read_json(Path(folder) / "source.json")


# The MiniLM-shaped encoder for BERTScore and the audits' embeddings in the rehearsal: the real
# all-MiniLM-L6-v2 (91 MB) cannot travel to the GPU machine, a random one of its shape can be
# made there. Named "random:minilm" in a profile.
RANDOM_ENCODER = "random:minilm"
MINILM = {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
          "intermediate_size": 1536, "max_position_embeddings": 512, "vocab_size": 30522}


def random_encoder_dir(cache_root: Path, create: bool = False) -> Path:
    final = Path(cache_root) / "models" / "minilm-l6-shape-random"
    if (final / "source.json").is_file():
        return final
    if not create:
        raise OfflineError(f"the rehearsal encoder is not in {final.parent}",
                           "create it once with: repro fetch --profile rehearsal")
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    with atomic_folder(final) as tmp:
        wp = BertWordPieceTokenizer(lowercase=True)
        wp.train_from_iterator(corpus(), vocab_size=MINILM["vocab_size"], show_progress=False)
        wp.save_model(str(tmp))
        BertTokenizerFast(vocab_file=str(tmp / "vocab.txt"), do_lower_case=True,
                          model_max_length=512).save_pretrained(tmp)
        torch.manual_seed(4321)
        BertModel(BertConfig(**MINILM)).save_pretrained(tmp, safe_serialization=True)
        write_json(tmp / "source.json", {"kind": "random-init", "shape": "all-MiniLM-L6-v2"})
    return final


def resolve_encoder(name: str) -> str | None:
    """The folder for "random:minilm", else None (the caller resolves the name itself)."""
    if name != RANDOM_ENCODER:
        return None
    from advisor_repro.models.cache import cache_root

    return str(random_encoder_dir(cache_root()))
