"""The API judges asked over judge.concurrency connections, against the loopback double:
how many requests are in flight at once, the order of the results, a 429 (with and without
Retry-After) holding every connection and then retried, a failure keeping every reply already
received, a kill mid-way keeping every reply already received, and the option's refusals."""

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import advisor_repro
from advisor_repro.config import load_config
from advisor_repro.errors import ConfigError, JudgeError
from advisor_repro.files import read_json
from advisor_repro.judges import Question, ask_all, make_judge
from advisor_repro.judges.http import MAX_WAIT_S, _retry_after
from advisor_repro.judges.rubric import pair_messages, parse_pair

from .conftest import FakeAPI

KEY = "sk-test-concurrency-0000"
WRONG = {1, 4, 9, 16}  # questions whose slot B answer the rule scores 0


def questions(n: int) -> list[Question]:
    return [Question(pair_messages(f"Question {i}?", f"Answer {i}.",
                                   f"Answer {i}: WRONG." if i in WRONG else f"Other {i}."),
                     parse_pair, f"pair:{i}:primary") for i in range(n)]


def sets(url: str, backend: str = "anthropic", *extra: str) -> list[str]:
    return [f"judge.backend='{backend}'",
            f"judge.base_url='{url}" + ("/v1'" if backend == "openai" else "'"),
            "judge.api_key_env='ADVISOR_TEST_KEY'", "judge.backoff_s=0.2",
            "judge.max_retries=2", "judge.timeout_s=20.0", *extra]


def judge_for(url, cache, backend="anthropic", *extra):
    return make_judge(load_config("smoke", sets(url, backend, *extra)), cache)


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("ADVISOR_TEST_KEY", KEY)


class CountingAPI(FakeAPI):
    """The double, counting requests in flight. Each request waits (at most `hold_s`) until
    `fill` are in flight together, so a client that keeps 8 open reaches 8 however slowly
    this machine schedules its threads; a client that keeps fewer is only slowed."""

    def __init__(self, fill: int = 8, hold_s: float = 3.0) -> None:
        super().__init__()
        self.fill, self.hold_s = fill, hold_s
        self.cv = threading.Condition()
        self.inflight = self.peak = 0
        self.times: list[float] = []

    def handle(self, h):
        with self.cv:
            self.times.append(time.monotonic())
            self.inflight += 1
            self.peak = max(self.peak, self.inflight)
            self.cv.notify_all()
            self.cv.wait_for(lambda: self.inflight >= self.fill, timeout=self.hold_s)
        super().handle(h)

    def _send(self, h, code, payload, headers=None):
        # answered from here on: counted out before the reply leaves, since the client may
        # send its next request the moment the reply arrives
        with self.cv:
            self.inflight -= 1
        FakeAPI._send(h, code, payload, headers)


@pytest.fixture
def counting():
    servers = []

    def make(**kw):
        servers.append(CountingAPI(**kw))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def expected_domain_b(n: int) -> list[int]:
    return [0 if i in WRONG else 3 for i in range(n)]


@pytest.mark.parametrize("backend", ["anthropic", "openai"])
def test_eight_connections_keep_eight_requests_in_flight(counting, tmp_path, backend):
    api = counting(fill=8)
    judge = judge_for(api.url, tmp_path, backend)  # judge.concurrency: the default, 8
    t0 = time.monotonic()
    replies = ask_all(judge, questions(24), parse_retries=0)
    seconds = time.monotonic() - t0
    assert api.peak == 8 and len(api.requests) == 24
    # results in question order, as one at a time, each cached as its own entry
    assert [r.parsed["domain_b"] for r in replies] == expected_domain_b(24)
    assert [r.status for r in replies] == ["ok"] * 24
    assert judge.calls == 24 and len(list(tmp_path.glob("*.json"))) == 24
    assert judge.asking()["concurrency"] == 8  # what the stages' summaries record
    # three waves of eight, not 24 holds of hold_s: the barrier never had to time out
    assert seconds < 24 * api.hold_s / 2


def test_one_connection_is_one_at_a_time_in_the_same_order(counting, tmp_path):
    api = counting(fill=1)
    replies = ask_all(judge_for(api.url, None, "anthropic", "judge.concurrency=1"),
                      questions(10), parse_retries=0)
    assert api.peak == 1 and len(api.requests) == 10
    asked = [r["body"]["messages"][-1]["content"] for r in api.requests]
    assert [f"Question {i}?" in a for i, a in enumerate(asked)] == [True] * 10
    assert [r.parsed["domain_b"] for r in replies] == expected_domain_b(10)


def test_cached_replies_are_not_asked_again_concurrently(counting, tmp_path):
    api = counting(fill=1, hold_s=0.0)
    ask_all(judge_for(api.url, tmp_path), questions(5), parse_retries=0)
    judge = judge_for(api.url, tmp_path)
    replies = ask_all(judge, questions(12), parse_retries=0)
    assert len(api.requests) == 12 and (judge.calls, judge.hits) == (7, 5)
    assert [r.parsed["domain_b"] for r in replies] == expected_domain_b(12)


class LimitedOnce(CountingAPI):
    """The first request to arrive meets 429 (with `headers`); the others are answered, each
    after 0.1 s, so requests are in flight when the 429 is sent."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__(fill=99, hold_s=0.1)
        self.headers, self.t429 = headers, 0.0

    def handle(self, h):
        with self.lock:
            first, self.t429 = not self.t429, self.t429 or time.monotonic()
        if first:
            h.rfile.read(int(h.headers["content-length"]))
            FakeAPI._send(h, 429, b'{"error": "rate limited"}', self.headers)
            return
        super().handle(h)


@pytest.mark.parametrize("retry_after", ["2", None])
def test_a_429_holds_every_connection_then_is_retried(tmp_path, retry_after):
    api = LimitedOnce({"retry-after": retry_after} if retry_after else {})
    try:
        replies = ask_all(judge_for(api.url, tmp_path), questions(16), parse_retries=0)
    finally:
        api.close()
    assert [r.status for r in replies] == ["ok"] * 16
    assert [r.parsed["domain_b"] for r in replies] == expected_domain_b(16)
    assert len(api.times) == 16  # 15 answered at once, the 429'd question once more
    if retry_after:
        # after the 429, no connection sent anything for the 2 s it asked (those already on
        # the wire may still arrive just after it); then the rest came
        gap = [t - api.t429 for t in api.times if 0.5 < t - api.t429 < 1.9]
        assert gap == [] and sum(t - api.t429 >= 1.9 for t in api.times) >= 1


def test_retry_after_forms():
    def wait(value):
        return _retry_after(httpx.Response(429, headers={"retry-after": value}))

    assert wait("3") == 3.0 and wait("0") == 0.0 and wait("9999") == MAX_WAIT_S
    soon = time.time() + 20
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(soon))
    assert 17.0 <= wait(date) <= 20.5  # an HTTP date: the seconds until then
    assert wait("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: at once
    assert wait("soon") is None  # unreadable: the client's own backoff
    assert _retry_after(httpx.Response(429)) is None


class OneBadQuestion(CountingAPI):
    """Question 3 meets 503 on every try while `broken`; the others are answered."""

    broken = True

    def handle(self, h):
        raw = h.rfile.read(int(h.headers["content-length"]))
        if self.broken and b"Question 3?" in raw:
            FakeAPI._send(h, 503, b'{"error": "overloaded"}')
            return
        h.rfile = io.BytesIO(raw)  # the double reads the body again
        super().handle(h)


def test_a_question_out_of_retries_keeps_every_other_reply(tmp_path):
    api = OneBadQuestion(fill=1, hold_s=0.0)
    try:
        with pytest.raises(JudgeError, match="HTTP 503 on each of 3 tries"):
            ask_all(judge_for(api.url, tmp_path), questions(12), parse_retries=0)
        # every reply received is kept: those beside it in flight and those sent during its
        # 0.2 + 0.4 s of backoff (after the failure, nothing new is sent)
        paid = {read_json(p)["question"] for p in tmp_path.glob("*.json")}
        assert "pair:3:primary" not in paid and len(paid) >= 7
        assert len(api.requests) == len(paid)  # the 503s are not in api.requests
        api.broken = False  # the server heals: the rerun pays only for the rest
        judge = judge_for(api.url, tmp_path)
        replies = ask_all(judge, questions(12), parse_retries=0)
    finally:
        api.close()
    assert len(api.requests) == 12 and (judge.calls, judge.hits) == (12 - len(paid), len(paid))
    assert [r.parsed["domain_b"] for r in replies] == expected_domain_b(12)


# ---- a kill mid-way -----------------------------------------------------------------------
ASKER = """
import sys
from pathlib import Path
from advisor_repro.config import load_config
from advisor_repro.judges import ask_all, make_judge
from judges.test_concurrency import questions, sets
# held requests must stay in flight however slowly this machine reaches the kill
sets_ = sets(sys.argv[1], "anthropic", "judge.timeout_s=300.0")
judge = make_judge(load_config("smoke", sets_), Path(sys.argv[2]))
ask_all(judge, questions(20), parse_retries=0)
"""


class AnswerThenHold(CountingAPI):
    """The first `answered` requests are answered; every later one is held (in flight)."""

    def __init__(self, answered: int) -> None:
        super().__init__(fill=1, hold_s=0.0)
        self.answered, self.release = answered, threading.Event()
        self.arrived = 0

    def handle(self, h):
        with self.lock:
            self.arrived += 1
            hold = self.arrived > self.answered
        if hold:
            self.release.wait(60)
            return
        super().handle(h)


def test_a_kill_mid_way_keeps_every_reply_already_received(tmp_path):
    api = AnswerThenHold(answered=5)
    root = Path(advisor_repro.__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root / "tests")])}
    proc = subprocess.Popen([sys.executable, "-c", ASKER, api.url, str(tmp_path)], env=env,
                            cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        # 5 answered, then 8 held in flight: the asker waits on them when it is killed
        while time.monotonic() < deadline and not (
                api.arrived >= 13 and len(list(tmp_path.glob("*.json"))) >= 5):
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        assert api.arrived == 13, "the asker should keep 8 in flight after 5 replies"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        entries = [read_json(p) for p in tmp_path.glob("*.json")]  # whole: written atomically
        assert len(entries) == 5 and not list(tmp_path.glob(".*.tmp"))
        assert all(parse_pair(e["text"])["domain_a"] == 3 for e in entries)
        api.answered = 10**6  # the same server (the cache keys hold its URL), answering all
        judge = judge_for(api.url, tmp_path)
        replies = ask_all(judge, questions(20), parse_retries=0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stderr.close()
        api.release.set()
        api.close()
    assert (len(api.requests), judge.hits) == (5 + 15, 5)  # only the replies not received
    assert [r.parsed["domain_b"] for r in replies] == expected_domain_b(20)


@pytest.mark.parametrize("value", [0, -2, 65])
def test_concurrency_out_of_range_is_refused(value):
    with pytest.raises(ConfigError, match=rf"judge.concurrency = {value} must be between 1 "
                                          "and 64"):
        load_config("smoke", [f"judge.concurrency={value}"])
