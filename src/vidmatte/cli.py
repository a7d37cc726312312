"""The ``vidmatte`` command: a thin layer over library functions.

Each sub-command is a pair of functions: ``_add_<name>(subparsers)`` declares its flags and
``_run_<name>(args) -> int`` calls the library. Library modules are imported inside the ``_run``
functions so that ``vidmatte --help`` stays fast and does not import torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from vidmatte import __version__
from vidmatte.errors import VidmatteError


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


# ---------------------------------------------------------------------------------------- eval
def _add_eval(subparsers: argparse._SubParsersAction) -> None:
    from vidmatte.metrics.runner import ALL_METRICS, PROTOCOLS

    p = subparsers.add_parser(
        "eval",
        help="score predicted alpha (and foreground) against ground truth, as the VM benchmark does",
        description="Walk PRED and TRUE (the VM benchmark layout <subset>/<clip>/pha/<frame>.png, "
        "or a single clip folder), pair frames by relative path and print MAD, MSE, Grad, Conn, "
        "dtSSD and foreground errors per subset and overall.",
    )
    p.add_argument("--pred", required=True, help="folder of predictions (mirrors --true)")
    p.add_argument("--true", required=True, help="folder of ground truth")
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="lr",
        help="lr: 512x288 protocol (Grad on min-max normalised mattes, Conn included); "
        "hr: 1920x1080 protocol (Grad without normalisation, no Conn by default)",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        choices=ALL_METRICS,
        default=None,
        help="metrics to compute (default: all of the protocol's)",
    )
    p.add_argument("--json", metavar="OUT.json", help="write the results as JSON")
    p.add_argument("--csv", metavar="OUT.csv", help="write one row per clip, subset and overall as CSV")
    p.add_argument("--workers", type=_positive_int, default=None, help="worker processes (default: all cores)")
    p.set_defaults(run=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from vidmatte.metrics.runner import evaluate_folders, format_table, write_csv, write_json

    results = evaluate_folders(
        args.pred, args.true, protocol=args.protocol, metrics=args.metrics, workers=args.workers
    )
    print(format_table(results))
    if args.json:
        write_json(results, args.json)
    if args.csv:
        write_csv(results, args.csv)
    return 0


# ------------------------------------------------------------------------------------ eval-vim
def _add_eval_vim(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval-vim",
        help="score video instance mattes with VIMQ (RQ, TQ, MQ), as the VIM50 benchmark does",
        description="Match predicted instances to ground-truth instances per clip and print RQ, TQ, "
        "MQ and VIMQ per clip and overall (in percent). Ground truth: <true>/<clip>/pha/<instance>/"
        "<frame>.png; predictions: <pred>/<clip>/<instance>/<frame>.png.",
    )
    p.add_argument("--pred", required=True, help="predictions, <pred>/<clip>/<instance>/<frame>.png")
    p.add_argument("--true", required=True, help="VIM50-style ground truth, <true>/<clip>/pha/<instance>/")
    p.add_argument(
        "--error",
        choices=("mse", "mad", "dtssd", "all"),
        default="all",
        help="matting error behind MQ (omega = 50 for mse and mad, 10 for dtssd); default: all three",
    )
    p.add_argument("--clips", nargs="+", default=None, help="score only these clips (default: all)")
    p.add_argument("--json", metavar="OUT.json", help="write the overall and per-clip scores as JSON")
    p.set_defaults(run=_run_eval_vim)


def _run_eval_vim(args: argparse.Namespace) -> int:
    from vidmatte.metrics.vim_runner import evaluate_vim, format_table, write_json
    from vidmatte.metrics.vimq import ERRORS

    errors = ERRORS if args.error == "all" else (args.error,)
    results = evaluate_vim(args.pred, args.true, errors=errors, clips=args.clips)
    print(format_table(results))
    if args.json:
        write_json(results, args.json)
    return 0


COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (_add_eval, _add_eval_vim)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidmatte", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vidmatte {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except VidmatteError as error:
        if args.debug:
            raise
        print(f"vidmatte: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vidmatte: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
