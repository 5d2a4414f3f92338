"""The judge client against a real OpenAI-compatible HTTP server on 127.0.0.1, with the real openai client."""

from __future__ import annotations

import json

import pytest
from eval_fixtures import chat_server_fixture, read_csv  # noqa: F401 (fixture)

from gateau.cli import main
from gateau.eval.judge import JudgeCache, JudgeRequest, OpenAIJudge, parse_rating
from gateau.eval.judge_prompts import LONGBENCH_QA
from gateau.eval.results import EvalError


def make_judge(server, tmp_path=None, **kw):
    cache = JudgeCache(tmp_path / "cache.jsonl" if tmp_path else None)
    return OpenAIJudge(name="t", url=server.url, model="judge-1", cache=cache, progress=False,
                       sleep=lambda s: None, **kw)


def test_parse_rating():
    assert parse_rating("Rating: [[7]]", 1, 10) == 7
    assert parse_rating("[2]", 1, 3) == 2
    assert parse_rating("Explanation [1] ... Rating: [[8.5]]", 1, 10) == 8.5  # [[x]] first, as FastChat
    assert parse_rating("[7]", 1, 3) is None  # outside the scale
    assert parse_rating("no rating here", 1, 10) is None
    assert parse_rating(None, 1, 10) is None


def test_prompt_sent_and_ratings_parsed(chat_server):
    chat_server.replies = ["Fine answer. Rating: [[7]]", "Rating: [[7]]", "[2]", "[2]"]
    judge = make_judge(chat_server)
    prompt = LONGBENCH_QA.format(question="Q?", reference="R", response="A")
    verdicts = judge.judge([JudgeRequest.user("rate this", system="You judge."),
                            JudgeRequest.user(prompt, low=1, high=3)])
    assert [v.rating for v in verdicts] == [7, 2]
    first = chat_server.requests[0]
    assert first["model"] == "judge-1" and first["temperature"] == 0
    assert first["messages"] == [{"role": "system", "content": "You judge."}, {"role": "user", "content": "rate this"}]
    assert chat_server.requests[2]["messages"][-1]["content"] == prompt
    assert "Assistant’s answer: A\nRating:" in prompt
    assert len(chat_server.requests) == 4  # each answer judged twice
    assert judge.usage.calls == 4 and judge.usage.prompt_tokens > 0 and judge.usage.completion_tokens > 0


def test_two_judgments_are_averaged_and_malformed_is_recorded(chat_server):
    chat_server.replies = ["[[4]]", "[[8]]", "I liked it.", "[[9]]"]
    verdicts = make_judge(chat_server).judge([JudgeRequest.user("a"), JudgeRequest.user("b")])
    assert verdicts[0].rating == 6 and verdicts[0].ratings == [4, 8]
    assert verdicts[1].rating == 9 and verdicts[1].ratings == [None, 9] and verdicts[1].malformed == 1
    assert verdicts[1].replies[0] == "I liked it."
    chat_server.replies = ["nothing", "still nothing"]
    only_bad = make_judge(chat_server).judge([JudgeRequest.user("c")])[0]
    assert only_bad.rating is None and only_bad.malformed == 2


def test_a_500_is_answered_by_a_retry(chat_server):
    chat_server.replies = [500, 503, "[[5]]"]
    waits = []
    judge = make_judge(chat_server, times=1)
    judge.sleep = waits.append
    assert judge.judge([JudgeRequest.user("x")])[0].rating == 5
    assert len(chat_server.requests) == 3 and waits == [1.0, 2.0]  # exponential backoff


def test_retries_run_out_and_auth_errors_stop(chat_server):
    chat_server.replies = [500, 500, 500]
    with pytest.raises(EvalError, match="failed 3 times"):
        make_judge(chat_server, times=1, retries=2).judge([JudgeRequest.user("x")])
    chat_server.replies = [401]
    with pytest.raises(EvalError, match="refused model 'judge-1'"):
        make_judge(chat_server, times=1).judge([JudgeRequest.user("x")])


def test_a_refused_request_is_recorded(chat_server):
    chat_server.replies = [400, "[[3]]"]
    verdicts = make_judge(chat_server, times=1).judge([JudgeRequest.user("too long"), JudgeRequest.user("ok")])
    assert verdicts[0].rating is None and verdicts[0].errors[0].startswith("HTTP 400")
    assert verdicts[1].rating == 3


def test_the_cache_makes_a_rerun_free(chat_server, tmp_path):
    chat_server.default = lambda body: "[[6]]"
    requests = [JudgeRequest.user(f"q{i}") for i in range(3)]
    first = make_judge(chat_server, tmp_path)
    assert [v.rating for v in first.judge(requests)] == [6, 6, 6]
    assert len(chat_server.requests) == 6
    again = make_judge(chat_server, tmp_path)
    assert [v.rating for v in again.judge(requests)] == [6, 6, 6]
    assert len(chat_server.requests) == 6 and again.usage.calls == 0 and again.usage.cached == 6
    more = make_judge(chat_server, tmp_path).judge(requests + [JudgeRequest.user("new")])
    assert len(chat_server.requests) == 8 and more[-1].rating == 6


def test_eval_needle_with_the_http_judge(chat_server, tiny_model_dir, tmp_path, capsys):
    chat_server.default = lambda body: "The answer misses the needle. Rating: [[2]]"
    out = tmp_path / "needle"
    assert main(["eval", "needle", str(tiny_model_dir), "--out", str(out), "--lengths", "400", "--depths", "0,100",
                 "--max-new-tokens", "4", "--judge-url", chat_server.url, "--judge-model", "judge-1",
                 "--no-progress"]) == 0
    rows = read_csv(out / "needle.csv")
    assert [float(r["score"]) for r in rows] == [2.0, 2.0]
    sent = chat_server.requests[0]["messages"]
    assert sent[0]["content"] == "You are a helpful assistant."
    assert "[Ground truth]\nThe best thing to do in San Francisco" in sent[1]["content"]
    assert "judge: 4 calls (0 cached)" in capsys.readouterr().out
    summary = json.loads((out / "needle.json").read_text())["summary"]
    assert summary["scorer"].startswith("openai:") and summary["judge_usage"]["calls"] == 4


def test_a_local_hf_judge(tiny_model_dir, tmp_path):
    from gateau.eval.judge import HFJudge, make_judge

    judge = make_judge(str(tiny_model_dir), None, times=2, max_tokens=5, cache_path=tmp_path / "c.jsonl",
                       progress=False, device="cpu")
    assert isinstance(judge, HFJudge) and judge.deterministic
    verdicts = judge.judge([JudgeRequest.user("Rate: [[3]]?"), JudgeRequest.user("Rate this.")])
    assert judge.usage.calls == 2  # greedy: asked once, counted twice
    assert all(len(v.ratings) == 2 and v.replies[0] == v.replies[1] for v in verdicts)
    assert all(v.rating is None or 1 <= v.rating <= 10 for v in verdicts)  # a random model: mostly malformed
    assert judge.usage.prompt_tokens > 0 and judge.usage.completion_tokens == 10
    again = make_judge(str(tiny_model_dir), None, times=2, max_tokens=5, cache_path=tmp_path / "c.jsonl",
                       progress=False, device="cpu")
    assert [v.replies for v in again.judge([JudgeRequest.user("Rate: [[3]]?"), JudgeRequest.user("Rate this.")])] \
        == [v.replies for v in verdicts]
    assert again.usage.calls == 0 and again.usage.cached == 2
    with pytest.raises(EvalError, match="--judge-url needs --judge-model"):
        make_judge(None, "http://127.0.0.1:1/v1")
