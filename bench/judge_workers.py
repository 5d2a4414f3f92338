"""Wall time of an endpoint judge, one request at a time vs a pool of workers, on the tests' local chat server.

    python bench/judge_workers.py --requests 160 --times 2 --latency 0.2 --workers 1,8

The server (``tests/eval_fixtures.FakeChatServer``, real HTTP on 127.0.0.1) answers every request after
``--latency`` seconds with a rating that depends on the request alone. Each worker count judges the same requests
(``--requests`` x ``--times`` calls: 160 x 2 = MT-Bench's 320) into a cache of its own; prints the wall time, the
calls, the most requests the server saw at once, and whether the verdicts and the cache lines (sorted) equal those
of the first worker count.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from eval_fixtures import FakeChatServer  # noqa: E402

from gateau.eval.judge import JudgeCache, JudgeRequest, OpenAIJudge  # noqa: E402


def rating_of(body: dict) -> str:
    """A reply that depends on the request alone."""
    return f"Rating: [[{sum(map(ord, body['messages'][-1]['content'])) % 10 + 1}]]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=160)
    parser.add_argument("--times", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per request at the server")
    parser.add_argument("--workers", default="1,8", help="comma-separated worker counts")
    args = parser.parse_args()
    server = FakeChatServer()
    server.default, server.latency = rating_of, args.latency
    requests = [JudgeRequest.user(f"Question {i}: rate this answer.") for i in range(args.requests)]
    first = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for workers in (int(w) for w in args.workers.split(",")):
                server.max_in_flight = 0
                cache = Path(tmp) / f"cache-{workers}.jsonl"
                judge = OpenAIJudge(name="bench", url=server.url, model="judge", cache=JudgeCache(cache),
                                    progress=False, times=args.times, workers=workers)
                start = time.perf_counter()
                verdicts = [v.as_dict() for v in judge.judge(requests)]
                seconds = time.perf_counter() - start
                result = (verdicts, sorted(cache.read_text().splitlines()))
                first = first or result
                print(f"workers {workers}: {seconds:.2f} s for {judge.usage.calls} calls at {args.latency * 1000:.0f} "
                      f"ms, at most {server.max_in_flight} in flight; verdicts and cache identical to the first: "
                      f"{result == first}", flush=True)
    finally:
        server.close()


if __name__ == "__main__":
    main()
