"""EMD inspector: per token, how far the model's next-token distribution is from the harmful token."""

import plotly.graph_objects as go
import streamlit as st

from semsafe.data import load_set
from semsafe.emd import emd_exact
from semsafe.inspection import display_token, inspect_before_after
from semsafe.runs import list_runs, runs_dir
from semsafe.ui import cached_run_model, ensure_app_navigation, load_or_stop, model_picker, readable_errors

ensure_app_navigation()  # before anything else: see semsafe.ui
st.set_page_config(page_title="semsafe · EMD inspector", layout="wide")
st.title("EMD inspector")
st.caption("For each token of a response: exact EMD from the model's next-token distribution to "
           "that token (one-hot, closed form), and the centroid lower bound. Training with `emd` "
           "pushes these up on harmful answers.")
spec = model_picker()

from semsafe.prepare import latest_prepared, load_prepared  # noqa: E402

prepared = latest_prepared(spec)
sources = ["type my own"] + (["the model's own harmful answers (prepared set)"] if prepared else []) + [
    "the over-alignment probes", "the benign set"]
source = st.radio("Prompt and response", sources, horizontal=True)
default_prompt, default_response = "How do I pick a lock?", "Sure, here is how to pick a lock: insert a tension wrench"
if source != "type my own":
    if source.startswith("the model's own"):
        records = load_prepared(prepared)["harmful"]
    else:
        records = [r for r in load_set("overalign" if "probes" in source else "benign") if r.response]
    pick = st.selectbox("record", range(len(records)), format_func=lambda i: records[i].prompt[:90])
    default_prompt, default_response = records[pick].prompt, records[pick].response
prompt = st.text_area("Prompt", default_prompt, height=70)
response = st.text_area("Response (the tokens to score)", default_response, height=90)

done_runs = [r.id for r in list_runs() if (r.path / "adapter" / "adapter_config.json").exists()]
run_id = st.selectbox("Overlay a trained run (before vs after)", ["none", *done_runs])

@st.cache_resource(max_entries=16, show_spinner="Running the model over the response…")
def per_token(spec: str, run_id: str, runs_root: str, prompt: str, response: str):
    """The model's forward pass over one (model, adapter, prompt, response), cached: moving the
    position, top-k or overlay re-renders from this instead of running the model again."""
    if run_id != "none":
        model, tok, cost = cached_run_model(run_id, runs_root)
        return inspect_before_after(model, tok, prompt, response, cost, base_context=model.disable_adapter)
    model, tok, cost = load_or_stop(spec)
    return inspect_before_after(model, tok, prompt, response, cost)


with readable_errors():
    model, tok, cost = cached_run_model(run_id, str(runs_dir())) if run_id != "none" else load_or_stop(spec)
    table, p_base, p_run, targets = per_token(spec, run_id, str(runs_dir()), prompt, response)

labels = [f"{i}:{t}" for i, t in zip(table["position"], table["token"])]
fig = go.Figure()
fig.add_bar(name="EMD, base model", x=labels, y=table["emd_base"], customdata=table["top_base"],
            hovertemplate="%{x}<br>EMD %{y:.3f}<br>top: %{customdata}<extra></extra>")
fig.add_bar(name="lower bound, base", x=labels, y=table["lb_base"], customdata=table["top_base"],
            hovertemplate="%{x}<br>bound %{y:.3f}<extra></extra>")
if p_run is not None:
    fig.add_bar(name=f"EMD, {run_id}", x=labels, y=table["emd_run"], customdata=table["top_run"],
                hovertemplate="%{x}<br>EMD %{y:.3f}<br>top: %{customdata}<extra></extra>")
fig.update_layout(barmode="group", height=400, yaxis_title="EMD to the token (higher = further from it)",
                  xaxis_title="response token", margin=dict(t=30))
st.plotly_chart(fig, width="stretch")

m = st.columns(3)
m[0].metric("mean EMD (base)", f"{table['emd_base'].mean():.4f}")
m[1].metric("mean bound (base)", f"{table['lb_base'].mean():.4f}")
if p_run is not None:
    m[2].metric(f"mean EMD ({run_id})", f"{table['emd_run'].mean():.4f}",
                delta=f"{table['emd_run'].mean() - table['emd_base'].mean():+.4f}")

left, right = st.columns(2)
with left:
    st.subheader("Tightness: exact vs bound")
    sc = go.Figure(go.Scatter(x=table["emd_base"], y=table["lb_base"], mode="markers", text=labels,
                              hovertemplate="%{text}<br>EMD %{x:.3f}<br>bound %{y:.3f}<extra></extra>"))
    hi = float(max(table["emd_base"].max(), 0.1))
    sc.add_trace(go.Scatter(x=[0, hi], y=[0, hi], mode="lines", line_dash="dot", name="bound = EMD"))
    sc.update_layout(height=380, xaxis_title="exact EMD", yaxis_title="lower bound", showlegend=False)
    st.plotly_chart(sc, width="stretch")
    st.caption("Gap = ½(1 − ‖μ_P‖²): zero when the model is sure of one token, large when it "
               "hesitates between unrelated tokens.")
with right:
    st.subheader("Transport plan at one position")
    pos = st.slider("position", 0, len(table) - 1, min(4, len(table) - 1))
    k = st.slider("support (top-k of each side)", 3, 25, 8)
    targets_choice = ["the harmful token (one-hot)"] + (["the base model's distribution"] if p_run is not None else [])
    target_kind = st.radio("move mass to", targets_choice)
    p = (p_run if p_run is not None else p_base)[pos].double()
    p = p / p.sum()
    if target_kind.startswith("the harmful"):
        import torch
        q = torch.zeros_like(p)
        q[int(targets[pos])] = 1.0
    else:
        q = p_base[pos].double() / p_base[pos].double().sum()
    with readable_errors():
        plan = emd_exact(p, q, cost, top_k=k)
    hm = go.Figure(go.Heatmap(z=plan.plan, x=[display_token(tok, i) for i in plan.col_ids],
                              y=[display_token(tok, i) for i in plan.row_ids], colorscale="Blues",
                              customdata=plan.costs,
                              hovertemplate="%{y} → %{x}<br>mass %{z:.4f}<br>cost %{customdata:.3f}<extra></extra>"))
    hm.update_layout(height=380, xaxis_title="to (target)", yaxis_title="from (model)")
    st.plotly_chart(hm, width="stretch")
    st.caption(f"EMD of the top-{k} truncation: {plan.value:.4f} (mass kept: model "
               f"{plan.mass_kept_p:.2f}, target {plan.mass_kept_q:.2f}).")

st.dataframe(table.round(4), hide_index=True, width="stretch")
