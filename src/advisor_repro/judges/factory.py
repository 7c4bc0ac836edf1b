"""Which judge a Config asks, and whether it can be asked: the backend factory, the checks
made without asking, and how many calls' latency a number of calls takes. (The judge's
settings shared by every backend's identity are in cache.py, beside the identity they join.)"""

from __future__ import annotations

from pathlib import Path

from advisor_repro.config import Config, Judge
from advisor_repro.errors import ReproError
from advisor_repro.judges.cache import Backend, CachedJudge


def make_judge(cfg: Config, cache_dir: Path | None) -> CachedJudge:
    """The Config's backend, wrapped in the cache. Heavy imports stay inside the backends."""
    backend_name = cfg.judge.backend
    backend: Backend
    if backend_name == "anthropic":
        from advisor_repro.judges.anthropic import AnthropicJudge

        backend = AnthropicJudge(cfg.judge)
    elif backend_name == "openai":
        from advisor_repro.judges.openai import OpenAIJudge

        backend = OpenAIJudge(cfg.judge)
    elif backend_name == "local":
        from advisor_repro.judges.local import LocalJudge

        backend = LocalJudge.from_config(cfg)
    else:
        from advisor_repro.judges.replay import ReplayJudge

        backend = ReplayJudge.from_file(cfg.judge.replay_file)
    return CachedJudge(backend, cache_dir)


def check_backend(jc: Judge) -> None:
    """The judge can be asked, found without asking it: the API judges' key is in the variable
    judge.api_key_env names (read and dropped: never kept, never shown), the replay file
    exists and reads. The local judge's model is found when it is loaded."""
    if jc.backend in ("anthropic", "openai"):
        from advisor_repro.judges.http import api_key

        api_key(jc.api_key_env, jc.backend,
                required=jc.backend == "anthropic" or bool(jc.api_key_env))
    elif jc.backend == "replay":
        from advisor_repro.judges.replay import ReplayJudge

        ReplayJudge.from_file(jc.replay_file)


def unavailable(cfg: Config) -> list[ReproError]:
    """Why the judge (of the judge and audit stages) could not be asked, found without asking
    it or writing anything: `check_backend`'s refusal, or the local judge's model not loadable
    (not created, or not in the cache while offline)."""
    from advisor_repro.models import hub

    try:
        check_backend(cfg.judge)
    except ReproError as exc:
        return [exc]
    if cfg.judge.backend != "local":
        return []
    if not cfg.judge.local_model:  # the generation base stands in as the judge
        return list(hub.base_unavailable(cfg.model, "eval"))
    return list(hub.models_unavailable(cfg.judge.local_model))


def waits(jc: Judge, calls: int) -> int:
    """How many calls' latency `calls` judge calls take end to end, for estimates: an API
    judge keeps judge.concurrency of them in flight (a rate limit can stretch this); the
    local and replay judges are counted call by call."""
    if jc.backend in ("anthropic", "openai"):
        return -(-calls // jc.concurrency)
    return calls
