"""The exact word kernels of "one potential for many models?" (notebook 08, dbnb reproduce).

Three walks over the 100 words of ``word_logprob100.npz`` (SmolLM2, the Letter's prompt, T = 1),
each resumable from its checkpoint (one JSON line per finished prompt):

    gemma3      Gemma 3 270M, the Letter's prompt, T = 1       -> word_logprob100_gemma3.npz
    paraphrase  SmolLM2, the paraphrased prompt, T = 1         -> word_logprob100_paraphrase.npz
    temps       SmolLM2, the Letter's prompt, T = 0.5, 1 and 2 from one walk (the cut-off
                applied at every temperature)                  -> word_logprob100_T{0.5,1,2}.npz

Run (or resume) one walk per core, single-threaded:

    OMP_NUM_THREADS=1 python scripts/run_local_comparison.py gemma3 --work /tmp/walks

``--reverse`` walks the prompts from the last: a second process with its own checkpoint then
shares a walk with the first (``--reverse --checkpoint B``); when they meet, stop both and join
the checkpoints (``cat B >> A``: rows carry their settings' key, so the order does not matter).

``--partial`` writes the kernel over the prompts the checkpoint already holds (the other
prompts are left out as sources; their words stay replies) and says so in ``info["partial"]``,
so a long walk can ship in stages; a later full run reuses every finished prompt. Measured on a
2-core machine shared with other jobs (2026-12-03): SmolLM2 20-80 s per prompt at T = 1,
Gemma 3 60-130 s, the three-temperature walk about 2.4 times SmolLM2's T = 1 walk (it visits
about 2.4 times the nodes).
"""

import argparse
import json
from pathlib import Path

from dbnb.agents import word

RUNS = Path(__file__).resolve().parent.parent / "data" / "runs"
N_WORDS = 100
MIN_PROB = 1e-5
WALKS = {  # name -> (model, prompt, temperatures, output stem)
    "gemma3": ("gemma3-270m", "letter", (1.0,), "word_logprob100_gemma3"),
    "paraphrase": ("smollm2", "paraphrase", (1.0,), "word_logprob100_paraphrase"),
    "temps": ("smollm2", "letter", (0.5, 1.0, 2.0), "word_logprob100"),
}


def finished(checkpoint: Path) -> set[str]:
    """Sources with a finished row in ``checkpoint`` (a cut last line is ignored)."""
    out = set()
    if checkpoint.is_file():
        for line in checkpoint.read_text(encoding="utf-8").splitlines():
            try:
                out.add(json.loads(line)["source"])
            except (json.JSONDecodeError, KeyError):
                continue
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("walk", choices=sorted(WALKS))
    ap.add_argument("--work", default=".", help="folder of the checkpoints (default: here)")
    ap.add_argument("--checkpoint", default=None, help="checkpoint file (default: WORK/WALK"
                    ".ckpt.jsonl)")
    ap.add_argument("--partial", action="store_true",
                    help="write the kernel over the prompts finished so far")
    ap.add_argument("--reverse", action="store_true",
                    help="walk the prompts from the last (a second process on the same walk)")
    ap.add_argument("--out", default=str(RUNS), help="output folder (default: data/runs)")
    args = ap.parse_args()
    model, prompt, temps, stem = WALKS[args.walk]
    ckpt = Path(args.checkpoint or Path(args.work) / f"{args.walk}.ckpt.jsonl")
    vocab = list(word.vocabulary(N_WORDS))
    info = {"prompt": prompt}
    sources = list(reversed(vocab)) if args.reverse else None
    if args.partial and args.reverse:
        raise SystemExit("--partial writes the kernel in the vocabulary's order; drop --reverse")
    if args.partial:
        done = finished(ckpt)
        sources = [w for w in vocab if w in done]
        if len(sources) < 3:
            raise SystemExit(f"{ckpt}: {len(sources)} finished prompts; need >= 3")
        info["partial"] = f"{len(sources)} of {len(vocab)} prompts"
    kernels = word.word_logprob_kernels(vocab, temps, model=model,
                                        prompt_fn=word.PROMPTS[prompt], sources=sources,
                                        min_prob=MIN_PROB, checkpoint=ckpt, info=info)
    for t, k in kernels.items():
        name = f"{stem}_T{t:g}.npz" if len(temps) > 1 else f"{stem}.npz"
        path = k.save(Path(args.out) / name)
        print(path, k, "uncovered: max", float(k.uncovered.max()))


if __name__ == "__main__":
    main()
