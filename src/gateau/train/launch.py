"""``gateau train --num-processes N``: start the same command under ``accelerate launch`` (N processes)."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

LAUNCHED_ENV = "LOCAL_RANK"  # set by accelerate launch / torchrun in every worker


def launched() -> bool:
    """True inside a worker started by a distributed launcher."""
    return LAUNCHED_ENV in os.environ


def namespace_to_argv(parser: argparse.ArgumentParser, args: argparse.Namespace, drop: tuple[str, ...]) -> list[str]:
    """The arguments that re-create ``args`` with ``parser`` (values equal to their default are left out), minus
    the destinations in ``drop``."""
    argv: list[str] = []
    positionals: list[str] = []
    for action in parser._actions:  # argparse keeps its actions here; there is no public accessor
        if action.dest in drop or action.dest == "help" or isinstance(action, argparse._SubParsersAction):
            continue
        value = getattr(args, action.dest, None)
        if not action.option_strings:
            positionals.append(str(value))
            continue
        if value == action.default:
            continue
        flag = action.option_strings[0]
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(action, argparse._StoreTrueAction):
            argv.append(flag)
        else:
            argv += [flag, str(value)]
    return positionals + argv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(num_processes: int, train_argv: list[str], *, cpu: bool) -> list[str]:
    """The ``accelerate launch`` command line running ``python -m gateau train <train_argv>`` N times.

    Workers use DDP (NCCL on GPUs, gloo on CPU); DeepSpeed, when asked for, is set up by the trainer from the
    ``--deepspeed`` JSON inside each worker.
    """
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port()), "--multi_gpu",
            *(["--num_cpu_threads_per_process", str(max(1, (os.cpu_count() or 1) // num_processes))] if cpu else []),
            "-m", "gateau", "train", *train_argv]


def relaunch(num_processes: int, train_argv: list[str], *, cpu: bool) -> int:
    """Run the training command under accelerate and return its exit code."""
    cmd = launch_command(num_processes, train_argv, cpu=cpu)
    print("gateau train: launching " + " ".join(cmd[1:]), flush=True)
    return subprocess.call(cmd)
