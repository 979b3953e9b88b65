"""Fine-tune: a form becomes a `semsafe train` command, run as a background process."""

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from semsafe.config import load_config
from semsafe.errors import SemsafeError
from semsafe.evaluate import SUITES
from semsafe.jobs import (cancel, eta_seconds, launch_eval, launch_training, list_jobs, log_tail, shell_text,
                          train_command)
from semsafe.objectives import OBJECTIVES
from semsafe.runs import list_runs
from semsafe.ui import ensure_app_navigation, model_picker

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

ensure_app_navigation()  # before anything else: see semsafe.ui
st.set_page_config(page_title="semsafe · fine-tune", layout="wide")
st.title("Fine-tune")
st.caption("Runs as a separate process (one job at a time on this machine; others wait in the "
           "queue). Closing the page does not stop it.")
spec = model_picker()

DEFAULTS = load_config(str(CONFIGS / "tasft-emd.yaml"))  # the form starts from the shipped config
DESCRIPTIONS = {
    "sft": "fine-tune on benign answers only (the λ = 0 baseline)",
    "emd": "TA-SFT: push next-token distributions away from harmful tokens in EMD (exact)",
    "emd_lb": "TA-SFT with the centroid lower bound on that EMD",
    "ga": "gradient ascent on the harmful answers' NLL (unbounded)",
    "unlikelihood": "push down each harmful token's probability, −log(1 − p)",
    "npo": "negative preference optimisation against the frozen base model",
    "refusal_sft": "fine-tune harmful prompts onto written refusals",
}

with st.container(border=True):  # not a form: the command below follows every edit
    c1, c2, c3, c4 = st.columns(4)
    objective = c1.selectbox("objective", list(OBJECTIVES), index=list(OBJECTIVES).index(DEFAULTS.objective),
                             format_func=lambda name: f"{name}: {DESCRIPTIONS[name]}")
    modes = ["ratio", "fixed"]
    mode = c2.radio("λ mode", modes, index=modes.index(DEFAULTS.lambda_mode), horizontal=True,
                    help="ratio: λ is the target ratio of the harmful term's gradient norm to the retain "
                         "term's, calibrated on the first batches, so objectives compare at equal strength. "
                         "fixed: λ multiplies the harmful term as given.")
    lam = c2.number_input("λ (ratio, or weight of the harmful term)", 0.0, 100.0, float(DEFAULTS.lam), 0.05)
    n_harmful = c3.number_input("harmful-set size", 1, 1000, int(DEFAULTS.data.n_harmful or 30))
    steps = c4.number_input("steps", 1, 100000, int(DEFAULTS.train.steps))
    c5, c6, c7, c8 = st.columns(4)
    lr = c5.number_input("learning rate", 1e-6, 1.0, float(DEFAULTS.train.lr), format="%.6f")
    rank = c6.number_input("LoRA rank", 1, 256, int(DEFAULTS.lora.r))
    seed = c7.number_input("training seed", 0, 10**6, int(DEFAULTS.train.seed))
    batch = c8.number_input("batch size", 1, 256, int(DEFAULTS.train.batch_size))
    overrides = {"model": spec, "objective": objective, "lambda_mode": mode, "lambda": lam,
                 "data.n_harmful": int(n_harmful), "train.steps": int(steps), "train.lr": lr,
                 "lora.r": int(rank), "train.seed": int(seed), "train.batch_size": int(batch)}
    st.caption("The command this launches (the run id is added when it starts):")
    st.code(shell_text(train_command(str(CONFIGS / "tasft-emd.yaml"), overrides)), language="bash",
            wrap_lines=True)
    launched = st.button("Launch", type="primary")
if launched:
    try:
        run = launch_training(str(CONFIGS / "tasft-emd.yaml"), overrides)
        st.session_state.watch = run.id
        st.success(f"Started run {run.id}")
    except SemsafeError as err:
        st.error(str(err))

runs = list_runs()
queue = [r for r in runs if r.state == "queued"]
if queue:
    st.info("Queue: " + ", ".join(f"{r.id} ({r.status.get('message', '')})" for r in queue))
if not runs:
    st.stop()
ids = [r.id for r in runs]
default = ids.index(st.session_state.watch) if st.session_state.get("watch") in ids else 0
watch = st.selectbox("Run", ids, index=default)


@st.fragment(run_every=2.0)
def live(run_id: str):
    from semsafe.runs import Run
    run = Run.open(run_id)
    status = run.status
    state = run.state  # "died" when the status says running but no process holds the run
    step, total = status.get("step") or 0, status.get("total_steps") or 0
    eta = eta_seconds(run)
    label = f"{state} · step {step}/{total or '?'}" + (f" · about {eta:.0f} s left" if eta and state == "running" else "")
    if state in ("queued", "running") and not step and status.get("message"):
        label += f" · {status['message']}"  # e.g. loading the model, preparing data, waiting for the device
    st.progress(min(step / total, 1.0) if total else 0.0, text=label)
    if state == "died":
        st.error(f"The training process died at step {step} (killed or crashed). Checkpoints are kept: "
                 f"`semsafe train --resume {run_id}` continues it.")
    elif state == "failed":
        st.error(status.get("message", "failed"))
    elif state == "cancelled":
        st.warning(status.get("message", "cancelled"))
    elif state == "done":
        st.success(f"done: adapter in {run.path / 'adapter'}")
        if not (run.path / "eval" / "summary.json").exists():
            if st.button("Evaluate and compare with the base model", key=f"eval-{run_id}",
                         disabled=any(j.status.get("subject") == run_id and j.state in ("queued", "running")
                                      for j in list_jobs())):
                launch_eval(["--run", run_id], run_id, list(SUITES))
                st.info("Evaluation started; its progress is on the Compare page.")
        else:
            st.page_link("pages/4_Compare.py", label="Compare this run with the base model",
                         icon=":material/compare_arrows:")
    if state in ("queued", "running") and st.button("Cancel", key=f"cancel-{run_id}"):
        cancel(run)
    rows = run.metrics()
    if rows:
        frame = pd.DataFrame(rows)
        terms = [c for c in ("loss", "ce_retain", "emd_harmful", "lb_harmful", "nll_harmful", "unlikelihood",
                             "npo", "ce_refusal") if c in frame]
        # connectgaps: a term logged every few steps (train.harmful_emd_every) is still one line
        fig = go.Figure([go.Scatter(x=frame["step"], y=frame[c], mode="lines+markers", name=c, connectgaps=True)
                         for c in terms])
        fig.update_layout(height=360, xaxis_title="step", yaxis_title="loss and its terms", margin=dict(t=20))
        st.plotly_chart(fig, width="stretch", key=f"curves-{run_id}")
        st.caption("emd_harmful: mean EMD to the harmful answers' tokens — higher = further from them. "
                   "The total loss is CE(retain) + λ·H and can *rise* while the harmful term works: "
                   "moving away from the harmful answers costs some fit on the benign ones (ce_retain "
                   "rises), so read emd_harmful and ce_retain separately.")
        if "grad_ratio" in frame:
            g = frame.dropna(subset=["grad_ratio"])
            ratio = go.Figure([go.Scatter(x=g["step"], y=g["grad_ratio"], mode="lines+markers",
                                          name="‖λ∇H‖ / ‖∇CE(retain)‖")])
            ratio.update_layout(height=240, xaxis_title="step", yaxis_title="gradient-norm ratio",
                                title="Strength of the harmful term relative to the retain term",
                                margin=dict(t=40))
            st.plotly_chart(ratio, width="stretch", key=f"ratio-{run_id}")
    with st.expander("log"):
        st.code(log_tail(run) or "(no output yet)")
    if status.get("command"):
        st.caption(f"command: {status['command']}")


live(watch)
