"""``gateau train``: the paper's SFT recipe (TRL `SFTTrainer` + accelerate/DeepSpeed) on a selection.

Modules, one job each: `recipe` (presets, `TrainConfig`), `runtime` (device-dependent choices, optional extras),
`data` (records -> chat messages, short data, the mix), `jsonarray` (streamed JSON arrays), `encode` (token ids and
assistant-only labels, truncation), `prepare` (the tokenised set and its counts), `loss` (per-sequence losses,
sequence weighting), `trainer` (the TRL trainer, outputs, resume), `plot` (loss curve), `launch` (multi-process
start), `cli` (the command). Import `gateau.train.trainer.train` for the Python API; this package imports nothing
heavy.
"""
