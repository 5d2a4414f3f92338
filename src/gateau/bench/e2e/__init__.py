"""`gateau bench e2e`: select → train → evaluate at small scale, every arm and seed, with statistics.

Modules: `pool` (training pool and held-out eval set from HotpotQA, SQuAD and the essays), `tiny` (the --quick
model), `evaluate` (QA F1/EM and the needle through gateau.eval), `stats` (mean ± std, paired bootstrap), `run`
(the resumable orchestration), `report` (results.md/json/png). Imports nothing heavy.
"""

from .pool import PoolConfig
from .run import ARMS, E2EConfig, quick_config, run_e2e

__all__ = ["ARMS", "E2EConfig", "PoolConfig", "quick_config", "run_e2e"]
