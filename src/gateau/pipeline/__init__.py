"""The scoring engine: a pure `Scorer` (loaded models: batch of samples -> rows) driven by an executor."""
