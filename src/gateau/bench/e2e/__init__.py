"""`gateau bench e2e`: select → train → evaluate at small scale, every arm and seed, with statistics.

Modules: `pool` (training pool and held-out eval set from HotpotQA, SQuAD and the essays), `tiny` (the --quick
model), `arms` (the arm table), `evaluate` (QA F1/EM, needle, RULER, chat NLL, MT-Bench through gateau.eval),
`stats` (mean ± std, paired and hierarchical bootstrap), `run` (the resumable orchestration), `report`
(results.md/json/png), `extra` (--extra-eval), `sweep` (--sweep), `estimate` (the full form's wall time).
Imports nothing heavy.
"""

from .pool import PoolConfig
from .arms import ARMS, DEFAULT_ARMS
from .run import E2EConfig, gpu_config, quick_config, run_e2e, sized_config

__all__ = ["ARMS", "DEFAULT_ARMS", "E2EConfig", "PoolConfig", "gpu_config", "quick_config", "run_e2e",
           "sized_config"]
