"""The handoff bundle: the only thing that crosses from segment 1 to segment 2.

A bundle is a standard PEFT adapter folder (adapter_config.json + adapter_model.safetensors),
the tokenizer files, and handoff.json: base model and revision, LoRA config, trainable
parameter count, optimizer steps and epochs done, data fingerprint, last loss, package version,
creation time and the sha256 of every other file. Optimizer, scheduler, trainer and RNG state
are deliberately absent: segment 2 starts a fresh optimizer and LR schedule, as the paper did.

`make_bundle` writes one from segment 1's adapter and summary; `load_verified_bundle` is what
segment 2 calls before it trusts one: every hash, then the expectation built from its own config
(`expected_from_config`), never from the bundle. No torch here: the safetensors header is read
directly, so a check costs milliseconds.
"""

from __future__ import annotations

import fnmatch
import json
import math
import shutil
import struct
import time
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from advisor_repro import __version__
from advisor_repro.config import Config, Lora
from advisor_repro.errors import HandoffError
from advisor_repro.files import atomic_folder, hash_tree, read_json, write_json

HANDOFF_FILE = "handoff.json"
FORMAT = "advisor-repro-handoff/1"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# tokenizer.model: sentencepiece (Mistral); vocab.json + merges.txt: byte-level BPE
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "tokenizer.model", "vocab.json",
                   "merges.txt", "special_tokens_map.json", "added_tokens.json",
                   "chat_template.jinja", "chat_template.json")  # fmt: skip
# Crash-resume state of a Trainer checkpoint: never part of the handoff, by design.
TRAINER_STATE = (
    "optimizer.pt",
    "scheduler.pt",
    "scaler.pt",
    "trainer_state.json",
    "rng_state*.pth",
)
# What train-1/summary.json must hold (the contract with the training stage).
SUMMARY_KEYS = ("base_model", "base_revision", "trainable_params", "optimizer_steps",
                "epochs_done", "last_loss", "lora", "data_fingerprint")  # fmt: skip
LORA_FIELDS = ("r", "alpha", "dropout", "bias", "target_modules")  # = config.Lora's names
PEFT_NAMES = {"alpha": "lora_alpha", "dropout": "lora_dropout"}  # adapter_config.json's names
LORA_WORDS = {"r": "rank", "target_modules": "target modules"}  # in messages; else the key
NOTE = (
    "adapter only: no optimizer, scheduler, trainer or RNG state; segment 2 starts a fresh "
    "optimizer and LR schedule (warmup again), as the paper did"
)

RERUN_FIX = (
    "rerun `repro handoff` (and `repro train --segment 1` first if train-1/adapter is damaged)"
)
MATCH_FIX = (
    "use the profile the bundle was made with (see its handoff.json), or rerun "
    "`repro train --segment 1` and `repro handoff` with this profile"
)
STATE_FIX = (
    "the handoff is adapter-only by design: save the adapter with model.save_pretrained "
    "(not a Trainer checkpoint folder), then rerun `repro handoff`"
)


# ---- records ------------------------------------------------------------------------------------
class LoraSettings(TypedDict):
    """LoRA settings in the bundle's spelling (`normal_lora`); None where a source lacks one."""

    r: int | None
    alpha: float | None
    dropout: float | None
    bias: str | None
    target_modules: list[str] | None


class Expected(TypedDict):
    """What this run expects of a bundle (`expected_from_config`; handoff/expected.json)."""

    base_model: str
    base_revision: str | None
    lora: LoraSettings
    trainable_params: int | None  # None: not checked
    data_fingerprint: str | None  # None: not checked


class SegmentFacts(TypedDict):
    """The keys of train-1/summary.json the bundle is made from (SUMMARY_KEYS)."""

    base_model: str
    base_revision: str
    trainable_params: int
    optimizer_steps: int
    epochs_done: float
    last_loss: float | None
    lora: LoraSettings
    data_fingerprint: str


class Handoff(TypedDict):
    """handoff.json, the bundle's own record."""

    format: str
    base_model: str
    base_revision: str
    lora: LoraSettings
    trainable_params: int
    optimizer_steps: int
    epochs_done: float
    last_loss: float | None
    data_fingerprint: str
    package_version: str
    created: str
    files: dict[str, str]  # path in the bundle -> sha256
    left_out: list[str]
    note: str


class Check(TypedDict):
    """One check of a bundle, in verified.json's `checks`; a failed one carries `fix`."""

    name: str
    ok: bool
    detail: str
    fix: NotRequired[str]


# ---- pure core ----------------------------------------------------------------------------------
def lora_from_config(lora: Lora) -> LoraSettings:
    """The profile's LoRA settings in the bundle's shape."""
    return normal_lora({k: getattr(lora, k) for k in LORA_FIELDS})


def lora_from_adapter_config(adapter_config: dict[str, Any]) -> LoraSettings:
    """PEFT's adapter_config.json (lora_alpha, lora_dropout, ...) in the bundle's shape."""
    return normal_lora({k: adapter_config.get(PEFT_NAMES.get(k, k)) for k in LORA_FIELDS})


def normal_lora(lora: LoraSettings) -> LoraSettings:
    """One spelling for comparison and for handoff.json: numbers as numbers, targets sorted."""
    targets = lora.get("target_modules")
    if isinstance(targets, str):  # PEFT also accepts one regex string
        targets = [targets]
    return {
        "r": lora.get("r"),
        "alpha": lora.get("alpha"),
        "dropout": float(lora["dropout"]) if lora.get("dropout") is not None else None,
        "bias": lora.get("bias"),
        "target_modules": sorted(targets) if targets is not None else None,
    }


def lora_mismatch(have: LoraSettings, want: LoraSettings) -> tuple[str, Any, Any] | None:
    """The first LoRA field that differs: (field, bundle's value, expected value); target
    modules compare as a set, numbers by value (16 == 16.0)."""
    for key in LORA_FIELDS:
        a, b = have.get(key), want.get(key)
        same = set(a or ()) == set(b or ()) if key == "target_modules" else a == b
        if not same:
            return key, a, b
    return None


def expected_from_config(
    cfg: Config, base_model_id: str, base_revision: str | None, data_fingerprint: str | None = None
) -> Expected:
    """What this run expects of a bundle, from its own config: base model (+ revision when
    given), LoRA settings, trainable count (None when train.lora.expected_trainable is 0) and,
    optionally, the sha256 of its data/train_text.jsonl."""
    return {
        "base_model": base_model_id,
        "base_revision": base_revision or None,
        "lora": lora_from_config(cfg.train.lora),
        "trainable_params": cfg.train.lora.expected_trainable or None,
        "data_fingerprint": data_fingerprint,
    }


def trainer_state_files(names: list[str]) -> list[str]:
    """The paths among `names` that are crash-resume state (optimizer, scheduler, RNG...)."""
    return [
        n for n in names if any(fnmatch.fnmatch(n.rsplit("/", 1)[-1], p) for p in TRAINER_STATE)
    ]


def bundle_files(names: list[str]) -> tuple[list[str], list[str]]:
    """Split an adapter folder's files into (copied into the bundle, left out)."""
    keep = set(ADAPTER_FILES) | set(TOKENIZER_FILES)
    return sorted(n for n in names if n in keep), sorted(n for n in names if n not in keep)


def _word(key: str) -> str:
    return LORA_WORDS.get(key, key)


def describe(value: Any) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value)


# ---- reading an adapter folder ------------------------------------------------------------------
def safetensors_param_count(path: Path) -> int:
    """Number of parameters stored in a .safetensors file, from its header alone."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        (size,) = struct.unpack("<Q", head) if len(head) == 8 else (-1,)
        if not 0 < size <= min(path.stat().st_size - 8, 100 * 2**20):
            raise ValueError(f"{path.name} has no valid safetensors header")
        header = json.loads(fh.read(size))
    return sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")


def _adapter_facts(folder: Path) -> tuple[LoraSettings, int]:
    """(LoRA settings from adapter_config.json, parameters in adapter_model.safetensors)."""
    try:
        lora = lora_from_adapter_config(read_json(folder / "adapter_config.json"))
        count = safetensors_param_count(folder / "adapter_model.safetensors")
    except (OSError, ValueError, KeyError) as exc:
        raise HandoffError(
            f"the adapter in {folder} cannot be read ({type(exc).__name__}: {exc})", RERUN_FIX
        ) from exc
    return lora, count


def _check_adapter_folder(folder: Path, names: list[str]) -> None:
    state = trainer_state_files(names)
    if state:
        raise HandoffError(
            f"{folder} holds optimizer/trainer state ({', '.join(state)}); "
            "a handoff bundle is never made from it",
            STATE_FIX,
        )
    if "adapter_model.bin" in names and "adapter_model.safetensors" not in names:
        raise HandoffError(
            f"{folder} holds adapter_model.bin (a pickle); the bundle takes safetensors only",
            "save the adapter with save_pretrained(..., safe_serialization=True)",
        )
    missing = [n for n in (*ADAPTER_FILES, "tokenizer_config.json") if n not in names]
    if missing:
        raise HandoffError(
            f"{folder} lacks {', '.join(missing)}: not a PEFT adapter folder with its tokenizer",
            "rerun `repro train --segment 1`; it saves the adapter and the tokenizer there",
        )


def _check_summary(summary: SegmentFacts, lora: LoraSettings, count: int) -> None:
    missing = [k for k in SUMMARY_KEYS if k not in summary]
    if missing:
        raise HandoffError(
            f"train-1/summary.json lacks {', '.join(missing)}",
            "rerun `repro train --segment 1` with this version of the package",
        )
    mismatch = lora_mismatch(normal_lora(summary["lora"]), lora)
    if mismatch:
        key, said, has = mismatch
        raise HandoffError(
            f"train-1/summary.json says LoRA {_word(key)} {describe(said)}, "
            f"but adapter_config.json has {describe(has)}",
            "rerun `repro train --segment 1`: summary and adapter come from different runs",
        )
    if summary["trainable_params"] != count:
        raise HandoffError(
            f"train-1/summary.json says {summary['trainable_params']:,} trainable parameters, "
            f"but adapter_model.safetensors holds {count:,}",
            "rerun `repro train --segment 1`: summary and adapter come from different runs",
        )


# ---- making a bundle ----------------------------------------------------------------------------
def make_bundle(
    adapter_dir: Path, summary: SegmentFacts, bundle_dir: Path, created: str | None = None
) -> Handoff:
    """Copy segment 1's adapter + tokenizer into `bundle_dir` with handoff.json; return it.

    Refuses a folder holding optimizer/trainer state, pickle weights or no tokenizer, and a
    summary that disagrees with the adapter. Files of any other kind (PEFT's README.md, a
    training_args.bin) are not copied and are listed under `left_out`. The bundle appears
    whole or not at all: it is assembled beside `bundle_dir` and renamed into place."""
    adapter_dir, bundle_dir = Path(adapter_dir), Path(bundle_dir)
    if not adapter_dir.is_dir():
        raise HandoffError(f"{adapter_dir} is not a folder", "rerun `repro train --segment 1`")
    names = list(hash_tree(adapter_dir))
    _check_adapter_folder(adapter_dir, names)
    lora, count = _adapter_facts(adapter_dir)
    _check_summary(summary, lora, count)
    copied, left_out = bundle_files(names)
    with atomic_folder(bundle_dir) as tmp:
        for name in copied:
            shutil.copyfile(adapter_dir / name, tmp / name)
        handoff: Handoff = {
            "format": FORMAT,
            "base_model": summary["base_model"],
            "base_revision": summary["base_revision"],
            "lora": lora,
            "trainable_params": count,
            "optimizer_steps": summary["optimizer_steps"],
            "epochs_done": summary["epochs_done"],
            "last_loss": summary["last_loss"],
            "data_fingerprint": summary["data_fingerprint"],
            "package_version": __version__,
            "created": created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": hash_tree(tmp),  # the copies, so a bad copy cannot pass
            "left_out": left_out,
            "note": NOTE,
        }
        write_json(tmp / HANDOFF_FILE, handoff)
    return handoff


# ---- verifying a bundle -------------------------------------------------------------------------
def bundle_checks(bundle_dir: Path, expected: Expected) -> tuple[Handoff | None, list[Check]]:
    """Run the checks in order and stop at the first failure.

    Returns (handoff.json, None when it cannot be read; the check records); each record is
    {name, ok, detail} and a failed one (always the last) also carries `fix`. Order:
    handoff.json readable, no trainer state, every file hash, handoff.json agrees with the
    adapter files, then the expectation: base model, base revision, LoRA config, trainable
    count, data fingerprint."""
    checks: list[Check] = []
    handoff: Handoff | None = None
    try:
        handoff = _read_handoff(Path(bundle_dir))
        checks.append(_ok("handoff.json", f"{FORMAT}, {len(handoff['files'])} files listed"))
        for name, step in _STEPS:
            checks.append(_ok(name, step(Path(bundle_dir), handoff, expected)))
    except HandoffError as exc:
        name = _STEPS[len(checks) - 1][0] if checks else "handoff.json"
        checks.append({"name": name, "ok": False, "detail": exc.problem, "fix": exc.fix})
    return handoff, checks


def load_verified_bundle(bundle_dir: Path, expected: Expected) -> Handoff:
    """Segment 2's gate: every check of `bundle_checks` must pass, else HandoffError names the
    one that failed with both values. Returns handoff.json."""
    handoff, checks = bundle_checks(bundle_dir, expected)
    if handoff is None or not checks[-1]["ok"]:
        raise HandoffError(checks[-1]["detail"], checks[-1]["fix"])
    return handoff


def _ok(name: str, detail: str) -> Check:
    return {"name": name, "ok": True, "detail": detail}


def _read_handoff(bundle_dir: Path) -> Handoff:
    path = bundle_dir / HANDOFF_FILE
    try:
        handoff = read_json(path)
    except (OSError, ValueError) as exc:
        raise HandoffError(
            f"{path} is missing or not valid JSON ({type(exc).__name__})", RERUN_FIX
        ) from exc
    keys = [k for k in (*SUMMARY_KEYS, "files") if k not in handoff]
    if keys or handoff.get("format") != FORMAT:
        raise HandoffError(
            f"{path} is not a {FORMAT} record (format {handoff.get('format')!r}"
            + (f", lacks {', '.join(keys)})" if keys else ")"),
            RERUN_FIX,
        )
    return handoff


def _no_trainer_state(bundle_dir: Path, handoff: Handoff, expected: Expected) -> str:
    state = trainer_state_files(list(hash_tree(bundle_dir)))
    if state:
        raise HandoffError(
            f"handoff bundle holds optimizer/trainer state ({', '.join(state)}); "
            "the handoff is adapter-only",
            STATE_FIX,
        )
    return "no optimizer, scheduler, trainer or RNG state"


def _file_hashes(bundle_dir: Path, handoff: Handoff, expected: Expected) -> str:
    have = {k: v for k, v in hash_tree(bundle_dir).items() if k != HANDOFF_FILE}
    want = handoff["files"]
    for name in sorted(want):
        if name not in have:
            raise HandoffError(f"handoff bundle file {name} is missing", RERUN_FIX)
    for name in sorted(want):
        if have[name] != want[name]:
            raise HandoffError(
                f"handoff bundle file {name} has sha256 {have[name][:12]}…, "
                f"handoff.json records {want[name][:12]}… (the file was changed)",
                RERUN_FIX,
            )
    extra = sorted(set(have) - set(want))
    if extra:
        raise HandoffError(
            f"handoff bundle holds files handoff.json does not list: {', '.join(extra)}",
            f"remove them from {bundle_dir}, or {RERUN_FIX}",
        )
    return f"{len(want)} files match their sha256"


def _agrees_with_files(bundle_dir: Path, handoff: Handoff, expected: Expected) -> str:
    lora, count = _adapter_facts(bundle_dir)
    if handoff["trainable_params"] != count:
        raise HandoffError(
            f"handoff.json says {handoff['trainable_params']:,} trainable parameters, "
            f"adapter_model.safetensors holds {count:,} (handoff.json was edited)",
            RERUN_FIX,
        )
    mismatch = lora_mismatch(normal_lora(handoff["lora"]), lora)
    if mismatch:
        key, said, has = mismatch
        raise HandoffError(
            f"handoff.json says LoRA {_word(key)} {describe(said)}, adapter_config.json "
            f"has {describe(has)} (handoff.json was edited)",
            RERUN_FIX,
        )
    return f"LoRA config and {count:,} parameters agree with the adapter files"


def _base_model(bundle_dir: Path, handoff: Handoff, expected: Expected) -> str:
    if handoff["base_model"] != expected["base_model"]:
        raise HandoffError(
            f"handoff bundle base model is {handoff['base_model']}, "
            f"this run expects {expected['base_model']}",
            MATCH_FIX,
        )
    want = expected.get("base_revision")
    if want and handoff["base_revision"] != want:
        raise HandoffError(
            f"handoff bundle base revision is {handoff['base_revision']}, "
            f"this run expects {want} (base {expected['base_model']})",
            MATCH_FIX,
        )
    rev = f"@{handoff['base_revision']}" if want else " (revision not checked)"
    return f"{handoff['base_model']}{rev}"


def _lora_config(bundle_dir: Path, handoff: Handoff, expected: Expected) -> str:
    mismatch = lora_mismatch(normal_lora(handoff["lora"]), expected["lora"])
    if mismatch:
        key, have, want = mismatch
        if key == "target_modules":
            have_s, want_s = set(have or ()), set(want or ())
            raise HandoffError(
                f"handoff bundle LoRA target modules are {describe(sorted(have_s))}, this run "
                f"expects {describe(sorted(want_s))} (missing: "
                f"{describe(sorted(want_s - have_s)) or '-'}; extra: "
                f"{describe(sorted(have_s - want_s)) or '-'})",
                MATCH_FIX,
            )
        raise HandoffError(
            f"handoff bundle LoRA {_word(key)} is {have}, this run expects {want}",
            MATCH_FIX,
        )
    lo = handoff["lora"]
    return f"r {lo['r']}, alpha {lo['alpha']}, dropout {lo['dropout']}, bias {lo['bias']}, " + (
        f"{len(lo['target_modules'])} target modules"
    )


def _trainable(bundle_dir: Path, handoff: Handoff, expected: Expected) -> str:
    want = expected.get("trainable_params")
    if want is None:
        return f"{handoff['trainable_params']:,} (no expected count in this run's config)"
    if handoff["trainable_params"] != want:
        raise HandoffError(
            f"handoff bundle has {handoff['trainable_params']:,} trainable parameters, "
            f"this run expects {want:,}",
            MATCH_FIX,
        )
    return f"{want:,}"


def _data(bundle_dir: Path, handoff: Handoff, expected: Expected) -> str:
    want = expected.get("data_fingerprint")
    if want is None:
        return "not checked (no fingerprint given)"
    if handoff["data_fingerprint"] != want:
        raise HandoffError(
            f"handoff bundle was trained on data {handoff['data_fingerprint'][:12]}…, this "
            f"run's data/train_text.jsonl is {want[:12]}…",
            "rerun `repro train --segment 1` and `repro handoff` on this run's data",
        )
    return f"sha256 {want[:12]}…"


_STEPS = (
    ("no trainer state", _no_trainer_state),
    ("file hashes", _file_hashes),
    ("handoff.json agrees with the adapter", _agrees_with_files),
    ("base model", _base_model),
    ("LoRA config", _lora_config),
    ("trainable parameters", _trainable),
    ("data fingerprint", _data),
)
