"""Flags of `gateau bench e2e` (defined in gateau.cli) -> `E2EConfig` -> `run_e2e`."""

from __future__ import annotations

import argparse
from dataclasses import replace

from .pool import PoolConfig
from .run import ARMS, E2EConfig, quick_config, run_e2e


def config_from_args(args: argparse.Namespace) -> E2EConfig:
    config = quick_config(args.out) if args.quick else E2EConfig(out=args.out)
    pool: PoolConfig = config.pool
    if args.n is not None:
        pool = replace(pool, n=args.n)
    if args.n_eval is not None:
        pool = replace(pool, n_eval=args.n_eval)
    changes: dict = {"pool": pool, "device": args.device, "progress": not args.no_progress}
    if args.model:
        changes["model"] = args.model
    if args.seeds:
        changes["seeds"] = tuple(int(s) for s in args.seeds.split(","))
    if args.arms:
        arms = tuple(a.strip() for a in args.arms.split(","))
        unknown = [a for a in arms if a not in ARMS]
        if unknown:
            raise ValueError(f"unknown --arms {unknown}; choose from {', '.join(ARMS)}")
        changes["arms"] = arms
    for name in ("short_count", "max_steps", "epochs", "lr"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.train_last_layers is not None:
        changes["train_last_layers"] = args.train_last_layers or None
    return replace(config, **changes)


def run_from_args(args: argparse.Namespace) -> int:
    run_e2e(config_from_args(args))
    return 0
