"""Batched vs one-at-a-time generation throughput on the embedded model, side by side.

    .venv/bin/python bench/generate.py              # 16 prompts, 48 new tokens, ~1.5 min on 2 cores

Both paths use `semsafe.generate.generate_answers` (greedy, KV cache); only batch_size differs.
Target (issue 5): >= 4x tokens/s at batch 16 on 2 cores.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from semsafe.data import load_set  # noqa: E402
from semsafe.generate import generate_answers  # noqa: E402
from semsafe.models import load_model  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu")
    parser.add_argument("--batched-only", action="store_true", help="time the batched path alone")
    args = parser.parse_args()
    model, tok = load_model(device=args.device)
    print(f"device {args.device}")
    prompts = [r.prompt for r in load_set("advbench")[:args.n]]
    generate_answers(model, tok, prompts[:2], max_new_tokens=4, batch_size=2, progress=False)  # warm-up
    results = {}
    for batch in (args.batch,) if args.batched_only else (1, args.batch):
        t = time.perf_counter()
        answers = generate_answers(model, tok, prompts, max_new_tokens=args.max_new_tokens,
                                   batch_size=batch, progress=False)
        elapsed = time.perf_counter() - t
        tokens = sum(len(tok(a, add_special_tokens=False)["input_ids"]) for a in answers)
        results[batch] = (elapsed, tokens, answers)
        print(f"batch {batch:>3}: {elapsed:7.1f} s, {tokens} generated tokens, {tokens / elapsed:7.1f} tokens/s")
    if args.batched_only:
        return
    (t1, n1, a1), (tb, nb, ab) = results[1], results[args.batch]
    same = sum(x == y for x, y in zip(a1, ab))
    print(f"speed-up at batch {args.batch}: {(nb / tb) / (n1 / t1):.2f}x tokens/s "
          f"({same}/{len(a1)} answers identical to unbatched greedy)")


if __name__ == "__main__":
    main()
