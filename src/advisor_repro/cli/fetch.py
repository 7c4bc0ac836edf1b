"""`repro fetch`: download what a profile needs from the Hugging Face hub into the local cache,
and record the commit each revision resolved to. Run it once on a machine with internet; the
replay itself can then run with HF_HUB_OFFLINE=1 (e.g. inside the container, with the cache
mounted). Tokens come from huggingface_hub's own login/HF_TOKEN and are never printed.

Examples:
  repro fetch --profile paper
  HF_HOME=/big/disk/hf repro fetch --profile paper
"""

from __future__ import annotations

import argparse

from advisor_repro.cli.common import add_run_options, say, select
from advisor_repro.config import Config
from advisor_repro.files import write_json
from advisor_repro.models.cache import cache_root
from advisor_repro.models.hub import (
    is_hub_id,
    resolve_hub_dataset,
    resolve_hub_model,
    smoke_model_dir,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fetch", help="download the profile's models and dataset into the cache",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_options(p)
    p.set_defaults(func=main)


def hub_needs(cfg: Config) -> list[tuple[str, str, str]]:
    """(kind, repo id, revision) of every hub artefact the profile's stages load."""
    needs = []
    if cfg.data.source.startswith("hf:"):
        needs.append(("dataset", cfg.data.source[3:], cfg.data.revision))
    if cfg.model.source == "hub":
        needs.append(("model", cfg.model.train_base, cfg.model.train_base_revision))
        needs.append(("model", cfg.model.eval_base, cfg.model.eval_base_revision))
    # the metrics' BERTScore model, the audits' sentence encoder, a local judge
    if is_hub_id(cfg.metrics.bertscore_model):
        needs.append(("model", cfg.metrics.bertscore_model, "main"))
    if is_hub_id(cfg.audit.embedding_model):
        needs.append(("model", cfg.audit.embedding_model, "main"))
    if cfg.judge.backend == "local" and is_hub_id(cfg.judge.local_model):
        needs.append(("model", cfg.judge.local_model, cfg.judge.local_revision))
    return needs


def main(args: argparse.Namespace) -> int:
    sel = select(args)
    resolved = {}
    if sel.cfg.model.source == "smoke":
        say(f"smoke model: {smoke_model_dir(cache_root())}")
    if sel.cfg.model.source == "random":
        from advisor_repro.models.rehearsal import random_base_dir, random_encoder_dir

        say(f"creating the random-weight base ({sel.cfg.model.random_scale}) ...")
        folder = random_base_dir(cache_root(), sel.cfg.model.random_scale, create=True)
        say(f"rehearsal base: {folder}")
        say(f"rehearsal encoder: {random_encoder_dir(cache_root(), create=True)}")
    for kind, repo, rev in hub_needs(sel.cfg):
        resolve = resolve_hub_dataset if kind == "dataset" else resolve_hub_model
        folder, commit = resolve(repo, rev, None, offline=False)
        resolved[f"{kind}:{repo}"] = {"revision": rev, "commit": commit, "folder": str(folder)}
        say(f"{kind} {repo}@{rev} -> {commit}  ({folder})")
    sel.run_dir.mkdir(parents=True, exist_ok=True)
    write_json(sel.run_dir / "fetch.json", resolved)
    if resolved:
        say("pin these commits in the profile (e.g. --set data.revision=<commit>) to make the "
            "replay independent of later pushes to the hub")
    return 0
