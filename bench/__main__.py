"""``uv run python -m bench``: list the benchmark suites, run some.

    uv run python -m bench list
    uv run python -m bench run NAME [NAME...] [-- ARGS...]
    uv run python -m bench report [--check]

``ARGS`` after ``--`` go to every suite named (each suite's own options:
``uv run python -m bench run fullsize -- --help``). The suites are those of
:data:`bench.suites.SUITES`. ``report`` measures nothing: it rebuilds the current results
table of ``docs/benchmarks.md`` and the plots from ``bench/results/`` (:mod:`bench.summary`).
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.suites import SUITES


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="name every suite and what it measures")
    run = commands.add_parser("run", help="run suites by name (arguments after -- go to each)")
    run.add_argument("names", nargs="+", metavar="NAME", choices=sorted(SUITES))
    rep = commands.add_parser("report", help="rebuild docs/benchmarks.md's table and the plots")
    rep.add_argument("--check", action="store_true", help="only say whether the table is stale")
    args = parser.parse_args(argv)

    if args.command == "report":
        from bench.summary import main as report_main

        return report_main(["--check"] if args.check else [])

    if args.command == "list":
        width = max(len(name) for name in SUITES)
        for suite in SUITES.values():
            print(f"{suite.name:<{width}}  {suite.summary}")
        return 0
    worst = 0
    for name in args.names:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        code = SUITES[name].run(extra)
        print(f"== {name}: exit {code}, {time.perf_counter() - t0:.0f} s", flush=True)
        worst = worst or code
    return worst


if __name__ == "__main__":
    sys.exit(main())
