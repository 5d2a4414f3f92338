"""`gateau report`: a tiny real run (tiny random llama) with failed samples and hostile text becomes one
self-contained page with every section; the numbers on the page are the run's and the selections'."""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from gateau.cli import main
from gateau.config import SelectConfig
from gateau.methods import method_options
from gateau.select import select
from gateau.store import RunStore
from browser import check_page, find_chromium
from helpers import random_words, write_jsonl
from gateau.report.render import NAV

WORDS = ("the harbour keeps a blue lighthouse and the archive holds every essay while founders talk to users "
         "and write code the secret number is kept by the red boats").split()
HOSTILE_ID = '<img src=x onerror="alert(1)">'
HOSTILE_INSTRUCTION = "What is <b>the</b> number? </pre><script>alert('instruction')</script> & more"
HOSTILE_RESPONSE = "</textarea><script>document.body.innerHTML=''</script> It is 7481."
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "link", "body", "header", "nav", "main", "section", "div",
                "h1", "h2", "h3", "p", "a", "b", "pre", "table", "tr", "th", "td", "img", "span"}


def make_records(n: int = 10) -> list[dict]:
    rng = random.Random(7)
    recs = [{"id": f"r{i:02d}", "context": random_words(rng, WORDS, 30 + 12 * i),
             "instruction": "What is the secret number?", "response": random_words(rng, WORDS, 3 + i)}
            for i in range(n)]
    recs.append({"id": HOSTILE_ID, "context": "<script>alert('context')</script> " * 12,
                 "instruction": HOSTILE_INSTRUCTION, "response": HOSTILE_RESPONSE})
    recs.append({"id": "empty", "context": "a b c", "instruction": "q?", "response": ""})
    recs.append({"id": "nofield", "context": "a b c", "instruction": "q?"})
    return recs


def score(data: Path, out: Path, model_dir: Path, methods: str, window: int) -> Path:
    code = main(["score", str(data), "--out", str(out), "--long-model", str(model_dir), "--methods", methods,
                 "--max-length", "256", "--segment-len", "16", "--short-window", str(window), "--device", "cpu",
                 "--no-progress"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    data = write_jsonl(root / "data.jsonl", make_records())
    return {"data": data, "cam": score(data, root / "cam", tiny_model_dir, "gateau,ifd", 32),
            "hmg": score(data, root / "hmg", tiny_model_dir, "hmg", 16), "root": root}


class Page(HTMLParser):
    """The parts of a report page the tests look at: tags used, sections (text, tables, images) by id."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.sections: dict[str, dict] = {}
        self.current: dict | None = None
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.images: list[dict[str, str]] = []
        self.pre: list[str] = []
        self.in_pre = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        if tag == "section":
            self.current = self.sections[attrs["id"]] = {"text": [], "tables": [], "images": []}
        elif tag == "table" and self.current is not None:
            self.current["tables"].append([])
        elif tag == "tr" and self.current is not None:
            self.row = []
            self.current["tables"][-1].append(self.row)
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "img":
            self.images.append(attrs)
            if self.current is not None:
                self.current["images"].append(attrs)
        elif tag == "pre":
            self.in_pre = True
            self.pre.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "section":
            self.current = None
        elif tag == "pre":
            self.in_pre = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
        if self.current is not None:
            self.current["text"].append(data)
        if self.in_pre:
            self.pre[-1] += data

    def text(self, section: str) -> str:
        return " ".join(self.sections[section]["text"])

    def table_with(self, section: str, header: str) -> list[list[str]]:
        """The first table of ``section`` whose first row holds ``header``."""
        return next(t for t in self.sections[section]["tables"] if t and header in t[0])


def report(tmp_path: Path, *args: str) -> tuple[str, Page]:
    out = tmp_path / "report.html"
    code = main(["report", *args, "--out", str(out)])
    assert code == 0
    text = out.read_text(encoding="utf-8")
    return text, Page(text)


@pytest.fixture(scope="module")
def main_page(runs, tmp_path_factory) -> tuple[str, Page]:
    """gateau at 30% on the CAM run, every ranked sample shown (6 top + 5 bottom of 11), compared with random
    and with hmg on the other run."""
    return report(tmp_path_factory.mktemp("page"), str(runs["cam"]), "--ratio", "0.3", "--top", "6",
                  "--also", "--method random", "--also", f"{runs['hmg']} --method hmg")


def test_every_section_is_present_and_self_contained(main_page):
    text, page = main_page
    assert set(page.sections) == {anchor for anchor, _ in NAV}
    assert page.tags <= ALLOWED_TAGS, page.tags - ALLOWED_TAGS  # no script, no iframe, no object
    for img in page.images:  # every figure is embedded, and is a PNG
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in text and "https://" not in text  # nothing to fetch: opens offline
    # distributions + length figures, one importance-vs-attention plot per shown sample, one rank plot per pair
    assert len(page.sections["distributions"]["images"]) == 1 and len(page.sections["length"]["images"]) == 1
    assert len(page.sections["top"]["images"]) == 6 and len(page.sections["bottom"]["images"]) == 5
    assert len(page.sections["compare"]["images"]) == 2


def test_run_section_shows_settings_versions_and_speed(main_page, runs):
    _, page = main_page
    store = RunStore(runs["cam"])
    (entry,) = store.read_history()
    text = page.text("run")
    assert str(runs["data"]) in text and store.read_config()["config"]["models"]["long_model"] in text
    assert entry["versions"]["transformers"] in text and entry["finished"] in text
    history = page.table_with("run", "tokens/s")
    row = dict(zip(history[0], history[1]))
    assert float(row["tokens/s"]) == pytest.approx(entry["forward_tokens"] / entry["measure_s"], rel=1e-3)
    assert row["model tokens"] == f"{entry['forward_tokens']:,}"
    assert row["statuses"] == "empty_response=1, missing_field=1, ok=11"


def test_failed_samples_show_their_reasons(main_page):
    _, page = main_page
    rows = page.table_with("statuses", "reason")
    by_status = {r[0]: r for r in rows[1:]}
    assert by_status["ok"][1] == "11"
    assert by_status["empty_response"][1:] == ["1", "the response is empty", "empty"]
    assert by_status["missing_field"][1:] == ["1", "missing field 'response' for shape 'explicit'", "nofield"]


def test_user_text_is_escaped(main_page):
    text, page = main_page
    assert "<script" not in text and "onerror=\"" not in text and "<b>the</b>" not in text
    # the text reads back exactly as written in the record
    assert HOSTILE_INSTRUCTION in page.pre and HOSTILE_RESPONSE in page.pre
    assert HOSTILE_ID in page.text("top") + page.text("bottom")  # every ranked sample is shown, this one too


def test_distributions_and_agreement_are_the_selections(main_page, runs):
    _, page = main_page
    sel = select(runs["cam"], SelectConfig(method="gateau", ratio=0.3))
    rows = {r[0]: r for r in page.table_with("distributions", "median selected")[1:]}
    assert set(rows) == {*sel.ranking.components, "score"}
    picked = sel.ranking.score[sel.chosen]
    assert float(rows["score"][1]) == pytest.approx(np.median(picked), rel=1e-3)
    agreement = {r[0]: float(r[1]) for r in page.table_with("agreement", "rho with the score")[1:]}
    assert agreement == pytest.approx(sel.ranking.agreement(), abs=5e-4)
    assert len(agreement) >= 4  # hmp, cas, ppl_short, ppl_long vary on this run


def test_length_section_reports_the_correlation(main_page, runs):
    _, page = main_page
    sel = select(runs["cam"], SelectConfig(method="gateau", ratio=0.3))
    from scipy.stats import spearmanr

    cols = sel.ranking.columns
    lengths = (cols["n_context"] + cols["n_instruction"] + cols["n_response"])[sel.ranking.order]
    rho = spearmanr(sel.ranking.score[sel.ranking.order], lengths).statistic
    assert f"Spearman rho(score, length) {rho:+.3f}" in page.text("length")


def test_top_and_bottom_are_the_ranking_ends(main_page, runs):
    _, page = main_page
    sel = select(runs["cam"], SelectConfig(method="gateau", ratio=0.3))
    ids = [sel.ids[i] for i in sel.ranking.order]
    top_text, bottom_text = page.text("top"), page.text("bottom")
    assert all(f"#{k + 1}  {sid}" in top_text for k, sid in enumerate(ids[:6]))
    assert all(f"#{k + 7}  {sid}" in bottom_text for k, sid in enumerate(ids[6:]))
    assert "empty" not in [sid for sid in ids]  # failed samples are never shown as ranked


def test_comparison_overlap_is_jaccard_of_the_picks(main_page, runs):
    _, page = main_page
    picks = {name: {s.ids[i] for i in s.chosen} for name, s in (
        ("gateau", select(runs["cam"], SelectConfig(method="gateau", ratio=0.3))),
        ("random", select(runs["cam"], SelectConfig(method="random", ratio=0.3))),
        (f"hmg on {runs['hmg']}", select(runs["hmg"], SelectConfig(method="hmg", ratio=0.3))))}
    rows = page.table_with("compare", "Jaccard")
    header = rows[0]
    seen = 0
    for row in rows[1:]:
        r = dict(zip(header, row))
        a, b = picks[r["selection A"]], picks[r["selection B"]]
        assert int(r["both"]) == len(a & b) and int(r["only A"]) == len(a - b) and int(r["only B"]) == len(b - a)
        assert float(r["Jaccard"]) == pytest.approx(len(a & b) / len(a | b), abs=5e-4)
        seen += 1
    assert seen == 3  # every pair of the three selections


def test_run_without_cam_columns_has_no_cam_plots(runs, tmp_path):
    text, page = report(tmp_path, str(runs["hmg"]), "--method", "hmg", "--count", "4", "--top", "2", "--compare",
                        str(runs["cam"]))
    assert not page.sections["top"]["images"] and not page.sections["bottom"]["images"]
    assert "importance-vs-attention" not in text
    rows = {r[0] for r in page.table_with("distributions", "median selected")[1:]}
    assert rows == {"n_context", "n_response", "ppl_short", "ppl_long", "score"}  # hmg's components; no cas
    assert "4 of 13 samples selected" in text
    assert len(page.sections["compare"]["images"]) == 1  # the --compare run, ranked with hmg as well


def test_edited_data_is_flagged_not_shown(runs, tmp_path):
    sel = select(runs["cam"], SelectConfig(method="gateau", count=1))
    best = sel.ids[sel.chosen[0]]
    records = [json.loads(line) for line in runs["data"].read_text().splitlines()]
    for rec in records:
        if rec["id"] == best:
            rec["instruction"] = "EDITED INSTRUCTION"
    edited = write_jsonl(tmp_path / "edited.jsonl", records)
    text, page = report(tmp_path, str(runs["cam"]), "--count", "1", "--top", "1", "--data", str(edited))
    assert "EDITED INSTRUCTION" not in text
    assert f"the record in {edited} was edited after scoring" in page.text("top")


def test_bad_also_values_are_usage_errors(runs, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(runs["cam"]), "--ratio", "0.3", "--out", str(out), "--also", "--method nosuch"]) == 2
    assert "unknown method 'nosuch'" in capsys.readouterr().err
    assert main(["report", str(runs["cam"]), "--ratio", "0.3", "--out", str(out), "--also",
                 "--method hmg --alpha 0.5"]) == 2
    assert "--alpha does not apply to method 'hmg'" in capsys.readouterr().err
    assert main(["report", str(runs["cam"]), "--ratio", "0.3", "--out", str(out), "--also", "--bogus 1"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    assert not out.exists()


def test_options_reach_the_selection(runs, tmp_path):
    _, page = report(tmp_path, str(runs["cam"]), "--count", "3", "--top", "0", "--alpha", "0.5", "--norm", "rank")
    (options,) = [dict(t) for t in page.sections["selection"]["tables"] if ["alpha", "0.5"] in t]
    assert options["alpha"] == "0.5" and options["norm"] == "rank"
    sel = select(runs["cam"], SelectConfig(method="gateau", count=3,
                                           options=method_options("gateau", alpha=0.5, norm="rank")))
    assert "\n".join(sel.summary_lines()) in page.pre
    assert "no best samples to show" in page.text("top")


def test_report_never_imports_torch(runs, tmp_path):
    out = tmp_path / "r.html"
    code = ("import sys\nfrom gateau.cli import main\n"
            f"rc = main(['report', {str(runs['cam'])!r}, '--ratio', '0.3', '--top', '1', '--out', {str(out)!r}])\n"
            "assert rc == 0, rc\nassert 'torch' not in sys.modules, 'report imported torch'\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok") and out.stat().st_size > 10_000


def test_building_the_parser_does_not_import_the_report(tmp_path):
    code = ("import sys\nfrom gateau.cli import build_parser\nbuild_parser()\n"
            "heavy = [m for m in ('matplotlib', 'PIL', 'gateau.report.gather') if m in sys.modules]\n"
            "assert not heavy, heavy\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_inspect_figure_is_the_one_the_report_embeds(runs, tmp_path):
    from gateau.select.rank import table_columns
    from gateau.inspect import inspect_sample, segment_figure

    sel = select(runs["cam"], SelectConfig(method="gateau", ratio=0.3))
    best = int(sel.chosen[0])
    fig = segment_figure(sel.ranking.columns, best, sel.ranking)
    assert len(fig.axes) == 4 and f"rank 1/{len(sel.ranking.order)}" in fig._suptitle.get_text()
    path = inspect_sample(runs["cam"], sel.ids[best], tmp_path / "one.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    cols = table_columns(RunStore(runs["cam"]).read_scores())
    with pytest.raises(ValueError, match="no segment measurements"):
        segment_figure(cols, cols["id"].index("empty"), sel.ranking)


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="no Chromium (Debian: apt-get install chromium)")
def test_page_renders_in_headless_chromium_without_console_errors(main_page, tmp_path):
    broken = tmp_path / "broken.html"  # the check itself must see what goes wrong on a page
    broken.write_text("<html><body><script>console.error('boom')</script><img src='missing.png'></body></html>")
    problems = check_page(broken).problems
    assert any("boom" in p for p in problems) and any("ERR_FILE_NOT_FOUND" in p for p in problems)

    page_file = tmp_path / "report.html"
    page_file.write_text(main_page[0], encoding="utf-8")
    shot = tmp_path / "report.png"
    check = check_page(page_file, shot, width=1280)
    assert check.problems == [] and check.console == []
    assert check.width == 1280 and check.height > 3000  # every section laid out, figures shown at their size
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, check.height)
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 50  # not a blank page
