"""Tools around the pipeline: the demo, the synthetic labelled set, the long-dependency benchmark, inspect plots."""
