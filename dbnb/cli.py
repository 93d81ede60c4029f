"""The ``dbnb`` command line.

Subcommands
-----------
``dbnb reproduce``   regenerate every figure and table from the shipped data into ``figures/``
``dbnb fit FILE``    least-action potential of a counts file (Letter JSON formats, CSV, a store)

Run ``dbnb COMMAND --help`` for the options of each.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _load_counts(path: Path, fmt: str):
    from . import datasets

    if fmt == "auto":
        name = path.name.lower()
        if name.endswith((".jsonl", ".jsonl.gz")):
            fmt = "store"
        elif name.endswith(".csv"):
            fmt = "csv"
        elif name.endswith(".json"):
            import json

            try:
                with open(path, encoding="utf-8") as fh:
                    head = json.load(fh)
            except FileNotFoundError:
                raise FileNotFoundError(f"no such data file: {path}") from None
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"{path} is not valid JSON: {exc}") from None
            fmt = "words" if isinstance(head, dict) else "ideas"
        else:
            raise ValueError(
                f"cannot tell the format of {path} from its name; pass --format "
                "ideas|words|csv|store"
            )
    if fmt == "ideas":
        return datasets.read_ideas_json(path)
    if fmt == "words":
        return datasets.read_word_dict_json(path)
    if fmt == "csv":
        return datasets.read_counts_csv(path)
    if fmt == "store":
        from .agents.word import counts_from_store

        return counts_from_store(path)
    raise ValueError(f"unknown --format {fmt!r}")


def _cmd_fit(args: argparse.Namespace) -> int:
    import numpy as np

    from .potential import fit_potential

    counts = _load_counts(Path(args.path), args.format)
    fit = fit_potential(
        counts,
        kernel=args.kernel,
        estimator=args.estimator,
        min_calls=args.min_calls,
        n0=args.n0,
        reference=args.reference,
        regularization=args.regularization,
    )
    print(counts)
    print(fit)
    table = fit.to_frame().sort_values("beta_V")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out)
        print(f"wrote {out} ({len(table)} states)")
    else:
        with np.printoptions(precision=4):
            print(table.head(args.show).to_string())
            if len(table) > args.show:
                print(f"... {len(table) - args.show} more states (use --out FILE for all)")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    reproduce(Path(args.out), formats=tuple(args.formats.split(",")))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``dbnb`` command (exposed for tests and docs)."""
    p = argparse.ArgumentParser(
        prog="dbnb",
        description=(
            "Detailed balance in LLM-driven agents (arXiv:2512.10047): sample agents, "
            "estimate transition kernels, fit least-action potentials, draw the Letter's figures."
        ),
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    r = sub.add_parser(
        "reproduce",
        help="regenerate every figure and table from the shipped data (offline)",
        description=(
            "Regenerate the Letter's figures and tables that the shipped data allow, into "
            "OUT (default: figures/), offline. Prints what it wrote and the headline numbers."
        ),
    )
    r.add_argument("--out", default="figures", help="output folder (default: %(default)s)")
    r.add_argument(
        "--formats",
        default="png,pdf",
        help="figure formats, comma-separated (default: %(default)s)",
    )
    r.set_defaults(func=_cmd_reproduce)

    f = sub.add_parser(
        "fit",
        help="fit the least-action potential of a counts file",
        description=(
            "Fit beta*V by least action (Eq. 8) to the transitions in PATH: the Letter's "
            "'ideas' JSON, its raw word-dict JSON, a CSV with columns source,target,count, "
            "or a dbnb response store (.jsonl / .jsonl.gz)."
        ),
    )
    f.add_argument("path", help="counts file")
    f.add_argument("--format", default="auto", choices=["auto", "ideas", "words", "csv", "store"])
    f.add_argument("--kernel", default="exp", choices=["exp", "softplus"],
                   help="violation kernel K (default: %(default)s)")
    f.add_argument(
        "--estimator",
        default="auto",
        choices=["auto", "exact", "fixed", "outcount", "low_reject", "high_reject"],
        help="N0 convention for T = N/N0 (default: exact when every call was recorded, "
        "else Eq. 24 out-counts)",
    )
    f.add_argument("--n0", type=float, default=None,
                   help="nominal calls per state for --estimator fixed (Table II: 4000)")
    f.add_argument("--min-calls", type=int, default=None, help="drop states with fewer calls")
    f.add_argument("--reference", default=None, help="state whose potential is 0")
    f.add_argument("--regularization", type=float, default=0.0,
                   help="ridge alpha that makes every potential finite (default: 0)")
    f.add_argument("--out", default=None, help="write the potentials to this CSV")
    f.add_argument("--show", type=int, default=20, help="rows to print without --out")
    f.set_defaults(func=_cmd_fit)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dbnb`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"dbnb {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
