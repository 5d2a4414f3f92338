"""A labelled synthetic long-context SFT set built from real essays (see `gateau.bench.synth.build`)."""

from .build import (BASIC_TYPES, LONG_DEPENDENT_TYPES, MIN_WORDS, SAMPLE_TYPES, SynthLabel, SynthSample,
                    build_samples, build_synthetic_set, read_labels, write_synthetic_set)
from .essays import essay_dir, essay_paragraphs, split_sentences, word_depth

__all__ = ["BASIC_TYPES", "LONG_DEPENDENT_TYPES", "MIN_WORDS", "SAMPLE_TYPES", "SynthLabel", "SynthSample",
           "build_samples", "build_synthetic_set", "essay_dir", "essay_paragraphs", "read_labels", "split_sentences",
           "word_depth", "write_synthetic_set"]
