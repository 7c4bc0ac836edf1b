"""Loading the splits (hub, bundled smoke set or stand-in, local folder), the source's hash for
skip-if-done, the content fingerprint and the evaluation-prompt draw. No validation here: the
data stage validates, the audit reports."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, TypedDict

from advisor_repro.config import Data
from advisor_repro.errors import DataError
from advisor_repro.files import canonical_json, hash_tree, sha256_text
from advisor_repro.models import hub as models

SPLITS = ("train", "test")
Record = dict[str, Any]  # one dataset record as read: its fields are the source's


class Provenance(TypedDict, total=False):
    source: str  # data.source, a local folder resolved
    revision: str  # the hub commit, "builtin" or "local"
    planted: list[Record]  # the smoke set's planted-error labels (the data stage writes them)


class SplitHash(TypedDict):
    n: int
    sha256: str


class Fingerprint(TypedDict):
    """data/fingerprint.json, also the manifest's `data`."""

    source: str
    revision: str
    splits: dict[str, SplitHash]


def load_splits(
    data: Data, cache_dir: Path | None = None
) -> tuple[dict[str, list[Record]], Provenance]:
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
    check_source(data)
    folder = Path(data.source).expanduser()
    return _read_folder(folder), {"source": str(folder.resolve()), "revision": "local"}


def check_source(data: Data) -> None:
    """A local source must be an existing folder (checked before any stage folder is touched)."""
    src = data.source
    if not src.startswith(("hf:", "builtin:")) and not Path(src).expanduser().is_dir():
        raise DataError(
            f"data.source '{src}' is not 'hf:<repo>', 'builtin:smoke' or an existing folder",
            "point --set data.source=PATH at a folder with train/test .jsonl or .parquet files",
        )


def ensure_available(data: Data) -> None:
    """The source can be read: a local folder exists, a hub dataset is cached or downloadable.
    A stage calls this from its `check`, so an unreachable dataset refuses before the stage's
    folder is touched (the download, when online, lands in the hub cache, not the run)."""
    check_source(data)
    if data.source.startswith("hf:"):
        from huggingface_hub import constants

        from advisor_repro.models.hub import resolve_hub_dataset

        resolve_hub_dataset(data.source[3:], data.revision, None, offline=constants.HF_HUB_OFFLINE)


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


def fingerprint(splits: dict[str, list[Record]]) -> dict[str, SplitHash]:
    """Content hash per split, over the canonical JSON of the conversations only (of the whole
    record where it has no conversations, so an invalid record is hashed too)."""
    def conversations(r: Any) -> Any:
        return r.get("conversations") if isinstance(r, dict) and "conversations" in r else r

    return {
        split: SplitHash(
            n=len(recs),
            sha256=sha256_text("\n".join(canonical_json(conversations(r)) for r in recs)),
        )
        for split, recs in splits.items()
    }


def eval_draw_indices(n_test: int, n: int, seed: int) -> list[int]:
    """The evaluation prompts' test indices: a `random.Random(seed)` shuffle of 0..n_test-1,
    first n (the paper's evaluate script)."""
    indices = list(range(n_test))
    random.Random(seed).shuffle(indices)
    return indices[:n]


def source_inputs(data: Data) -> dict[str, str]:
    """The source as an outside input: editing a local file (or the generators) makes stale."""
    src = data.source
    if src in ("builtin:smoke", "builtin:standin"):
        from advisor_repro import smokedata
        code = {
            k: v
            for k, v in hash_tree(Path(smokedata.__file__).parent).items()
            if k.endswith((".py", ".toml"))
        }
        return {"generator": sha256_text(canonical_json(code))}
    if src.startswith("hf:"):
        return {"hub": f"{src}@{data.revision}"}
    folder = Path(src).expanduser()
    return {
        "folder": sha256_text(canonical_json(hash_tree(folder))) if folder.is_dir() else "missing"
    }


def source_caches(data: Data) -> dict[str, Path]:
    """The hub cache, for a dataset the hub supplies."""
    return models.hub_caches(data.source[3:]) if data.source.startswith("hf:") else {}
