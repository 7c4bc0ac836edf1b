"""The anthropic and openai judges against a loopback server: request shapes, success,
429 then success, 500, bodies and replies that are not JSON, timeouts, refusals, the key."""

import pytest

from advisor_repro.config import load_config
from advisor_repro.errors import JudgeError
from advisor_repro.judges import CachedJudge, ask, make_judge
from advisor_repro.judges.rubric import pair_messages, parse_pair

KEY = "sk-test-0123456789-do-not-leak"
MESSAGES = pair_messages("Question 1?", "A careful answer.", "A WRONG answer.")


def judge_for(api, backend="anthropic", key_env="ADVISOR_TEST_KEY", **extra):
    sets = [f"judge.backend='{backend}'", f"judge.base_url='{api.url}" +
            ("/v1'" if backend == "openai" else "'"), f"judge.api_key_env='{key_env}'",
            "judge.backoff_s=0.01", "judge.max_retries=2", "judge.timeout_s=5.0",
            *[f"judge.{k}={v}" for k, v in extra.items()]]
    return make_judge(load_config("smoke", sets), None)


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("ADVISOR_TEST_KEY", KEY)


@pytest.mark.parametrize("backend", ["anthropic", "openai"])
def test_success_and_request_shape(fake_api, backend):
    judge = judge_for(fake_api, backend)
    reply = ask(judge, MESSAGES, parse_pair, "pair:1:primary", parse_retries=2)
    assert reply.status == "ok" and reply.attempts == 1
    assert reply.parsed["domain_a"] == 3 and reply.parsed["domain_b"] == 0
    assert reply.parsed["preferred_slot"] == "a"
    (req,) = fake_api.requests
    body, headers = req["body"], {k.lower(): v for k, v in req["headers"].items()}
    assert body["model"] == "SmolLM2-135M-Instruct" and body["temperature"] == 0.0
    assert body["max_tokens"] == 200  # the smoke profile's judge.max_tokens
    if backend == "anthropic":
        assert req["path"] == "/v1/messages"
        assert headers["x-api-key"] == KEY and headers["anthropic-version"] == "2023-06-01"
        assert body["system"] == MESSAGES[0]["content"]
        assert [m["role"] for m in body["messages"]] == ["user"]
    else:
        assert req["path"] == "/v1/chat/completions"
        assert headers["authorization"] == f"Bearer {KEY}"
        assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_openai_without_a_key_sends_no_authorization(fake_api):
    judge = judge_for(fake_api, "openai", key_env="")
    assert ask(judge, MESSAGES, parse_pair, "k", 0).status == "ok"
    assert "authorization" not in {k.lower() for k in fake_api.requests[0]["headers"]}


@pytest.mark.parametrize("backend", ["anthropic", "openai"])
def test_429_then_success(fake_api, backend):
    fake_api.script = [("status", 429, '{"error": "rate"}', {"retry-after": "0"})]
    reply = ask(judge_for(fake_api, backend), MESSAGES, parse_pair, "k", 0)
    assert reply.status == "ok" and len(fake_api.requests) == 2


@pytest.mark.parametrize("backend", ["anthropic", "openai"])
def test_500_on_every_try_is_a_judge_error(fake_api, backend):
    fake_api.script = [("status", 500)] * 3
    with pytest.raises(JudgeError, match="HTTP 500 on each of 3 tries") as err:
        ask(judge_for(fake_api, backend), MESSAGES, parse_pair, "k", 0)
    assert err.value.exit_code == 10 and len(fake_api.requests) == 3


def test_500_once_is_retried(fake_api):
    fake_api.script = [("status", 503)]
    assert ask(judge_for(fake_api), MESSAGES, parse_pair, "k", 0).status == "ok"
    assert len(fake_api.requests) == 2


@pytest.mark.parametrize("backend", ["anthropic", "openai"])
def test_http_body_that_is_not_json_is_retried(fake_api, backend):
    fake_api.script = [("body", b"<html>bad gateway</html>")]
    assert ask(judge_for(fake_api, backend), MESSAGES, parse_pair, "k", 0).status == "ok"
    fake_api.script = [("body", b"{truncated")] * 3
    with pytest.raises(JudgeError, match="not JSON"):
        ask(judge_for(fake_api, backend), MESSAGES, parse_pair, "k", 0)


@pytest.mark.parametrize("backend", ["anthropic", "openai"])
def test_reply_that_is_not_the_rubric_json_is_asked_again(fake_api, backend):
    fake_api.script = [("text", "Sure! Response A is better.")]
    reply = ask(judge_for(fake_api, backend), MESSAGES, parse_pair, "k", parse_retries=2)
    assert reply.status == "ok" and reply.attempts == 2
    assert reply.errors and "not valid JSON" in reply.errors[0]
    retry = fake_api.requests[1]["body"]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "Sure! Response A is better."}
    assert "not valid JSON" in retry[-1]["content"]


def test_reply_never_json_ends_unparseable_not_a_crash(fake_api):
    fake_api.script = [("text", "###")] * 3
    reply = ask(judge_for(fake_api), MESSAGES, parse_pair, "k", parse_retries=2)
    assert (reply.status, reply.attempts, reply.parsed, reply.raw) == ("unparseable", 3, None,
                                                                       "###")
    assert len(reply.record()["errors"]) == 3


@pytest.mark.parametrize("backend", ["anthropic", "openai"])
def test_timeout_then_success(fake_api, backend):
    fake_api.script = [("sleep", 1.5)]
    reply = ask(judge_for(fake_api, backend, timeout_s=0.3), MESSAGES, parse_pair, "k", 0)
    assert reply.status == "ok" and len(fake_api.requests) == 2


def test_refusal_is_not_retried_and_the_key_is_scrubbed(fake_api):
    fake_api.script = [("status", 401, f'{{"error": "invalid x-api-key {KEY}"}}')]
    with pytest.raises(JudgeError, match="HTTP 401") as err:
        ask(judge_for(fake_api), MESSAGES, parse_pair, "k", 0)
    assert len(fake_api.requests) == 1
    assert KEY not in str(err.value) and "[key]" in str(err.value)


def test_missing_key_names_the_variable_and_sends_nothing(fake_api, monkeypatch):
    monkeypatch.delenv("ADVISOR_TEST_KEY")
    with pytest.raises(JudgeError, match="ADVISOR_TEST_KEY"):
        ask(judge_for(fake_api), MESSAGES, parse_pair, "k", 0)
    assert fake_api.requests == []


def test_cache_pays_once_and_keys_on_settings_not_on_the_key(fake_api, tmp_path, monkeypatch):
    cached = CachedJudge(judge_for(fake_api).backend, tmp_path)
    first = ask(cached, MESSAGES, parse_pair, "k", 0)
    again = ask(cached, MESSAGES, parse_pair, "k", 0)
    assert (cached.calls, cached.hits, len(fake_api.requests)) == (1, 1, 1)
    assert first.cache_key == again.cache_key
    monkeypatch.setenv("ADVISOR_TEST_KEY", "another-key")  # a new key is not a new question
    assert ask(CachedJudge(judge_for(fake_api).backend, tmp_path), MESSAGES, parse_pair, "k",
               0).cache_key == first.cache_key
    warmer = CachedJudge(judge_for(fake_api, temperature=0.5).backend, tmp_path)
    assert ask(warmer, MESSAGES, parse_pair, "k", 0).cache_key != first.cache_key
    assert len(fake_api.requests) == 2
    assert all(KEY not in p.read_text() for p in tmp_path.iterdir())


# ---- structured output (judge.structured): the reply's schema sent with the request ------------
def test_the_default_is_the_papers_free_text_request(fake_api):
    for backend in ("anthropic", "openai"):
        judge = judge_for(fake_api, backend)
        assert ask(judge, MESSAGES, parse_pair, "k", 0).status == "ok"
        assert "structured" not in judge.identity  # cache keys of free-text replies unchanged
    for r in fake_api.requests:
        assert not {"tools", "tool_choice", "response_format"} & set(r["body"])


def test_openai_structured_output_sends_the_schema_as_response_format(fake_api):
    from advisor_repro.judges.schemas import SCHEMA_VERSION, api_schema

    judge = judge_for(fake_api, "openai", structured="true")
    reply = ask(judge, MESSAGES, parse_pair, "k", 0)
    assert reply.status == "ok" and reply.parsed["domain_b"] == 0 and reply.parsed["domain_a"] == 3
    (req,) = fake_api.requests
    rf = req["body"]["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
    assert rf["json_schema"]["name"] == "pair_reply"
    assert rf["json_schema"]["schema"] == api_schema("pair")
    assert judge.identity["structured"] == SCHEMA_VERSION


def test_anthropic_structured_output_forces_a_tool_with_the_schema(fake_api):
    from advisor_repro.judges.rubric import claim_messages, parse_claim
    from advisor_repro.judges.schemas import api_schema

    judge = judge_for(fake_api, "anthropic", structured="true")
    pair = ask(judge, MESSAGES, parse_pair, "k", 0)
    claim = ask(judge, claim_messages("Q?", "A WRONG answer.", "c", "f", "s"), parse_claim, "c", 0)
    assert pair.status == "ok" and pair.parsed["preferred_slot"] == "a"
    assert claim.status == "ok" and claim.parsed["asserts_claim"] is True
    first, second = (r["body"] for r in fake_api.requests)
    assert first["tools"][0]["input_schema"] == api_schema("pair")
    assert second["tools"][0]["input_schema"] == api_schema("claim")
    assert first["tool_choice"] == {"type": "tool", "name": first["tools"][0]["name"]}
    assert first["system"] and all(m["role"] != "system" for m in first["messages"])


def test_a_structured_reply_without_the_tool_call_still_goes_through_the_parser(fake_api):
    judge = judge_for(fake_api, "anthropic", structured="true")
    fake_api.script = [("text", "I would rather not use the tool.")]
    reply = ask(judge, MESSAGES, parse_pair, "k", parse_retries=1)
    assert reply.status == "ok" and reply.attempts == 2  # the retry gets the tool call
    assert len(fake_api.requests) == 2
