"""Scenario 7: the judge API misbehaves (429, 500, a timeout, a body that is not JSON, a
truncated JSON body): `repro judge` retries with backoff and finishes; when the retries run
out it stops with exit 10 and a clear error, the verdicts already paid for stay in the cache,
and the rerun asks only for the rest. The API is a loopback double (tests/judges/conftest.py);
`repro` runs as a subprocess with the fake ANTHROPIC_API_KEY of conftest.SECRETS, so these runs
also feed the secrets scenario: the key is sent, and found in no file and no log.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from advisor_repro.files import read_json, read_jsonl

from .conftest import (
    PROFILE,
    SECRETS,
    assert_no_secrets,
    judge_api_double,
    judge_sets,
    run_repro,
    states,
)

pytestmark = pytest.mark.slow
KEY = SECRETS["ANTHROPIC_API_KEY"]


class TimedAPI(judge_api_double()):
    """The loopback double, also noting when each request arrived."""

    def handle(self, h):
        self.times = [*getattr(self, "times", []), time.monotonic()]
        super().handle(h)


@pytest.fixture
def api():
    server = TimedAPI()
    yield server
    server.close()


def judge_args(api, run: Path) -> tuple[str, ...]:
    sets = (*judge_sets(api.url), "judge.concurrency=1")  # the faults are scripted in order
    return ("judge", *PROFILE, *[a for s in sets for a in ("--set", s)], "--run-dir", str(run))


def paid_replies(run: Path) -> dict[str, int]:
    """This backend's cached replies (the copy also keeps the local judge's), name -> mtime."""
    return {p.name: p.stat().st_mtime_ns for p in (run / "judge/cache").glob("*.json")
            if read_json(p)["judge"]["backend"] == "anthropic"}


def test_transient_faults_are_retried_with_backoff(api, run_copy, tmp_path):
    log = tmp_path / "repro.log"
    api.script = [
        ("status", 429, '{"error": "rate limited"}'),  # question 0: 429, then an answer
        ("rule",),
        ("status", 500),  # question 1: 500, a reply slower than the timeout, an answer
        ("sleep", 2.0),
        ("rule",),
        ("body", b"<html>502 Bad Gateway</html>"),  # question 2: not JSON, truncated JSON
        ("body", b'{"type": "message", "content": [{"type": "text", "te'),
        ("rule",),
    ]
    assert run_repro(log, *judge_args(api, run_copy)) == 0
    assert len(api.requests) == 2 + 3 + 3 + 1  # question 3 answered at once
    verdicts = read_jsonl(run_copy / "judge/verdicts.jsonl")
    assert [v["sample_id"] for v in verdicts] == [0, 1, 2, 3]
    assert {v["status"] for v in verdicts} == {"ok"}
    assert read_json(run_copy / "judge/summary.json")["calls"] == {"paid": 4, "cached": 0}
    assert len(paid_replies(run_copy)) == 4
    t = api.times
    assert t[1] - t[0] >= 0.2  # the first backoff after the 429
    assert t[3] - t[2] >= 0.2 and t[4] - t[3] >= 1.0 + 0.4  # timeout, then a doubled wait
    assert api.requests[0]["headers"]["x-api-key"] == KEY  # the key was sent ...
    assert_no_secrets(run_copy, log)  # ... and written nowhere


def test_retries_run_out_then_the_rerun_pays_only_for_the_rest(api, run_copy, tmp_path):
    log = tmp_path / "repro.log"
    echo = f'{{"error": "overloaded (key {KEY})"}}'  # a server that echoes the key
    api.script = [("rule",), ("rule",), *[("status", 503, echo)] * 3]
    assert run_repro(log, *judge_args(api, run_copy)) == 10
    text = log.read_text()
    assert f"error: {api.url}/v1/messages: HTTP 503 on each of 3 tries" in text
    assert "fix: rerun later: verdicts already received are cached" in text
    assert states(run_copy)["judge"] == "failed" and not (run_copy / "judge/done.json").exists()
    paid = paid_replies(run_copy)
    assert len(paid) == 2
    asked = len(api.requests)
    assert run_repro(log, *judge_args(api, run_copy)) == 0
    assert len(api.requests) == asked + 2  # questions 2 and 3 only
    assert read_json(run_copy / "judge/summary.json")["calls"] == {"paid": 2, "cached": 2}
    now = paid_replies(run_copy)
    assert len(now) == 4 and {k: now[k] for k in paid} == paid  # kept, not rewritten
    assert_no_secrets(run_copy, log)
