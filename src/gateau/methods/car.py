"""CaR baseline ("Clustering and Ranking", Ge et al. 2024): reward-model quality + k-means diversity.

Measured (`gateau score --methods car --reward-model M [--embed-model E]`), with no causal-LM pass:
- ``car_reward``: the score of a user-named HF sequence-classification reward model on (user turn = context +
  "\\n\\n" + instruction, response); over-long inputs lose the *start of the context*, never the instruction or the
  response (details in `gateau.measure.aux_models`);
- ``car_embedding``: a sentence-transformers embedding (default: the packaged all-MiniLM-L6-v2) of CaR's text
  ``"Instruction: {instruction} Input: {context} Response: {response}"``, as in the official clustering script;
  the embedder cuts it at its max_seq_length (256 tokens for MiniLM), so for long samples it sees the
  instruction and the beginning of the context.

Selection (cheap, at `gateau select` time, on the ranked samples only, N of them):
1. PCA keeping 95% of the variance (as the official script), then k-means with k = round(sqrt(N/2)) clusters
   (scikit-learn, ``random_state = --seed``, n_init=10);
2. the CaR set = the top ``n2`` samples by reward in every cluster (default 1, the paper's choice) plus the top
   ``n1`` by reward overall (dedup). Default n1 rule, scaled to the requested amount K (``--ratio`` × all samples,
   or ``--count``): n1 is the smallest number of top-reward samples that, together with the cluster picks, gives
   exactly K samples, so n1 is "the bulk" and every cluster is represented. If the cluster picks alone exceed K,
   the K best of them by reward are kept (n1 = 0). ``--car-n1`` fixes n1 instead (the set may then differ from K;
   `select` still keeps exactly K: the best-rewarded of a larger set, or the set plus the next best by reward).

Score design: CaR's choice is a set, not a per-sample number, so the score encodes "in the CaR set first, then
by reward": score = reward + B for members, reward for the rest, with B = (max reward − min reward) + 1. Every
member outranks every non-member and, inside each group, the order is the reward's; a member's true reward is
``score − B`` (and ``car_reward`` is exported with each record). The set depends on K, which `select` passes to
``score`` as ``k``; with no count (e.g. ``--ratio 1``) every sample is "selected" and the order is the
reward's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..data import Sample
from ..errors import UsageError
from ..measure.rows import EMBED, REWARD
from .base import BenchVariant, Measured, MeasureSettings, Method, SampleEncoding, option

if TYPE_CHECKING:
    from ..measure.aux_models import AuxModels

PCA_VARIANCE = 0.95


@dataclass(frozen=True)
class CaROptions:
    seed: int = option(0, "seed of car's PCA + k-means (default 0)")
    car_n1: int | None = option(None, "car: samples taken by reward over the whole set (default: as many as fill "
                                "--ratio/--count together with the per-cluster picks)")
    car_n2: int = option(1, "car: samples taken per k-means cluster, best reward first (default 1, as in the CaR "
                         "paper)")

    def __post_init__(self) -> None:
        if self.car_n2 < 0 or (self.car_n1 is not None and self.car_n1 < 0):
            raise UsageError("--car-n1 and --car-n2 must be non-negative")


def n_clusters(n: int) -> int:
    """k = round(sqrt(N / 2)), at least 1 and at most N (the official script uses int(); the paper writes sqrt)."""
    return max(1, min(n, int(round(np.sqrt(n / 2))))) if n > 0 else 0


def embed_text(sample: Sample) -> str:
    """CaR's clustering text (official script: "Instruction: ... Input: ... Response: ...")."""
    return f"Instruction: {sample.instruction} Input: {sample.context} Response: {sample.response}"


def cluster_labels(embeddings: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means labels (n,) after PCA to 95% variance; deterministic for a seed."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    x = np.asarray(embeddings, dtype=np.float64)
    if k <= 1 or len(x) <= 1:
        return np.zeros(len(x), dtype=np.int64)
    if len(x) > 2 and np.ptp(x, axis=0).max() > 0:
        x = PCA(n_components=PCA_VARIANCE, svd_solver="full", random_state=seed).fit_transform(x)
    return KMeans(n_clusters=k, random_state=seed, n_init=10).fit_predict(x).astype(np.int64)


@dataclass
class CarSelection:
    """Positions (into the arrays given to `car_select`) of the CaR set, best reward first, and its bookkeeping:
    ``k`` clusters, ``n1`` top-overall samples taken, ``n2`` per cluster, ``cluster_picks`` distinct samples from
    the per-cluster step, ``labels`` the cluster of every sample."""

    chosen: np.ndarray
    k: int
    n1: int
    n2: int
    cluster_picks: int
    labels: np.ndarray


def car_select(reward: np.ndarray, embeddings: np.ndarray, count: int | None, n2: int = 1, n1: int | None = None,
               seed: int = 0) -> CarSelection:
    """CaR's set for ``count`` samples (None = all): top ``n2`` per cluster ∪ top ``n1`` overall (n1 None: fill to
    ``count``). Ties in reward break by position."""
    reward = np.asarray(reward, dtype=np.float64)
    n = len(reward)
    order = np.lexsort((np.arange(n), -reward))
    if count is None or count >= n:
        return CarSelection(order, n_clusters(n), n, n2, 0, np.zeros(n, dtype=np.int64))
    k = n_clusters(n)
    labels = cluster_labels(embeddings, k, seed)
    taken: dict[int, int] = {}
    picks: list[int] = []
    for i in order:  # best reward first: the first n2 seen in a cluster are its top n2
        c = int(labels[i])
        if taken.get(c, 0) < n2:
            taken[c] = taken.get(c, 0) + 1
            picks.append(int(i))
    in_set = np.zeros(n, dtype=bool)
    in_set[picks] = True
    if n1 is None:
        if len(picks) >= count:
            in_set[:] = False
            in_set[picks[:count]] = True  # picks are in reward order
            n1_used = 0
        else:
            n1_used = 0
            while in_set.sum() < count:
                in_set[order[n1_used]] = True
                n1_used += 1
    else:
        in_set[order[:n1]] = True
        n1_used = min(n1, n)
    chosen = np.array([i for i in order if in_set[i]], dtype=np.int64)
    return CarSelection(chosen, k, n1_used, n2, len(picks), labels)


class CaR(Method):
    name = "car"
    columns = {"car_reward": pa.float64(), "car_embedding": pa.list_(pa.float32())}
    uses_model = False
    aux_models = (REWARD, EMBED)
    help = "CaR: reward-model score + k-means (k = sqrt(N/2)) on sentence embeddings; top n1 + top n2 per cluster"
    component_columns = ("car_reward",)
    Options = CaROptions

    def measure_samples(self, samples: list[Sample], encodings: list[SampleEncoding], settings: MeasureSettings,
                        models: AuxModels) -> list[Measured]:
        rewards = models.reward.score([(s.context, s.instruction, s.response) for s in samples])
        vectors = models.embedder.embed([embed_text(s) for s in samples])
        out = []
        for (value, error), vec in zip(rewards, vectors):
            if error:
                out.append(Measured(error=error))
            else:
                out.append(Measured({"car_reward": value, "car_embedding": [float(v) for v in vec]}))
        return out

    def score(self, table: dict[str, Any], options: CaROptions, k: int | None = None) -> np.ndarray:
        return _car_score(table, options, k)[0]

    def notes(self, table: dict[str, Any], options: CaROptions, score: np.ndarray, chosen: np.ndarray,
              k: int | None = None) -> list[str]:
        _, sel, n = _car_score(table, options, k)
        if sel is None:
            return ["car: no sample has a reward and an embedding"]
        if len(sel.chosen) == n and sel.cluster_picks == 0:
            return [f"car: the requested amount covers all {n} ranked samples; ordered by reward"]
        k_rule = f"round(sqrt({n}/2))"
        lines = [f"car: k-means on {n} embeddings -> k = {sel.k} clusters ({k_rule}, seed {options.seed}); "
                 f"n2 = {sel.n2} per cluster -> {sel.cluster_picks} samples; n1 = {sel.n1} top by reward overall; "
                 f"CaR set = {len(sel.chosen)} samples"]
        if k is not None and len(sel.chosen) != k:
            how = ("the best-rewarded of them are kept" if len(sel.chosen) > k
                   else "the next best by reward fill the rest")
            lines.append(f"car: the CaR set has {len(sel.chosen)} samples, {k} requested; {how}")
        return lines

    @classmethod
    def bench_variants(cls) -> list[BenchVariant]:
        return [BenchVariant(main=True)]


def _car_score(table: dict[str, Any], options: CaROptions, k: int | None
               ) -> tuple[np.ndarray, CarSelection | None, int]:
    reward = np.asarray(table["car_reward"], dtype=np.float64)
    emb = table["car_embedding"]
    score = np.full(len(reward), np.nan)
    valid = np.flatnonzero(np.isfinite(reward) & np.array([e is not None for e in emb], dtype=bool))
    if len(valid) == 0:
        return score, None, 0
    r = reward[valid]
    sel = car_select(r, np.array([emb[i] for i in valid], dtype=np.float64), k,
                     n2=options.car_n2, n1=options.car_n1, seed=options.seed)
    bonus = float(np.ptp(r)) + 1.0
    s = r.copy()
    s[sel.chosen] += bonus
    score[valid] = s
    return score, sel, len(valid)
