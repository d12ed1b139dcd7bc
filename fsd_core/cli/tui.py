"""`fsd tui`: the operator dashboard (Textual; imported only when the command runs)."""

from __future__ import annotations

import argparse

SCREENS = ("deployment", "recommend", "launch", "runs")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("tui", help="the operator dashboard (deployment, recommend, launch, runs)",
                       description="A keyboard-first Textual dashboard over the same core as the CLI: "
                       "deployment status, cost recommendation, launching runs, watching them, and "
                       "the run history. Press ? inside for the keys.")
    p.add_argument("--screen", choices=SCREENS, default="runs", help="screen to open first (default runs)")
    p.add_argument("--runs-db", metavar="DB", help="run store (default: $FSD_RUNS_DB or <FSD_HOME>/runs.sqlite)")
    p.set_defaults(handler=cmd_tui)


def cmd_tui(args: argparse.Namespace) -> int:
    from tui.app import main

    main(runs_db=args.runs_db, initial=args.screen)
    return 0
