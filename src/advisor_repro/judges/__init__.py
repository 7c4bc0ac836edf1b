"""LLM judges behind one interface, a crash-safe reply cache, and the ask-parse-retry loop.

A judge backend has an `identity` (backend, model, base URL, revision and every setting that
changes a reply; never a key) and `complete(messages, key, task) -> str`. `key` names the
question in the run ("pair:<sample_id>:<pass>", "answer:train:<index>:<turn>", ...): the
replay backend answers by it, the others ignore it. `task` ("pair", "claim", "answer") names
the reply's schema (schemas.py): the local judge decodes under it, the API judges ask for it
when `judge.structured` is on. A backend that can batch (local) also has
`complete_batch(items, done)`; `ask_all` sends it every question not yet in the cache at once.
The API backends have `concurrency` (judge.concurrency): `ask_all` keeps that many of their
requests in flight (pool.py), a 429 holding all of them (http.RateGate).

Backends: anthropic.py (Messages API), openai.py (any OpenAI-compatible server), local.py
(transformers, NF4 on the GPU), replay.py (verdicts read from a file). `make_judge` picks one
from the Config and wraps it in `CachedJudge`, whose cache folder lives in the stage's own
folder: a rerun or a resumed crash reads a reply already paid for instead of asking again.

The modules: cache.py (the backend interface, `CachedJudge`), asking.py (`ask_all`, `ask`,
`Question`, `Reply`), factory.py (`make_judge`, `check_backend`, `unavailable`, `waits`); the
backends import from those modules, and this package only exports them.
"""

from advisor_repro.judges.asking import TASK_OF, Question, Reply, ask, ask_all
from advisor_repro.judges.cache import (
    Backend,
    CachedJudge,
    MissingReply,
    cache_key,
    settings,
    structured,
)
from advisor_repro.judges.factory import check_backend, make_judge, unavailable, waits

__all__ = ["TASK_OF", "Backend", "CachedJudge", "MissingReply", "Question", "Reply", "ask",
           "ask_all", "cache_key", "check_backend", "make_judge", "settings", "structured",
           "unavailable", "waits"]  # fmt: skip
