"""The `semsafe` command line. Every dashboard action is one of these commands."""

import argparse
import json
import logging
import sys
import time

from .data import PACK_SETS
from .errors import SemsafeError
from .paths import DEFAULT_MODEL, EVAL_BATCH_SIZE, PREPARE_BATCH_SIZE


def _inspect(args) -> int:
    if not args.response.strip():
        raise SemsafeError("--response is empty; give the response text whose tokens to score")
    if not 1 <= args.top <= 100:
        raise SemsafeError(f"--top must be between 1 and 100 (alternatives per token), got {args.top}")
    from .inspection import format_table, inspect_before_after, inspect_response
    from .models import load_model
    if args.run:
        from .cost import SemanticCost
        from .runs import Run

        model, tok = Run.open(args.run).load_model()
        with model.disable_adapter():
            cost = SemanticCost.from_model(model)
        table, *_ = inspect_before_after(model, tok, args.prompt, args.response, cost,
                                         base_context=model.disable_adapter, top=args.top)
        if args.json:
            json.dump({"run": args.run, "prompt": args.prompt, "response": args.response,
                       "tokens": table.to_dict(orient="records")}, sys.stdout, indent=1)
            print()
        else:
            print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
            print(f"\nmean EMD to the response tokens: base {table['emd_base'].mean():.4f}, "
                  f"run {table['emd_run'].mean():.4f} (higher = further from them)")
        return 0
    model, tok = load_model(args.model)
    table = inspect_response(model, tok, args.prompt, args.response, top=args.top)
    if args.json:
        json.dump({"model": args.model, "prompt": args.prompt, "response": args.response,
                   "tokens": table.to_dict(orient="records")}, sys.stdout, indent=1)
        print()
    else:
        print(format_table(table))
    return 0


def _neighbours(args) -> int:
    if not 1 <= args.k <= 1000:
        raise SemsafeError(f"-k must be between 1 and 1000, got {args.k}")
    from .cost import SemanticCost
    from .inspection import display_token
    from .models import load_model

    model, tok = load_model(args.model)
    ids = tok(args.token, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        pieces = ", ".join(repr(display_token(tok, i)) for i in ids)
        raise SemsafeError(f"{args.token!r} is {len(ids)} tokens ({pieces}), not one; give a single "
                           "token, e.g. with its leading space: ' kill'")
    cost = SemanticCost.from_model(model)
    nb = cost.nearest(ids, k=args.k)
    rows = [{"token": display_token(tok, i), "token_id": int(i), "cost": round(float(c), 4)}
            for i, c in zip(nb.ids[0].tolist(), nb.costs[0].tolist())]
    if args.json:
        print(json.dumps({"token": args.token, "token_id": ids[0], "neighbours": rows}, indent=1))
    else:
        print(f"nearest tokens to {display_token(tok, ids[0])!r} (id {ids[0]}), cost = 1 - cosine:")
        for r in rows:
            print(f"  {r['cost']:.4f}  {r['token']!r:<20} id {r['token_id']}")
    return 0


def _project(args) -> int:
    if args.dims not in (2, 3):
        raise SemsafeError(f"--dims must be 2 or 3, got {args.dims}")
    if args.tokens < 10:
        raise SemsafeError(f"--tokens must be at least 10, got {args.tokens}")
    from .cost import SemanticCost
    from .models import load_model
    from .projection import compute_projection, projection_path

    model, _ = load_model(args.model)
    cost = SemanticCost.from_model(model)
    coords = compute_projection(cost, args.model, args.tokens, args.dims,
                                on_stage=lambda m: print(m, flush=True))
    print(f"{coords.shape[0]} tokens x {coords.shape[1]} dims: "
          f"{projection_path(args.model, min(args.tokens, cost.vocab_size), args.dims)}")
    return 0


def _model(args) -> int:
    """Prepare (convert and cache) a model, so the first dashboard load is quick."""
    from .models import load_model

    model, tok = load_model(args.model)
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.model}: {type(model).__name__}, {n / 1e6:.1f}M parameters, "
          f"vocabulary {len(tok)}, ready")
    return 0


def _prepare(args) -> int:
    from .prepare import PrepareConfig, prepare

    cfg = PrepareConfig(model=args.model, harmful=args.harmful, n_harmful=args.n_harmful,
                        retain=args.retain, n_retain=args.n_retain,
                        self_distill=not args.use_given_responses, held_out=args.held_out,
                        seed=args.seed, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    report = prepare(cfg, out_dir=args.out)
    print(json.dumps(report, indent=1))
    return 0


def _judges(args) -> int:
    from .judges.card import format_card, judge_card

    if args.label and not args.check:
        raise SemsafeError("--label names the label columns of a file given with --check FILE; add --check")
    if args.check:
        from .judges.challenge import check_file, label_columns

        card = {f"judges on {args.check}": check_file(args.check, columns=label_columns(args.label))}
    else:
        card = judge_card(retrain=args.retrain)
    print(json.dumps(card, indent=1) if args.json else format_card(card))
    return 0


def _train(args) -> int:
    if not args.resume:  # bad input: one line before torch and transformers load
        from .config import load_config
        load_config(args.config, args.overrides)
    from .train import run_from_args

    return run_from_args(args)


def _sweep(args) -> int:
    from .sweep import run_sweep

    runs = run_sweep(args.config, args.overrides, args.objectives.split(","),
                     [int(x) for x in args.sizes.split(",")], [int(x) for x in args.seeds.split(",")])
    for run in runs:
        print(f"{run.id}\t{run.status.get('state')}\t{run.status.get('message', '')}")
    return 0 if all(r.status.get("state") == "done" for r in runs) else 1


def parse_suite_n(text: str) -> tuple[str, int | None]:
    """``SUITE=N`` or ``SUITE=all`` (the --suite-n option)."""
    suite, sep, value = text.partition("=")
    if not sep or not suite or not (value == "all" or value.isdigit() and int(value) > 0):
        raise SemsafeError(f"--suite-n {text!r}: write SUITE=N (a positive count) or SUITE=all, e.g. overalign=all")
    return suite, None if value == "all" else int(value)


def _eval(args) -> int:
    if args.n is not None and args.n < 1:
        raise SemsafeError(f"--n must be at least 1 (prompts per suite), got {args.n}")
    if args.batch_size < 1:
        raise SemsafeError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.max_new_tokens < 1:
        raise SemsafeError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    from .judges.learned import parse_judge_option

    judges = dict(parse_judge_option(j) for j in args.judge or [])
    suite_n = dict(parse_suite_n(x) for x in args.suite_n or [])
    from .evaluate import SUITES, EvalConfig, answer_judges, evaluate, judges_to_train, load_subject

    suites = args.suite or (["custom"] if args.prompts else list(SUITES))
    if args.prompts and "custom" not in suites:  # the file is what the custom suite reads: never drop it unread
        suites = [*suites, "custom"]
        print(f"--prompts {args.prompts}: the custom suite, which reads it, is added to {', '.join(suites[:-1])}",
              file=sys.stderr)
    cfg = EvalConfig(suites=suites, n_prompts=args.n, max_new_tokens=args.max_new_tokens,
                     batch_size=args.batch_size, do_sample=args.sample, temperature=args.temperature,
                     top_p=args.top_p, seed=args.seed, held_out_seed=args.split_seed,
                     prompts_file=args.prompts, judges=judges, suite_n=suite_n,
                     extra_harmful=args.extra_harmful or [], dtype=args.dtype)
    import contextlib

    from .jobs import Job, device_lock

    job = Job(args.job) if args.job else None
    with job.running() if job else contextlib.nullcontext():
        try:
            subject = load_subject(args.model, args.run, cfg)
            with device_lock(on_wait=lambda: (print("waiting for the device: another job is using it", flush=True),
                                              job and job.write_status(state="queued",
                                                                       message="waiting: another job is using the device"))):
                if job:
                    job.write_status(state="running", message="evaluating", started=time.time())
                untrained = judges_to_train(cfg) if job else []
                if untrained:  # evaluate() would train them first too; here the job's status says so meanwhile
                    job.write_status(state="running", message=f"training the {' and '.join(untrained)} judge"
                                     f"{'s' * (len(untrained) > 1)} (first use on this machine: a few minutes "
                                     "on 2 cores, then cached)")
                    answer_judges(cfg)
                    job.write_status(state="running", message="evaluating")
                summary = evaluate(subject, cfg, on_progress=job.progress if job else None)
        except (SemsafeError, Exception) as err:
            if job:
                job.write_status(state="failed", message=str(err) if isinstance(err, SemsafeError)
                                 else f"{type(err).__name__}: {err}")
            raise
        if job:
            job.write_status(state="done", message=f"finished: {subject.out_dir}", out=str(subject.out_dir))
    from .stats import interval_text

    # every number with its 95% interval (Wilson for rates, bootstrap for means); summary.json has them all
    print(json.dumps({"subject": summary["subject"], "out": str(subject.out_dir),
                      "suites": {s: {k: interval_text(v) for k, v in m.items()} for s, m in summary["suites"].items()}},
                     indent=1))
    return 0


def _compare(args) -> int:
    from .compare import compare_table, readable_table, write_csv, write_html

    import pandas as pd

    table = compare_table(args.refs)
    if args.csv:
        write_csv(table, args.csv)
    if args.html:
        write_html(table, args.refs, args.html)
    print("delta: paired difference from the first subject on the same prompts; effect = its 95% "
          "interval excludes 0 (rates: and McNemar's exact p < 0.05)")
    shown = readable_table(table, args.refs)
    # the definitions go below, once each: as a column they made every row wider than a terminal
    body = shown.drop(columns="definition")
    left = {c: f"{{:<{body[c].astype(str).str.len().max()}}}".format for c in body.columns}
    with pd.option_context("display.width", 10_000, "display.max_columns", 50, "display.max_colwidth", None):
        print(body.to_string(index=False, formatters=left, justify="left"))
    print("\nmetrics:")
    for metric, definition in dict(zip(shown["metric"], shown["definition"])).items():
        if "[" not in metric and definition:
            print(f"  {metric}: {definition}")
    if shown["metric"].str.contains("[", regex=False).any():
        print("  metric[x]: the metric on the prompts of category (or label) x alone")
    return 0


def _cancel(args) -> int:
    from .jobs import cancel
    from .runs import Run

    run = Run.open(args.run)
    if cancel(run):
        print(f"sent cancel to run {run.id} (pid {run.status.get('pid')}); it saves its adapter and stops")
        return 0
    print(f"run {run.id} is not being trained (state: {run.state})", file=sys.stderr)
    return 1


def _runs(args) -> int:
    from .runs import list_runs

    for run in list_runs():
        status = run.status
        state = run.state
        note = status.get("message", "") if state != "died" else \
            f"the process died at step {status.get('step', 0)}; `semsafe train --resume {run.id}` continues it"
        print(f"{run.id}\t{state}\tstep {status.get('step', 0)}/{status.get('total_steps', '?')}\t{note}")
    return 0


def _experiment(args) -> int:
    from dataclasses import replace

    given = {"objectives": args.objectives and args.objectives.split(","),
             "sizes": args.sizes and [int(x) for x in args.sizes.split(",")],
             "seeds": args.seeds and [int(x) for x in args.seeds.split(",")],
             "steps": args.steps, "eval_prompts": args.eval_prompts, "max_new_tokens": args.max_new_tokens,
             "suite_n": args.suite_n and dict(parse_suite_n(x) for x in args.suite_n)}
    from .experiment import PRESETS, data_efficiency

    design = replace(PRESETS[args.preset], **{k: v for k, v in given.items() if v is not None})
    out = data_efficiency(design, config=args.config, overrides=args.overrides, resume=args.resume,
                          workers=args.workers)
    print(out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semsafe", description="Semantic-loss (EMD) safety fine-tuning: inspect, train, evaluate.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inspect", help="per-token EMD table of a response under a model")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL})")
    p.add_argument("--prompt", required=True, help="the user message")
    p.add_argument("--response", required=True, help="the assistant response to score")
    p.add_argument("--top", type=int, default=3, help="alternatives to show per token (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--run", help="a trained run: show the base model and the run side by side")
    p.set_defaults(func=_inspect)

    p = sub.add_parser("neighbours", help="the tokens semantically closest to a token (lowest cost)")
    p.add_argument("token", help="one token of the vocabulary, e.g. ' kill'")
    p.add_argument("-k", type=int, default=10, help="how many (default 10)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL})")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_neighbours)

    p = sub.add_parser("project", help="UMAP projection of the vocabulary embeddings (cached for the dashboard)")
    p.add_argument("--tokens", type=int, default=2000, help="first N token ids (default 2000)")
    p.add_argument("--dims", type=int, default=2)
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL})")
    p.set_defaults(func=_project)

    p = sub.add_parser("prepare", help="build harmful / retain sets from the base model's own answers")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL})")
    p.add_argument("--harmful", default="advbench",
                   help="harmful prompts: advbench, harmbench, donotanswer, or a .jsonl/.json/.csv/.parquet file")
    p.add_argument("--n-harmful", type=int, default=None, help="cap on harmful training prompts")
    p.add_argument("--retain", default="benign", help="benign instructions: a named set or a file")
    p.add_argument("--n-retain", type=int, default=None, help="cap on retain examples")
    p.add_argument("--use-given-responses", action="store_true",
                   help="use the retain file's own responses (your SFT data) instead of self-distillation")
    p.add_argument("--held-out", type=float, default=0.5, help="share of prompts held out for eval")
    p.add_argument("--split-seed", "--seed", dest="seed", type=int, default=0,
                   help="seed of the train / held-out split (a config's data.split_seed)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=PREPARE_BATCH_SIZE,
                   help="prompts answered at once: speed and memory only, greedy answers are the same")
    p.add_argument("--out", default=None, help="output folder (default: under the semsafe cache)")
    p.set_defaults(func=_prepare)

    p = sub.add_parser("judges", help="judge card: each judge's validation numbers")
    p.add_argument("--report", action="store_true", help="print the card (the default action)")
    p.add_argument("--retrain", action="store_true", help="retrain the learned judges first")
    p.add_argument("--check", metavar="FILE",
                   help="instead of the card: how the judges agree with YOUR labelled answers (JSONL/JSON/CSV/parquet: prompt, "
                        "response, harmful and/or refusal as 1/0; optional category, ended, degenerate; other "
                        "sets' column names and label words are read too: docs/data.md)")
    p.add_argument("--label", action="append", metavar="LABEL=COLUMN[,COLUMN...]",
                   help="with --check: the columns that hold a label (harmful, refusal or degenerate) where the "
                        "file's names do not say, e.g. raters' columns: harmful=human_0,human_1,human_2 (a rater "
                        "writes 0/1, yes/no or a 0..1 score; harmful when their mean reaches 0.5)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_judges)

    from .config import add_train_arguments as add_arguments

    p = sub.add_parser("train", help="fine-tune with an objective (TA-SFT or a baseline) into a run folder")
    add_arguments(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("cancel", help="stop a run that is training (it keeps its adapter and checkpoints)")
    p.add_argument("run", help="run id")
    p.set_defaults(func=_cancel)

    p = sub.add_parser("runs", help="list runs with their state (a run whose process died shows 'died')")
    p.set_defaults(func=_runs)

    p = sub.add_parser("sweep", help="one run per objective x harmful-set size x seed")
    p.add_argument("--config", help="base YAML config")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--objectives", default="sft,ga,emd,emd_lb,refusal_sft")
    p.add_argument("--sizes", default="10,30,100", help="harmful-set sizes")
    p.add_argument("--seeds", default="0,1")
    p.set_defaults(func=_sweep)

    p = sub.add_parser("eval", help="generate answers and score them with the judges")
    p.add_argument("--model", help="evaluate a model spec (cached per spec and settings)")
    p.add_argument("--run", help="evaluate a training run (its base model + adapter)")
    p.add_argument("--suite", action="append",
                   choices=["harmful", "overalign", "fluency", "emd", "capability", "jailbreak", "custom"],
                   help="suite to run (repeatable; default: the five of the default evaluation, or custom with --prompts; jailbreak only when named)")
    p.add_argument("--prompts", help="your own prompt file (JSONL/JSON/CSV/parquet with 'prompt', goal/behavior/question..., or a chat in 'messages'; optional label/type)")
    p.add_argument("--n", type=int, default=32, help="prompts per suite (default 32)")
    p.add_argument("--suite-n", action="append", metavar="SUITE=N|all",
                   help="prompts for one suite, over --n (e.g. overalign=all)")
    p.add_argument("--extra-harmful", action="append", choices=PACK_SETS,
                   help="add every prompt of this set to the held-out harmful prompts (a set no training "
                        "prompt came from)")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=EVAL_BATCH_SIZE,
                   help=f"answers per generation batch, shared by all suites (default {EVAL_BATCH_SIZE})")
    p.add_argument("--judge", action="append", metavar="ROLE=hf:MODEL[:LABEL]",
                   help="score with a Hugging Face classifier instead of a built-in judge, e.g. "
                        "harm=hf:org/guard-model:unsafe or refusal=hf:/path/to/folder (repeatable; "
                        "the model's name and revision go into every row)")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                   help="the model's weights during evaluation: float32 (exact, the default) or bfloat16 "
                        "(faster on a GPU or a CPU with bf16 instructions; answers and scores differ from "
                        "float32's, so compare only evaluations of one dtype)")
    p.add_argument("--split-seed", type=int, default=0,
                   help="data split seed for held-out prompts (a run always uses its own data.split_seed)")
    p.add_argument("--job", help=argparse.SUPPRESS)  # the dashboard's job id: status and progress go there
    p.set_defaults(func=_eval)

    p = sub.add_parser("compare", help="metrics of evaluated runs side by side")
    p.add_argument("refs", nargs="+", help="run ids, base:<model spec>, or summary.json paths")
    p.add_argument("--html", help="write a standalone HTML report here")
    p.add_argument("--csv", help="write the table as CSV here")
    p.set_defaults(func=_compare)

    p = sub.add_parser("experiment", help="the paper's claims in miniature")
    p.add_argument("name", choices=["data-efficiency"])
    p.add_argument("--preset", choices=["cpu", "gpu"], default="cpu",
                   help="the design: cpu (2 seeds; 46-69 min measured on 2 cores in sessions 16-17, two runs at a time, the "
                        "default; earlier designs 97-104, varying with the cores: see docs/results.md) or gpu (3 seeds, capability, "
                        "longer answers); the options below override single parts of it")
    p.add_argument("--objectives", help="comma-separated (cpu: sft,ga,npo,emd,emd_lb,refusal_sft)")
    p.add_argument("--sizes", help="harmful-set sizes, comma-separated (cpu: 10,30,100)")
    p.add_argument("--seeds", help="training seeds, comma-separated (cpu: 0,1)")
    p.add_argument("--steps", type=int, help="training steps per run")
    p.add_argument("--eval-prompts", type=int, help="prompts for suites --suite-n does not name")
    p.add_argument("--suite-n", action="append", metavar="SUITE=N|all",
                   help="prompts of one evaluation suite (cpu: harmful=100, overalign=all, fluency=50)")
    p.add_argument("--max-new-tokens", type=int, help="tokens per evaluation answer")
    p.add_argument("--resume", metavar="FOLDER",
                   help="continue an interrupted experiment in FOLDER, with the design it recorded")
    p.add_argument("--workers", type=int, metavar="N",
                   help="runs trained and evaluated at once, each in its own process with an equal share of "
                        "the threads (default: 2 on a CPU; on a GPU one per 4 CPU threads, at most 4); 1 and 2 gave identical results here "
                        "(bench/experiment_workers.py)")
    p.add_argument("--config", default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=_experiment)

    p = sub.add_parser("model", help="load (and on first use convert and cache) a model")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL})")
    p.set_defaults(func=_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    for i, arg in enumerate(sys.argv[1:] if argv is None else argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:  # bytes that are not UTF-8 arrive as lone surrogates
            print(f"semsafe: error: argument {i} ({arg.encode('utf-8', 'replace').decode()!r}) is not "
                  "valid UTF-8 text; re-type it or pass the text in a UTF-8 file", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except SemsafeError as err:
        print(f"semsafe {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"semsafe {args.command}: cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
