"""`splendor-il`: the project's command line.

The composition root: each subcommand is a module of this package that registers itself
here and drives the lower layers: ``simulate`` (self-play logs, :mod:`splendor_il.simulate_cli`
over :mod:`splendor.simulate`), ``preprocess`` (the Dask job, :mod:`splendor_il.preprocess_cli`
over :mod:`imitation_learning`) ``check`` (a saved dataset's soundness and learnability,
:mod:`splendor_il.check_cli`) and ``cache`` (the preprocessing's result cache: size,
prune; :mod:`splendor_il.cache_cli`).
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
    from splendor_il.cache_cli import register_cli as register_cache
    from splendor_il.check_cli import register_cli as register_check
    from splendor_il.preprocess_cli import register_cli as register_preprocess
    from splendor_il.simulate_cli import register_cli as register_simulate

    parser = _OneLineErrors(
        prog="splendor-il",
        description="Splendor self-play logs and their preprocessing for imitation learning.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_simulate(sub)
    register_preprocess(sub)
    register_check(sub)
    register_cache(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
