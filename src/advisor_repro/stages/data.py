"""Stage `data`: load the dataset, validate every record, render the training text, draw the
evaluation prompts.

Pure core: `validate`, `render_training_text`, `draw_eval_prompts`, `fingerprint`.
Thin I/O: `load_splits` (hub, bundled smoke set, or a local folder) and `run`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from advisor_repro.config import Config, Data
from advisor_repro.errors import DataError
from advisor_repro.files import canonical_json, hash_tree, sha256_text, write_json, write_jsonl
from advisor_repro.manifest import update_manifest
from advisor_repro.models import hub as models
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult

SPLITS = ("train", "test")
ROLES = ("human", "assistant")
Record = dict[str, Any]


# ---- pure core --------------------------------------------------------------------------------
def validate(split: str, records: list[Record]) -> None:
    """Stop at the first bad record, naming split, index and problem."""
    for i, rec in enumerate(records):
        problem = record_problem(rec)
        if problem:
            raise DataError(
                f"{split}[{i}]: {problem}",
                "fix or drop that record in the source; every conversation must alternate "
                "human/assistant turns starting with human, with no empty text",
            )


def record_problem(rec: Any) -> str | None:
    if not isinstance(rec, dict) or not isinstance(rec.get("conversations"), list):
        return "record has no 'conversations' list"
    turns = rec["conversations"]
    if len(turns) < 2:
        return f"only {len(turns)} turn(s); a conversation needs a human and an assistant turn"
    for t, turn in enumerate(turns):
        if not isinstance(turn, dict) or set(turn) < {"from", "value"}:
            return f"turn {t} lacks 'from' or 'value'"
        want = ROLES[t % 2]
        if turn["from"] != want:
            return f"turn {t} is from '{turn['from']}', expected '{want}' (roles must alternate)"
        if not isinstance(turn["value"], str) or not turn["value"].strip():
            return f"turn {t} ({turn['from']}) has empty text"
    return None


def render_training_text(rec: Record, data: Data) -> str:
    """The notebooks' format: `Human: {t}\\n\\n` / `Assistant: {t}</s>\\n\\n`, joined, stripped."""
    parts = []
    for turn in rec["conversations"]:
        if turn["from"] == "human":
            parts.append(f"{data.human_prefix}{turn['value']}\n\n")
        else:
            parts.append(f"{data.assistant_prefix}{turn['value']}{data.eos_text}\n\n")
    return "".join(parts).strip()


def draw_eval_prompts(test: list[Record], n: int, seed: int) -> list[Record]:
    """`random.Random(seed)` shuffle of the test indices, first n; first human turn as prompt,
    first assistant turn as reference (the paper's evaluate script)."""
    if n > len(test):
        raise DataError(
            f"data.eval_prompts = {n} but the test split has {len(test)} conversations",
            f"set --set data.eval_prompts={len(test)} or less",
        )
    indices = list(range(len(test)))
    random.Random(seed).shuffle(indices)
    return [
        {
            "sample_id": sample_id,
            "dataset_index": idx,
            "prompt": test[idx]["conversations"][0]["value"],
            "reference": test[idx]["conversations"][1]["value"],
        }
        for sample_id, idx in enumerate(indices[:n])
    ]


def fingerprint(splits: dict[str, list[Record]]) -> dict[str, Any]:
    """Content hash per split, over the canonical JSON of the conversations only."""
    return {
        split: {
            "n": len(recs),
            "sha256": sha256_text("\n".join(canonical_json(r["conversations"]) for r in recs)),
        }
        for split, recs in splits.items()
    }


# ---- I/O ---------------------------------------------------------------------------------------
def load_splits(
    data: Data, cache_dir: Path | None = None
) -> tuple[dict[str, list[Record]], dict[str, Any]]:
    """Returns the splits and provenance (source, resolved revision, planted-error labels)."""
    if data.source == "builtin:smoke":
        from advisor_repro import smokedata
        splits, planted = smokedata.smoke_dataset(
            seed=42,
            n_train=data.smoke_train,
            n_test=data.smoke_test,
            error_rate=data.smoke_error_rate,
        )
        return splits, {"source": data.source, "revision": "builtin", "planted": planted}
    if data.source == "builtin:standin":
        from advisor_repro import smokedata
        splits = smokedata.standin_dataset(seed=0, n_train=data.expected_train or 2274,
                                           n_test=data.expected_test or 402)
        return splits, {"source": data.source, "revision": "builtin"}
    if data.source.startswith("hf:"):
        from huggingface_hub import constants

        from advisor_repro.models.hub import resolve_hub_dataset

        repo = data.source[3:]
        folder, sha = resolve_hub_dataset(repo, data.revision, cache_dir,
                                          offline=constants.HF_HUB_OFFLINE)
        return _read_folder(folder), {"source": data.source, "revision": sha}
    folder = Path(data.source).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"data.source '{data.source}' is not 'hf:<repo>', 'builtin:smoke' "
            "or an existing folder",
            "point --set data.source=PATH at a folder with train/test .jsonl or .parquet files",
        )
    return _read_folder(folder), {"source": str(folder.resolve()), "revision": "local"}


def _split_files(folder: Path, split: str) -> list[Path]:
    """`train.jsonl`, `train.parquet`, `data/train-00000-of-00001.parquet` and the like."""
    found = [
        p
        for p in sorted(folder.rglob(f"{split}*"))
        if p.suffix in (".jsonl", ".parquet") and p.is_file()
    ]
    if not found:
        raise DataError(
            f"no '{split}' split in {folder} (looked for {split}*.jsonl / "
            f"{split}*.parquet, also in subfolders)",
            "put the split there as train.jsonl/test.jsonl or parquet files",
        )
    return found


def _read_folder(folder: Path) -> dict[str, list[Record]]:
    return {
        split: [r for p in _split_files(folder, split) for r in _read_file(p, split)]
        for split in SPLITS
    }


def _read_file(path: Path, split: str) -> list[Record]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(
                        f"{path}:{lineno} ({split}): not valid JSON ({exc.msg})",
                        "repair or remove that line",
                    ) from exc
    return out


def check_sizes(splits: dict[str, list[Record]], data: Data) -> list[str]:
    """The paper's split sizes are a structural fact; a different size is a loud warning."""
    warnings = []
    for split, expected in (("train", data.expected_train), ("test", data.expected_test)):
        if expected and len(splits[split]) != expected:
            warnings.append(
                f"{split} split has {len(splits[split])} conversations, "
                f"the profile expects {expected}"
            )
    return warnings


def run(cfg: Config, ctx: StageContext) -> StageResult:
    splits, provenance = load_splits(cfg.data)
    for split in SPLITS:
        validate(split, splits[split])
    out = ctx.out
    for split in SPLITS:
        write_jsonl(out / f"{split}.jsonl", splits[split])
        write_jsonl(
            out / f"{split}_text.jsonl",
            (
                {"index": i, "text": render_training_text(r, cfg.data)}
                for i, r in enumerate(splits[split])
            ),
        )
    prompts = draw_eval_prompts(splits["test"], cfg.data.eval_prompts, cfg.data.eval_draw_seed)
    write_jsonl(out / "eval_prompts.jsonl", prompts)
    if "planted" in provenance:
        write_jsonl(out / "planted_errors.jsonl", provenance.pop("planted"))
    fp = {**provenance, "splits": fingerprint(splits)}
    write_json(out / "fingerprint.json", fp)
    update_manifest(ctx.run_dir, "data", fp)
    return StageResult(
        figures={
            "train": len(splits["train"]),
            "test": len(splits["test"]),
            "eval_prompts": len(prompts),
            "revision": provenance["revision"],
        },
        warnings=check_sizes(splits, cfg.data),
    )


def external_inputs(cfg: Config) -> dict[str, str]:
    """A local source folder is an input: editing a file there makes this stage stale."""
    src = cfg.data.source
    if src in ("builtin:smoke", "builtin:standin"):
        from advisor_repro import smokedata
        code = {
            k: v
            for k, v in hash_tree(Path(smokedata.__file__).parent).items()
            if k.endswith((".py", ".toml"))
        }
        return {"generator": sha256_text(canonical_json(code))}
    if src.startswith("hf:"):
        return {"hub": f"{src}@{cfg.data.revision}"}
    folder = Path(src).expanduser()
    return {
        "folder": sha256_text(canonical_json(hash_tree(folder))) if folder.is_dir() else "missing"
    }


def check(cfg: Config, ctx: StageContext) -> None:
    """Before data/ is touched: a local source must be an existing folder (the message is
    load_splits' own)."""
    src = cfg.data.source
    if not src.startswith(("hf:", "builtin:")) and not Path(src).expanduser().is_dir():
        raise DataError(
            f"data.source '{src}' is not 'hf:<repo>', 'builtin:smoke' or an existing folder",
            "point --set data.source=PATH at a folder with train/test .jsonl or .parquet files",
        )


def caches(cfg: Config) -> dict[str, Path]:
    """The hub cache, for a dataset the hub supplies."""
    src = cfg.data.source
    return models.hub_caches(src[3:]) if src.startswith("hf:") else {}


def estimate(cfg: Config) -> Estimate:
    remote = cfg.data.source.startswith("hf:")
    return Estimate(seconds=30 if remote else 5, disk_bytes=(60 if remote else 5) * 2**20)


STAGE = Stage(
    name="data",
    summary="load + validate the dataset, render training text, draw the 50 eval prompts",
    run=run,
    config=("data",),
    external=external_inputs,
    estimate=estimate,
    check=check,
    caches=caches,
    prerequisites=lambda cfg: list(models.dataset_unavailable(cfg.data.source,
                                                              cfg.data.revision)),
)
