"""Compare: the base model and trained runs on the same prompts — metrics, trade-offs, answers."""

import html
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from semsafe.compare import (compare_table, eval_args_matching, find_eval_dir, has_matching_base, metric_bars,
                             readable_table, responses_side_by_side, tradeoff_figure, word_diff_html, write_html)
from semsafe.errors import SemsafeError
from semsafe.runs import list_runs, runs_dir
from semsafe.ui import model_picker

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
base_matches = has_matching_base(spec, settings_from) if settings_from else have_base

with st.expander("Evaluate something first", expanded=not evaluated):
    st.caption("Evaluation runs in the background (`semsafe eval`); reload this page when it finishes.")
    c1, c2 = st.columns(2)
    label = (f"Evaluate the base model ({spec})" + (f" with the settings of {settings_from}" if settings_from else ""))
    if c1.button(label, disabled=base_matches):
        subprocess.Popen([sys.executable, "-m", "semsafe.cli", "eval", "--model", spec, *base_args],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        st.info("started")
    if base_matches:
        c1.caption("The base model is evaluated with these settings.")
    target = c2.selectbox("run to evaluate", not_evaluated or ["(every finished run is evaluated)"])
    if c2.button("Evaluate run", disabled=not not_evaluated):
        from semsafe.runs import Run
        log = open(Run.open(target).path / "eval_log.txt", "ab")
        subprocess.Popen([sys.executable, "-m", "semsafe.cli", "eval", "--run", target], stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
        st.info("started")

choices = ([base_ref] if have_base else []) + evaluated
picked = st.multiselect("Base and runs (the first is the reference for deltas)", choices,
                        default=choices[:3])
if not picked:
    st.info("Nothing evaluated yet: evaluate the base model or a run above.")
else:
    try:
        table = compare_table(picked)
    except SemsafeError as err:
        st.error(str(err))
        st.stop()
    st.caption("Each value: mean [95% interval: Wilson for rates, bootstrap for means]. Δ: paired "
               "change from the first subject on the same prompts [paired bootstrap 95% interval]; "
               "'effect' only where that interval excludes 0 (for rates also McNemar's exact p < 0.05).")
    st.dataframe(readable_table(table, picked), hide_index=True, width="stretch")
    left, right = st.columns(2)
    left.plotly_chart(tradeoff_figure(picked), width="stretch")
    right.plotly_chart(metric_bars(table, picked), width="stretch")
    with tempfile.TemporaryDirectory() as tmp:
        write_html(table, picked, Path(tmp) / "report.html")
        report = (Path(tmp) / "report.html").read_bytes()
    d1, d2 = st.columns(2)
    d1.download_button("Export CSV", table.to_csv(index=False), "semsafe-compare.csv", "text/csv")
    d2.download_button("Export HTML report (works offline)", report, "semsafe-compare.html", "text/html")

    st.subheader("Answers side by side")
    suite = st.radio("prompts", ["harmful", "overalign"], horizontal=True)
    try:
        answers = responses_side_by_side(picked, suite)
    except SemsafeError as err:
        st.warning(str(err))
        st.stop()
    f1, f2, f3 = st.columns(3)
    only_changed = f1.checkbox("only answers that changed")
    only_refusals = f2.checkbox("only where someone refused")
    cats = sorted(answers["category"].dropna().unique()) if "category" in answers else []
    cat = f3.selectbox("category", ["all", *cats])
    resp_cols = [f"{r} | response" for r in picked if f"{r} | response" in answers]
    if only_changed and len(resp_cols) > 1:
        answers = answers[answers[resp_cols].nunique(axis=1) > 1]
    if only_refusals:
        ref_cols = [c for c in answers if c.endswith("| refused")]
        answers = answers[answers[ref_cols].fillna(False).any(axis=1)]
    if cat != "all":
        answers = answers[answers["category"] == cat]
    st.caption(f"{len(answers)} prompts")
    for _, row in answers.head(40).iterrows():
        st.markdown(f"**{html.escape(str(row['prompt']))}** " + (f"· _{row['category']}_" if cat == "all" and "category" in row and row["category"] else ""))
        cols = st.columns(len(resp_cols))
        first = row.get(resp_cols[0], "") if resp_cols else ""
        for col, rc in zip(cols, resp_cols):
            ref = rc.split(" | ")[0]
            verdicts = []
            if pd.notna(row.get(f"{ref} | refused")):
                verdicts.append("refused" if row[f"{ref} | refused"] else "answered")
            if pd.notna(row.get(f"{ref} | harm_prob")):
                verdicts.append(f"harm {row[f'{ref} | harm_prob']:.2f}")
            body = html.escape(str(row.get(rc, ""))) if rc == resp_cols[0] else word_diff_html(str(first), str(row.get(rc, "")))
            col.markdown(f"<div style='font-size:0.85em'><b>{html.escape(ref)}</b> · {' · '.join(verdicts)}<br>{body}</div>",
                         unsafe_allow_html=True)
        st.divider()

st.subheader("Data-efficiency experiments")
results = sorted((runs_dir() / "experiments").glob("*/results.csv"))
if not results:
    st.caption("None yet: `semsafe experiment data-efficiency` writes them.")
else:
    from semsafe.experiment import efficiency_figures
    chosen = st.selectbox("experiment", results, format_func=lambda p: p.parent.name, index=len(results) - 1)
    frame = pd.read_csv(chosen)
    if "error" in frame:
        frame = frame[frame["error"].isna()]
    if (frame["objective"] == "base").any() and (frame["objective"] != "base").any():
        for fig in efficiency_figures(frame):
            st.plotly_chart(fig, width="stretch")
    st.dataframe(frame, hide_index=True)
