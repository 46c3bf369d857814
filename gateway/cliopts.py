"""Options every ``fedgate`` subcommand shares, for the core's commands and the plugins' alike."""

from __future__ import annotations

import argparse
import os

__all__ = ["add_config_argument"]


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """The ``-c/--config`` option every subcommand shares (default: ``$FEDGATE_CONFIG``)."""
    parser.add_argument(
        "-c",
        "--config",
        default=os.environ.get("FEDGATE_CONFIG"),
        required="FEDGATE_CONFIG" not in os.environ,
        metavar="FILE",
        help="configuration file (YAML); defaults to $FEDGATE_CONFIG",
    )
