"""Scaling PyTorch's reference times to this machine's speed today.

The issues give PyTorch 2.13 times measured on 2026-11-25, the day our code
of that day took 0.67 s per 1000 steps of `bench_train.py --model mlp`. The
machine's speed varies 2-3x from day to day, so a benchmark scales PyTorch's
time by (that same old code's figure today) / 0.67: run the old code's
bench_train.py --model mlp in the same session and pass its figure with
--old-reference.
"""
import argparse

DAY_REFERENCE = 0.67  # s per 1000 steps of bench_train.py --model mlp, 2026-11-25 code, PyTorch's day


def _positive_seconds(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_old_reference(parser):
    """Adds --old-reference SECONDS (None when not given)."""
    parser.add_argument("--old-reference", type=_positive_seconds, metavar="SECONDS",
                        help="the 2026-11-25 code's bench_train.py --model mlp figure (s per 1000 steps), "
                             "measured in this session, to scale PyTorch's times to today")


def speed_scale(old_reference):
    """How much faster (< 1) or slower the machine is today than on PyTorch's day."""
    return old_reference / DAY_REFERENCE
