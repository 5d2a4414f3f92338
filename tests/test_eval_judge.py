"""The judge client against a real OpenAI-compatible HTTP server on 127.0.0.1, with the real openai client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from eval_fixtures import chat_server_fixture, read_csv  # noqa: F401 (fixture)

from gateau.cli import main
from gateau.eval.judge import JudgeCache, JudgeRequest, OpenAIJudge, parse_rating
from gateau.eval.judge_prompts import LONGBENCH_QA
from gateau.eval.results import EvalError


def make_judge(server, tmp_path=None, workers=1, **kw):
    """An endpoint judge on ``server``; one worker by default, so scripted ``replies`` arrive in request order."""
    cache = JudgeCache(tmp_path / "cache.jsonl" if tmp_path else None)
    return OpenAIJudge(name="t", url=server.url, model="judge-1", cache=cache, progress=False, workers=workers, **kw)


def gaps(server) -> list[float]:
    """Seconds between consecutive requests the server received."""
    return [b - a for a, b in zip(server.arrivals, server.arrivals[1:])]


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
    judge = make_judge(chat_server, times=1)
    assert judge.judge([JudgeRequest.user("x")])[0].rating == 5
    first, second = gaps(chat_server)
    assert len(chat_server.requests) == 3
    assert 0.37 <= first < second and second >= 0.74  # the client's backoff: 0.5 s, then 1 s, less <= 25% jitter


def test_retry_after_is_waited_on_429_500_408(chat_server):
    chat_server.replies = [(429, {"Retry-After": "2"}), 500, (408, {"Retry-After": "0.1"}), "[[5]]"]
    judge = make_judge(chat_server, times=1)
    verdict = judge.judge([JudgeRequest.user("x")])[0]
    assert verdict.rating == 5 and verdict.errors == [None] and len(chat_server.requests) == 4
    after_429, after_500, after_408 = gaps(chat_server)
    assert after_429 >= 2.0  # Retry-After, where the backoff alone waits 0.375-0.5 s
    assert after_500 >= 0.74  # no header: the backoff's second step (0.75-1 s)
    assert 0.1 <= after_408 < 1.0  # Retry-After, where the backoff's third step waits 1.5-2 s


def test_retries_run_out_and_auth_errors_stop(chat_server):
    chat_server.replies = [500, 500, 500]
    with pytest.raises(EvalError, match="failed 3 times"):
        make_judge(chat_server, times=1, retries=2).judge([JudgeRequest.user("x")])
    chat_server.replies = [408, 409]  # retried like 429/5xx, and a run stopper when they persist
    with pytest.raises(EvalError, match="failed 2 times"):
        make_judge(chat_server, times=1, retries=1).judge([JudgeRequest.user("x")])
    assert len(chat_server.requests) == 5
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


def _rating_of(body) -> str:
    """A reply that depends on the request alone, so any order of calls gives the same verdicts."""
    return f"Rating: [[{sum(map(ord, body['messages'][-1]['content'])) % 10 + 1}]]"


def _requests(n: int) -> list[JudgeRequest]:
    return [JudgeRequest.user(f"question {i} " + "x" * (i % 7)) for i in range(n)]


def test_workers_give_the_same_verdicts_and_cache_as_one_at_a_time(chat_server, tmp_path):
    chat_server.default = _rating_of
    chat_server.latency = 0.02
    requests = _requests(30)
    results = {}
    for workers in (1, 6):
        chat_server.max_in_flight = 0
        judge = make_judge(chat_server, tmp_path / f"w{workers}", workers=workers)
        results[workers] = ([v.as_dict() for v in judge.judge(requests)],
                            sorted((tmp_path / f"w{workers}" / "cache.jsonl").read_text().splitlines()))
        assert judge.usage.calls == 60
        assert chat_server.max_in_flight == workers  # bounded by the pool, and used to the full
    assert results[1] == results[6]
    assert [v["replies"] for v in results[1][0]] == [[_rating_of({"messages": r.messages})] * 2 for r in requests]
    with pytest.raises(EvalError, match="--judge-workers must be at least 1"):
        make_judge(chat_server, workers=0)


_KILLED_RUN = """
import sys
from gateau.eval.judge import JudgeCache, JudgeRequest, OpenAIJudge
requests = [JudgeRequest.user(f"question {i} " + "x" * (i % 7)) for i in range(int(sys.argv[3]))]
OpenAIJudge(name="t", url=sys.argv[1], model="judge-1", cache=JudgeCache(sys.argv[2]), progress=False,
            workers=4, times=1).judge(requests)
"""


def test_a_killed_run_resumes_from_the_cache(chat_server, tmp_path):
    chat_server.default = _rating_of
    chat_server.latency = 0.05
    cache = tmp_path / "cache.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, chat_server.url, str(cache), "200"],
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    deadline = time.time() + 60
    while (not cache.exists() or len(cache.read_text().splitlines()) < 12) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with cache.open("a") as handle:
        handle.write('{"key": "cut short by the kill')  # a line the kill cut
    kept = len(JudgeCache(cache))
    assert 12 <= kept < 200
    sent = len(chat_server.requests)
    resumed = make_judge(chat_server, tmp_path, times=1, workers=4)
    verdicts = resumed.judge(_requests(200))
    assert resumed.usage.cached == kept and resumed.usage.calls == 200 - kept
    assert len(chat_server.requests) - sent == 200 - kept
    assert [v.replies for v in verdicts] == [[_rating_of({"messages": r.messages})] for r in _requests(200)]
    assert len(JudgeCache(cache)) == 200 and all(json.loads(line) for line in cache.read_text().splitlines())


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
