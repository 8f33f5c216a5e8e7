"""`splendor-il`: the project's command line.

Each subcommand lives with the code it drives and registers itself here:
``simulate`` (self-play logs, :mod:`splendor.simulate`), ``preprocess`` (the Dask job,
:mod:`imitation_learning.cli`) and ``check`` (a saved dataset's soundness and learnability,
:mod:`imitation_learning.check_cli`).
"""

from __future__ import annotations

import argparse
import sys


class _OneLineErrors(argparse.ArgumentParser):
    """Usage errors on one line (argparse prints the whole usage first); exit code 2.
    The subcommands' parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from imitation_learning.check_cli import register_cli as register_check
    from imitation_learning.cli import register_cli as register_preprocess
    from splendor.simulate import register_cli as register_simulate

    parser = _OneLineErrors(
        prog="splendor-il",
        description="Splendor self-play logs and their preprocessing for imitation learning.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_simulate(sub)
    register_preprocess(sub)
    register_check(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
