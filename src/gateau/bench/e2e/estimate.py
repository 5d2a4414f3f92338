"""The full form's wall time, estimated from measured per-step and per-evaluation times (seconds, this machine).

Model (stated in the sweep report): a training takes ``train_fixed_s + steps × step_s`` (× `LONGCE_FACTOR` for a
LongCE arm), with (fixed, per step) fitted through the two sweep trainings of one recipe (``no_long``: few steps,
``full``: many); an evaluation takes ``load_s + items × qa_item_s + needle_s + chat_s`` plus ``ruler_s +
mtbench_s`` for the heavy-eval arms (timed on the untrained model); scoring takes, per pool sample,
`SCORE_S_PER_1K_TOKENS` (measured by the first full run: 584 s for 100 samples drawn at 1000–1400
tokens) times the pool's mean drawn length in thousands of tokens. The sweep's evaluations use the shared-prefix
store as the full form does (`shared_prefix`), so their times include its savings; the untrained model's
evaluation, which fills the store, is timed apart and counted once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .arms import ARMS, DATA_FULL, DATA_NONE

if TYPE_CHECKING:
    from .run import E2EConfig

SCORE_S_PER_1K_TOKENS = 5.84 / 1.2
LONGCE_FACTOR = 1.3
"""Assumed cost of a LongCE step over a plain one: one more forward without gradient on the short rows (the window
row of a pool sample is about a fifth of its tokens); not measured by the sweep."""


def measured_timings(rows: list[dict[str, Any]], untrained: dict[str, Any], *, n_eval: int) -> dict[str, float]:
    """Per-part times from sweep rows (``train_seconds``, ``train_steps``, ``seconds``) of one recipe's ``full``
    and ``no_long`` runs and the untrained model's heavy evaluation; empty when the rows do not have both arms."""
    by_arm = {r["arm"]: r for r in rows}
    if not {"full", "no_long"} <= set(by_arm):
        return {}
    full, short = by_arm["full"], by_arm["no_long"]
    steps = full["train_steps"] - short["train_steps"]
    step_s = (full["train_seconds"] - short["train_seconds"]) / steps if steps > 0 else full["train_seconds"]
    fixed = max(0.0, short["train_seconds"] - step_s * short["train_steps"])
    evals = [full["seconds"], short["seconds"]]

    def mean(key: str) -> float:
        return sum(e.get(key, 0.0) for e in evals) / len(evals)

    return {"step_s": round(step_s, 3), "train_fixed_s": round(fixed, 2), "load_s": round(mean("load"), 2),
            "qa_item_s": round(mean("qa") / max(1, n_eval), 3), "needle_s": round(mean("needle"), 2),
            "chat_s": round(mean("chat"), 2), "ruler_s": float(untrained.get("seconds", {}).get("ruler", 0.0)),
            "mtbench_s": float(untrained.get("seconds", {}).get("mtbench", 0.0)),
            "untrained_qa_item_s": round(float(untrained.get("seconds", {}).get("qa", 0.0)) / max(1, n_eval), 3),
            "longce_factor": LONGCE_FACTOR}


def estimate_full_form(config: "E2EConfig", timings: dict[str, float]) -> dict[str, Any]:
    """Seconds of every training, evaluation and the scoring of ``config`` under ``timings`` (see the module)."""
    from .run import arm_seeds, equal_steps

    n = config.pool.n
    n_eval = config.pool.n_eval
    steps_30 = equal_steps(config, round(config.ratio * n))
    train_s = eval_s = 0.0
    trainings = 0
    per_arm = {}
    for name in config.arms:
        arm = ARMS[name]
        n_long = n if arm.data == DATA_FULL else 0 if arm.data == DATA_NONE else round(
            (config.ratio if arm.ratio is None else arm.ratio) * n)
        steps = steps_30 if arm.equal_steps else equal_steps(config, n_long)
        one_train = timings["train_fixed_s"] + steps * timings["step_s"] * (
            timings["longce_factor"] if arm.loss == "longce" else 1.0)
        one_eval = (timings["load_s"] + n_eval * timings["qa_item_s"] + timings["needle_s"] + timings["chat_s"]
                    + ((timings["ruler_s"] + timings["mtbench_s"]) if arm.heavy_eval else 0.0))
        seeds = len(arm_seeds(config, arm))
        per_arm[name] = {"seeds": seeds, "steps": steps, "train_s": round(one_train, 1), "eval_s": round(one_eval, 1)}
        train_s += seeds * one_train
        eval_s += seeds * one_eval
        trainings += seeds
    untrained = (timings["load_s"] + n_eval * timings["untrained_qa_item_s"] + timings["needle_s"]
                 + timings["chat_s"] + timings["ruler_s"] + timings["mtbench_s"])  # it fills the prefix store
    score_s = n * SCORE_S_PER_1K_TOKENS * (config.pool.min_tokens + config.pool.max_tokens) / 2000
    total = train_s + eval_s + untrained + score_s
    return {"total_s": round(total, 1), "train_s": round(train_s, 1), "eval_s": round(eval_s + untrained, 1),
            "score_s": round(score_s, 1), "trainings": trainings, "evaluations": trainings + 1, "per_arm": per_arm,
            "model": "training = fixed + steps × step_s (× LongCE factor); evaluation = load + items × qa_item_s + "
                     "needle + chat (+ RULER + MT-Bench for the heavy arms); scoring = samples × s/sample"}
