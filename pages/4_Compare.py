"""Compare: the base model and trained runs on the same prompts — metrics, trade-offs, answers."""

import html
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from semsafe.compare import (answer_suites, answer_text, caveats, compare_table, row_verdict, eval_args_matching, find_eval_dir, has_matching_base, metric_bars,
                             readable_table, responses_side_by_side, tradeoff_figure, word_diff_html, write_html)
from semsafe.errors import SemsafeError
from semsafe.evaluate import SUITES
from semsafe.experiment import PUBLISHED_NOTE, PUBLISHED_RUN, experiment_tables, published_experiment, table_files
from semsafe.jobs import launch_eval, list_jobs
from semsafe.runs import Run, list_runs, runs_dir
from semsafe.ui import ensure_app_navigation, model_picker

ensure_app_navigation()  # before anything else: see semsafe.ui
st.set_page_config(page_title="semsafe · compare", layout="wide")
st.title("Compare")
spec = model_picker()

runs = list_runs()
evaluated, not_evaluated = [], []
for r in runs:
    (evaluated if (r.path / "eval" / "summary.json").exists() else not_evaluated).append(r.id)
base_ref = f"base:{spec}"
try:
    find_eval_dir(base_ref)
    have_base = True
except SemsafeError:
    have_base = False
# the base model must be evaluated with the same settings as the runs it is compared with
settings_from = evaluated[0] if evaluated else None
base_args = eval_args_matching(settings_from) if settings_from else []
base_matches = has_matching_base(spec, settings_from)


def suites_of(args: list[str]) -> list[str]:
    named = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--suite"]
    return named or list(SUITES)

QUICK = ["--n", "8", "--max-new-tokens", "32"]  # a look in a few minutes on 2 cores
jobs = list_jobs()
busy = {j.status.get("subject") for j in jobs if j.state in ("queued", "running")}
not_evaluated = [r for r in not_evaluated if Run.open(r).state == "done"]  # only finished runs have adapters

with st.expander("Evaluate", expanded=not evaluated or bool(busy)):
    st.caption("Evaluations run as background jobs (`semsafe eval`), one at a time on this machine; "
               "closing the page does not stop them. Full: 32 prompts per suite, 48 new tokens. "
               "Quick look: 8 prompts, 32 tokens (a few minutes on 2 cores; wider intervals).")
    c1, c2 = st.columns(2)
    label = f"Evaluate the base model ({spec})" + (f" with the settings of {settings_from}" if settings_from else "")
    if c1.button(label, disabled=base_matches or base_ref in busy):
        launch_eval(["--model", spec, *base_args], base_ref, suites_of(base_args))
        st.rerun()
    if base_matches:
        c1.caption("The base model is evaluated with these settings.")
    target = c2.selectbox("finished run to evaluate", not_evaluated, placeholder="no finished run waits for evaluation")
    preset = c2.radio("preset", ["full", "quick look"], horizontal=True)
    jailbreak = c2.checkbox("add the jailbreak suite", help="the held-out harmful prompts wrapped in jailbreak "
                            "templates from the pyrit pack (8 templates drawn once with the seed)")
    bf16 = c2.checkbox("bfloat16 weights", help="faster on a GPU or a CPU with bf16 instructions (1.65x on the "
                       "development machine's cores); answers and scores differ from float32's, so the base "
                       "model is then evaluated in bfloat16 too and the two are compared only with each other")
    if c2.button("Evaluate run", disabled=not target or target in busy):
        suites = [*SUITES, "jailbreak"] if jailbreak else list(SUITES)
        named = [a for s in suites for a in ("--suite", s)] if jailbreak else []
        launch_eval(["--run", target, *(QUICK if preset == "quick look" else []), *named,
                     *(["--dtype", "bfloat16"] if bf16 else [])], target, suites)
        st.rerun()


@st.fragment(run_every=2.0)
def job_panel():
    """Evaluation jobs: progress (rows done / total, estimate), failures with their log."""
    for job in list_jobs()[:5]:
        status, state = job.status, job.state
        subject = status.get("subject", "?")
        if state in ("queued", "running"):
            eta = job.eta_seconds()
            st.progress(job.fraction(), text=f"{subject}: {state} · {job.fraction():.0%} of rows"
                        + (f" · about {eta:.0f} s left" if eta else "") + f" · {status.get('message', '')}")
        elif state == "failed":
            st.error(f"{subject}: evaluation failed: {status.get('message', '')}")
            with st.expander(f"log of {job.id}"):
                st.code(job.log_tail() or "(empty)")
        elif state == "died":
            st.error(f"{subject}: the evaluation process died; evaluate again (finished rows are reused)")
        elif state == "done" and time.time() - status.get("updated", 0) < 600:
            st.success(f"{subject}: evaluated. Reload the page to compare it.")
        if status.get("command") and state in ("queued", "running", "failed"):
            st.caption(f"command: {status['command']}")


job_panel()

choices = ([base_ref] if have_base else []) + evaluated
picked = st.multiselect("Base and runs (the first is the reference for deltas)", choices,
                        default=choices[:3])


def comparison(picked: list[str]) -> None:
    """The picked subjects' metrics, trade-offs and answers; a part that cannot be shown says why
    and the rest of the page (the experiments) still shows."""
    if not picked:
        st.info("Nothing evaluated yet: evaluate the base model or a run above.")
        return
    try:
        table = compare_table(picked)
    except SemsafeError as err:
        st.error(str(err))
        return
    for note in caveats(picked):
        st.warning(note)
    st.caption("Each value: mean [95% interval: Wilson for rates, bootstrap for means]. Δ: paired "
               "change from the first subject on the same prompts [paired bootstrap 95% interval]; "
               "'effect' only where that interval excludes 0 (for rates also McNemar's exact p < 0.05).")
    st.dataframe(readable_table(table, picked), hide_index=True, width="stretch")
    left, _ = st.columns([2, 1])
    left.plotly_chart(tradeoff_figure(picked), width="stretch")
    st.plotly_chart(metric_bars(table, picked), width="stretch")  # four panels: the whole width
    with tempfile.TemporaryDirectory() as tmp:
        write_html(table, picked, Path(tmp) / "report.html")
        report = (Path(tmp) / "report.html").read_bytes()
    d1, d2 = st.columns(2)
    d1.download_button("Export CSV", table.to_csv(index=False), "semsafe-compare.csv", "text/csv")
    d2.download_button("Export HTML report (works offline)", report, "semsafe-compare.html", "text/html")

    st.subheader("Answers side by side")
    suite = st.radio("prompts", answer_suites(picked), horizontal=True)
    try:
        answers = responses_side_by_side(picked, suite)
    except SemsafeError as err:
        st.warning(str(err))
        return
    f1, f2, f3, f4 = st.columns(4)
    only_changed = f1.checkbox("only answers that changed")
    only_verdicts = f2.checkbox("only verdicts that changed", help="e.g. harmful before, refused after")
    only_refusals = f3.checkbox("only where someone refused")
    cats = sorted(answers["category"].dropna().unique()) if "category" in answers else []
    cat = f4.selectbox("category", ["all", *cats])
    resp_cols = [f"{r} | response" for r in picked if f"{r} | response" in answers]
    if only_changed and len(resp_cols) > 1:
        answers = answers[answers[resp_cols].nunique(axis=1) > 1]
    verdict_cols = [f"{r} | verdict" for r in picked if f"{r} | verdict" in answers]
    if only_verdicts and len(verdict_cols) > 1:
        answers = answers[answers[verdict_cols].nunique(axis=1) > 1]
    if only_refusals:
        ref_cols = [c for c in answers if c.endswith("| refused")]
        answers = answers[answers[ref_cols].fillna(False).any(axis=1)]
    if cat != "all":
        answers = answers[answers["category"] == cat]
    st.caption(f"{len(answers)} prompts")
    for _, row in answers.head(40).iterrows():
        st.markdown(f"**{html.escape(str(row['prompt']))}** " + (f"· _{row['category']}_" if cat == "all" and "category" in row and row["category"] else ""))
        cols = st.columns(len(resp_cols))
        first = answer_text(row.get(resp_cols[0])) if resp_cols else ""
        for col, rc in zip(cols, resp_cols):
            ref = rc.split(" | ")[0]
            text = answer_text(row.get(rc))
            body = html.escape(text) if rc == resp_cols[0] or pd.isna(row.get(rc)) else word_diff_html(first, text)
            # st.html, not markdown: an answer holding code or tags is shown as text, never parsed
            col.html(f"<div style='font-size:0.85em;white-space:pre-wrap'><b>{html.escape(ref)}</b> · "
                     f"{html.escape(row_verdict(row, ref))}<br>{body}</div>")
        st.divider()


comparison(picked)

with st.expander("How far to trust the verdicts: the judges against answers read by a person"):
    st.caption("Every rate above is the built-in judges' verdict. The challenge set (data/challenge/, never "
               "trained on) holds answers labelled by reading: the embedded model's, and answers in other chat "
               "models' manners. `semsafe judges --report` prints the same with pyrit's cross-validation.")
    if st.toggle("measure the judges on it (about 15 s on 2 cores, kept while the dashboard runs)"):
        from semsafe.judges import degenerate, harm, refusal
        from semsafe.judges.challenge import agreement_figure, challenge_report

        @st.cache_data(show_spinner="scoring the challenge set with the judges")
        def cached_challenge_report(versions: tuple):  # recomputed when a judge's version changes
            return challenge_report()

        report = cached_challenge_report((harm.VERSION, refusal.VERSION, degenerate.VERSION))
        st.plotly_chart(agreement_figure(report), width="stretch")
    st.caption("Or measure them on answers of your own model that you have labelled (read 50–100 of them): "
               "prompt, response, and harmful and/or refusal as 1/0 or yes/no; other sets' column names are "
               "read too (docs/data.md). The same as `semsafe judges --check FILE`.")
    mine = st.file_uploader("your labelled answers", type=["csv", "tsv", "jsonl", "json", "parquet"])
    named = st.text_input("label columns, where the file's names do not say (optional)",
                          placeholder="harmful=human_0,human_1,human_2")
    if mine is not None:
        from semsafe.judges import degenerate, harm, refusal
        from semsafe.judges.challenge import agreement_figure, agreement_table, check_file, label_columns

        @st.cache_data(show_spinner="scoring your answers with the judges")
        def cached_check(name: str, data: bytes, columns: str, versions: tuple):
            with tempfile.TemporaryDirectory() as folder:  # check_file reads a path, by its suffix
                path = Path(folder) / Path(name).name
                path.write_bytes(data)
                try:
                    return check_file(path, columns=label_columns(columns.split()))
                except SemsafeError as err:  # name the file as the user knows it, not the temporary copy
                    raise SemsafeError(str(err).replace(f"{folder}{os.sep}", "")) from None

        try:
            theirs = cached_check(mine.name, mine.getvalue(), named, (harm.VERSION, refusal.VERSION, degenerate.VERSION))
        except SemsafeError as err:  # a bad file is a message here; the rest of the page still shows
            st.error(str(err))
        else:
            st.caption(theirs["data"])
            st.plotly_chart(agreement_figure(theirs), width="stretch")
            st.dataframe(agreement_table(theirs), width="stretch")

st.subheader("Data-efficiency experiments")


@st.cache_data(show_spinner="comparing TA-SFT with each baseline")
def cached_tables(source: str, versions: tuple):  # read again (versus recomputed for older ones) when a file changes
    return published_experiment() if Path(source) == PUBLISHED_RUN else experiment_tables(Path(source))


def tables_of(source: Path):
    return cached_tables(str(source), tuple((p.name, p.stat().st_mtime_ns) for p in table_files(source)))


results = sorted((runs_dir() / "experiments").glob("*/results.csv"))
published = tables_of(PUBLISHED_RUN)
choices = [p.parent for p in results] + ([PUBLISHED_RUN] if published else [])
if not choices:
    st.caption("None yet: `semsafe experiment data-efficiency` writes them.")
else:
    from semsafe.experiment import curve_figures, efficiency_figures, experiment_progress

    chosen = st.selectbox("experiment", choices, index=max(len(results) - 1, 0),
                          format_func=lambda p: "the project's published run (docs/results.md)"
                          if p == PUBLISHED_RUN else p.name)
    if chosen == PUBLISHED_RUN:
        st.caption(PUBLISHED_NOTE)
        tables = published
    else:
        have, planned, finished = experiment_progress(chosen)
        if not finished:
            st.info(f"In progress or stopped: {have} of {planned} runs have results so far; the comparison with "
                    f"each baseline appears when all have. `semsafe experiment data-efficiency --resume "
                    f"{chosen}` continues a stopped one.")
        tables = tables_of(chosen)
    frame, versus, curves = tables["results"], tables["versus"], tables["curves"]
    if "error" in frame:
        frame = frame[frame["error"].isna()]
    if (frame["objective"] == "base").any() and (frame["objective"] != "base").any():
        for fig in efficiency_figures(frame):
            st.plotly_chart(fig, width="stretch")
    if versus is not None:
        st.markdown("**TA-SFT against each baseline**, paired by training seed and by prompt (Δ = emd − other; "
                    "the interval resamples seeds, then prompts, so an effect, called only where it excludes 0, "
                    "holds across initial weights)")
        st.dataframe(versus, hide_index=True)
    for fig in curve_figures(curves) if curves is not None else ():
        st.plotly_chart(fig, width="stretch")
    st.dataframe(frame, hide_index=True)
