"""`gateau bench`: does a scorer find long dependency? A labelled synthetic set, scored once, judged many ways.

``bench synth`` writes ``DIR/data.jsonl`` + ``DIR/labels.jsonl`` (`gateau.bench.synth`). ``bench run DIR`` scores the
data once per model configuration into ``DIR/runs/<config>/`` with `gateau.pipeline.scorer.run_score` (resumable: a rerun
skips finished samples): the first short window W runs every registered method that needs no user-named model
(gateau, ppl, ifd; car only with ``--reward-model``) and measures CAM's neutral-response profile, every other
window only ``hmg`` and ``hmg-tokens`` (one full pass and one window pass per sample, no segment passes). Then,
from the stored scores alone (`gateau.select.rank.rank_table`), every method and variant is evaluated against the
labels:

- random, length, ppl, ifd (IFD > 1 dropped as Cherry does, or kept), car (when scored);
- hmg under every dataset normalisation (softmax T ∈ {0.1, 1, 10}, minmax-softmax, log-rank, rank, zscore), per
  window W;
- hmg-tokens under its token aggregates (top-k mean gain for k ∈ {1, 3, 5, 10}, LongPPL key-token share / count /
  gain under a few thresholds, sum of positive gains, mean gain), per window W;
- cam under the in-sample options (importance softmax|sum × attention softmax|sum × sink tokens 0|4, and the
  in-sample softmax temperature) and, with the neutral response's profile (measured in the first window's run),
  the calibrated profile (divide | subtract × attention normalisations);
- gateau under every normalisation × α ∈ {0.5, 0.7, 0.8, 0.9} × CAM options (attention softmax|sum × sink 0|4)
  × W, plus the ``paper`` and ``official`` presets, and (log-rank) α ∈ {0.5, ..., 1} × token aggregate × token
  weight {0.5, 1} × attention profile (raw, sink-free, calibrated);
- *extra* (bench-only, flagged ``extra``; not a registered method): HMG as the raw difference PPL_A − PPL_B.

Metrics, with long-dependent samples (`gateau.bench.synth.LONG_DEPENDENT_TYPES`) as positives: AUROC (unrankable samples,
NaN score, rank last) with its Hanley–McNeil standard error, the precision of the top 10/30/50%, and the mean
percentile of each sample type (100 = ranked first, 50 = random). Outputs: ``DIR/results.md``, ``results.json``
and ``results.png``. The evaluation functions are pure (tables + labels in, rows out) and need no model.
"""

from .plot import default_distributions, plot_results
from .report import (RESULTS_JSON, RESULTS_MD, RESULTS_PNG, markdown_table, recommend, settings_text, type_table,
                     write_report)
from .run import (DATA_FILE, DEFAULT_N, DEFAULT_WINDOWS, DEFAULT_WORDS, LABELS_FILE, QUICK_N, QUICK_WINDOWS, QUICK_WORDS,
                  RUNS_DIR, WINDOW_METHODS, BenchConfig, default_methods, parse_windows, plan_runs, run_bench, synth)
from .stats import TOP_FRACTIONS, hanley_mcneil_se, label_arrays, metrics, top_count
from .variants import MAIN_WINDOW, TOP_FRACTION, evaluate, evaluate_tables, has_columns, read_run, sort_rows, with_window

__all__ = ["DATA_FILE", "DEFAULT_N", "DEFAULT_WINDOWS", "DEFAULT_WORDS", "LABELS_FILE", "MAIN_WINDOW", "QUICK_N",
           "QUICK_WINDOWS", "QUICK_WORDS", "RESULTS_JSON", "RESULTS_MD", "RESULTS_PNG", "RUNS_DIR", "TOP_FRACTION",
           "TOP_FRACTIONS", "WINDOW_METHODS", "BenchConfig", "default_distributions", "default_methods", "evaluate",
           "evaluate_tables", "hanley_mcneil_se", "has_columns", "label_arrays", "markdown_table", "metrics",
           "parse_windows", "plan_runs", "plot_results", "read_run", "recommend", "run_bench", "settings_text",
           "sort_rows", "synth", "top_count", "type_table", "with_window", "write_report"]
