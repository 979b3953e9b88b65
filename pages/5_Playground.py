"""Playground: EMD on a toy vocabulary you can see, next to cross-entropy and NLL, and the three
objectives (NLL ascent, EMD, its lower bound) optimised step by step from the same start."""

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from semsafe.ui import ensure_app_navigation, glossary
from semsafe.toy import OBJECTIVES, bounded_vs_unbounded, normalise, optimise, toy_cost, toy_quantities

ensure_app_navigation()  # before anything else: see semsafe.ui
st.set_page_config(page_title="semsafe · playground", layout="wide")
st.title("Playground")
st.caption("Eight words with 2-D embeddings (angle = meaning). Set the model's distribution P and "
           "a target Q; the exact transport plan is solved by POT as you move the sliders.")

glossary()  # no model on this page, so no model picker: the glossary stands alone in the sidebar
words, cost, emb = toy_cost()
left, mid, right = st.columns([1, 1, 2])
with left:
    st.markdown("**Model distribution P**")
    p_raw = [st.slider(f"P({w})", 0.0, 1.0, v, 0.01, key=f"p-{w}")
             for w, v in zip(words, [0.05, 0.05, 0.1, 0.1, 0.3, 0.2, 0.1, 0.1])]
with mid:
    st.markdown("**Target Q**")
    q_raw = [st.slider(f"Q({w})", 0.0, 1.0, v, 0.01, key=f"q-{w}")
             for w, v in zip(words, [0.7, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])]
    target = st.selectbox("harmful token y (for EMD to one-hot and NLL)", words, index=0)
p, q = normalise(p_raw), normalise(q_raw)
t = words.index(target)
for name, raw, dist in (("P", p_raw, p), ("Q", q_raw, q)):
    if sum(raw) <= 0:
        st.warning(f"All of {name}'s sliders are 0: a distribution needs some mass, so {name} is uniform here.")
    st.caption(f"{name} as used (sliders rescaled to sum to 1): "
               + ", ".join(f"{w} {v:.2f}" for w, v in zip(words, dist.tolist())))
vals = toy_quantities(p, q, t, cost)

with right:
    fig = go.Figure()
    theta = np.linspace(0, 2 * np.pi, 200)
    fig.add_trace(go.Scatter(x=np.cos(theta), y=np.sin(theta), mode="lines", line_color="#ddd", showlegend=False))
    for i, j in np.argwhere(vals["plan"] > 1e-9):
        a, b = int(vals["rows"][i]), int(vals["cols"][j])
        mass = float(vals["plan"][i, j])
        fig.add_trace(go.Scatter(x=[emb[a, 0], emb[b, 0]], y=[emb[a, 1], emb[b, 1]], mode="lines",
                                 line=dict(width=1 + 14 * mass, color="rgba(30,100,200,0.5)"),
                                 hovertext=f"{words[a]} → {words[b]}: {mass:.3f}", hoverinfo="text",
                                 showlegend=False))
    fig.add_trace(go.Scatter(x=emb[:, 0], y=emb[:, 1], mode="markers",
                             marker=dict(size=10 + 40 * p.numpy(), color="orange"), name="P (size)",
                             hovertext=[f"{w}: P {v:.2f}" for w, v in zip(words, p.tolist())], hoverinfo="text"))
    # labels sit outside the circle, so a large marker never hides its word
    fig.add_trace(go.Scatter(x=1.28 * emb[:, 0], y=1.28 * emb[:, 1], mode="text", text=words,
                             showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=emb[:, 0], y=emb[:, 1], mode="markers",
                             marker=dict(size=np.where(q.numpy() > 0, 10 + 40 * q.numpy(), 0), color="rgba(0,0,0,0)",
                                         line=dict(width=2, color="green")), name="Q (ring)"))
    fig.update_layout(height=460, xaxis=dict(scaleanchor="y", range=[-1.4, 1.4]), yaxis_range=[-1.4, 1.4],
                      title="Optimal transport plan (line width = mass moved)")
    st.plotly_chart(fig, width="stretch")

m = st.columns(6)
m[0].metric("EMD(P, Q)", f"{vals['emd']:.4f}")
m[1].metric("lower bound ½‖μP−μQ‖²", f"{vals['lower_bound']:.4f}")
m[2].metric(f"EMD(P, δ {target})", f"{vals['emd_to_target']:.4f}")
m[3].metric(f"bound to δ {target}", f"{vals['lb_to_target']:.4f}")
m[4].metric("cross-entropy H(Q, P)", f"{vals['cross_entropy']:.3f}")
m[5].metric(f"NLL = −log P({target})", f"{-vals['neg_nll_target']:.3f}")

st.subheader("Why maximise EMD and not NLL?")
other = st.selectbox("P's mass moves from the harmful token to", [w for w in words if w != target], index=3)
curve = bounded_vs_unbounded(cost, t, words.index(other))
fig = go.Figure([go.Scatter(x=curve["p_target"], y=curve["emd"], name=f"EMD(P, δ {target}) — bounded by 2"),
                 go.Scatter(x=curve["p_target"], y=curve["nll"], name=f"−log P({target}) — grows without bound")])
fig.update_layout(xaxis_type="log", xaxis_title=f"P({target})", xaxis_autorange="reversed", height=380)
st.plotly_chart(fig, width="stretch")
st.markdown(
    "Gradient ascent on the harmful answer's NLL = −log P(y) can always gain more by crushing P(y) "
    "further (NLL is unbounded above; −NLL = log P never exceeds 0), "
    "so it never stops and drags the rest of the model with it. The EMD penalty saturates at "
    f"c({other}, {target}) = {float(cost.block([words.index(other)], [t])):.3f} once the mass sits on "
    f"**{other}**: it rewards moving to *dissimilar* words, then stops pushing. The lower bound equals "
    "the EMD when P is one-hot and falls below it as P spreads over words pointing different ways.")

st.subheader("Train it yourself: three objectives from the same start")
st.caption(f"Start from P above and take plain gradient-ascent steps on its logits, pushing away from "
           f"**{target}** with each objective. Move the step slider or press play.")
c1, c2 = st.columns(2)
steps = c1.slider("steps", 10, 200, 60, 10)
lr = c2.select_slider("step size", [0.1, 0.3, 1.0, 3.0], value=1.0)
runs = {name: optimise(cost, t, p, name, steps=steps, lr=lr) for name in OBJECTIVES}
frames = pd.DataFrame([{"step": k, "objective": OBJECTIVES[name], "word": w, "P": float(r["p"][k][i])}
                       for name, r in runs.items() for k in range(0, steps + 1, max(1, steps // 30))
                       for i, w in enumerate(words)])
bars = px.bar(frames, x="word", y="P", color="objective", barmode="group", animation_frame="step",
              range_y=[0, 1], title="Where the probability mass goes (words in order of their angle on the circle)")
bars.update_layout(height=420, yaxis_title="probability", xaxis_title="word")
st.plotly_chart(bars, width="stretch")
left, right = st.columns(2)
with left:
    traj = go.Figure()
    for name, dash in (("emd", "solid"), ("lb", "dash")):
        r = runs[name]
        traj.add_trace(go.Scatter(y=r["emd"], name=f"exact EMD, run: {OBJECTIVES[name]}", line_dash=dash))
        traj.add_trace(go.Scatter(y=r["lb"], name=f"lower bound, run: {OBJECTIVES[name]}", line_dash=dash,
                                  line_color="gray"))
    traj.add_trace(go.Scatter(y=runs["nll"]["emd"], name=f"exact EMD, run: {OBJECTIVES['nll']}", line_dash="dot"))
    traj.add_hline(y=2.0, line_dash="dot", annotation_text="EMD ceiling 2")
    traj.update_layout(height=380, xaxis_title="step", yaxis_title=f"EMD to δ {target} (higher = further)",
                       title="Exact EMD and its lower bound on the same axes", legend=dict(font_size=10))
    st.plotly_chart(traj, width="stretch")
with right:
    grads = go.Figure([go.Scatter(y=r["grad_norm"], name=OBJECTIVES[name]) for name, r in runs.items()])
    grads.add_trace(go.Scatter(y=runs["nll"]["nll"], name="NLL itself (the ascent's value)", line_dash="dot",
                               yaxis="y2"))
    grads.update_layout(height=380, xaxis_title="step", yaxis_title="gradient norm (on the logits)",
                        yaxis2=dict(overlaying="y", side="right", title="NLL"), title="Each objective's push",
                        legend=dict(font_size=10))
    st.plotly_chart(grads, width="stretch")
final = {name: r["p"][-1] for name, r in runs.items()}
far = max(words, key=lambda w: float(cost.block([words.index(w)], [t])))
st.markdown(
    f"After {steps} steps: NLL ascent left P({target}) = {final['nll'][t]:.1e} and its value is still "
    f"climbing (NLL {runs['nll']['nll'][-1]:.1f}, no ceiling); EMD settled at {runs['emd']['emd'][-1]:.3f} "
    f"(≤ 2) with most mass on words far from {target} (the farthest is **{far}**); the bound stays below the "
    "exact EMD at every step and is maximised by putting the mass on *one* far word.")
