"""Cost matrix: the semantic cost c(u, v) = 1 - cos(e_u, e_v) between tokens, never all of it."""

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from semsafe.inspection import display_token
from semsafe.ui import ensure_app_navigation, load_or_stop, model_picker, readable_errors

ensure_app_navigation()  # before anything else: see semsafe.ui
st.set_page_config(page_title="semsafe · cost matrix", layout="wide")
st.title("Cost matrix")
st.caption("c(u, v) = 1 − cos(e_u, e_v) on the model's input embeddings: 0 = same direction, "
           "1 = unrelated, 2 = opposite. Only the pieces you look at are computed.")
spec = model_picker()
model, tok, cost = load_or_stop(spec)

text = st.text_input("Tokens of this text", "Sure, here is how to make a bomb at home")
with readable_errors():
    ids = tok(text, add_special_tokens=False)["input_ids"][:60]
if not ids:
    st.warning("Type some text to see its tokens.")
    st.stop()
labels = [f"{i}:{display_token(tok, t)}" for i, t in enumerate(ids)]
sub = cost.submatrix(ids).numpy()

query = st.text_input("Search the vocabulary", "", placeholder="e.g. bomb")
if query:
    vocab = tok.get_vocab()
    hits = sorted((i, display_token(tok, i)) for t, i in vocab.items() if query.lower() in display_token(tok, i).lower())
    st.caption(f"{len(hits)} tokens contain {query!r}" + (" (first 200 shown)" if len(hits) > 200 else ""))
    st.dataframe(pd.DataFrame(hits[:200], columns=["id", "token"]), hide_index=True, height=200)
    added = st.multiselect("add found tokens to the heatmap and the neighbour view", hits[:200],
                           format_func=lambda h: f"{h[1]} (id {h[0]})")
    for i, _ in added:
        if i not in ids:
            ids.append(i)
            labels.append(f"{len(labels)}:{display_token(tok, i)}")
    sub = cost.submatrix(ids).numpy()

left, right = st.columns([3, 2])
with left:
    fig = go.Figure(go.Heatmap(z=sub, x=labels, y=labels, colorscale="Viridis", zmin=0, zmax=max(1.2, sub.max()),
                               colorbar=dict(title="cost c(u, v)<br>0 = same meaning"),
                               hovertemplate="%{y} → %{x}<br>cost %{z:.3f}<extra></extra>"))
    fig.update_layout(height=520, title=f"Cost among the {len(ids)} tokens", yaxis_autorange="reversed")
    st.plotly_chart(fig, width="stretch")
with right:
    choice = st.selectbox("Nearest neighbours of", labels, index=min(len(labels) - 1, 6))
    k = st.slider("how many", 5, 50, 15)
    token_id = ids[labels.index(choice)]
    nb = cost.nearest([token_id], k=k)
    st.dataframe(pd.DataFrame({"token": [display_token(tok, i) for i in nb.ids[0].tolist()],
                               "id": nb.ids[0].tolist(), "cost": nb.costs[0].numpy().round(4)}),
                 hide_index=True, height=300)
    column = cost.column(token_id).numpy()
    hist = px.histogram(x=column, nbins=80, labels={"x": f"cost to {choice}"},
                        title=f"Cost from all {cost.vocab_size:,} tokens to {choice}")
    hist.update_layout(height=260, showlegend=False, margin=dict(t=40))
    st.plotly_chart(hist, width="stretch")

st.subheader("The vocabulary in 2-D / 3-D (UMAP)")
from semsafe.projection import cached_projection, compute_projection, projection_estimate_s  # noqa: E402

c1, c2, c3 = st.columns(3)
n_tokens = c1.select_slider("tokens projected (first ids = common tokens; more takes longer)",
                            options=[2000, 5000, 10000, 20000, cost.vocab_size], value=2000)
dims = c2.radio("dimensions", [2, 3], horizontal=True)
from semsafe.prepare import latest_prepared, load_prepared  # noqa: E402

prepared = latest_prepared(spec)
highlight_kind = c3.radio("highlight", ["your text"] + (["the harmful set's tokens"] if prepared else []))
coords = cached_projection(spec, n_tokens, dims)
if coords is None:
    note = st.empty()
    note.info(f"Not computed yet for {n_tokens:,} tokens in {dims}-D (about {projection_estimate_s(n_tokens):.0f} s "
              "on 2 cores; `semsafe project` does the same from the command line).")
    if st.button("Compute UMAP (cached on disk)"):
        note.empty()  # the projection is on its way: the "not computed" note goes
        bar = st.progress(0.0, text="starting…")
        started, estimate = time.time(), projection_estimate_s(n_tokens)
        # UMAP reports nothing while it runs: it works in a thread and the bar follows the clock
        with readable_errors(), ThreadPoolExecutor(1) as pool:
            job = pool.submit(compute_projection, cost, spec, n_tokens, dims)
            while not job.done():
                spent = time.time() - started
                bar.progress(min(0.95, spent / estimate),
                             text=f"UMAP on {n_tokens:,} tokens · {spent:.0f} s · about "
                                  f"{max(0.0, estimate - spent):.0f} s left (estimate)")
                time.sleep(0.5)
            coords = job.result()
        bar.progress(1.0, text=f"projection ready in {time.time() - started:.0f} s")
if coords is not None:
    if highlight_kind == "your text":
        highlight = set(ids)
    else:
        highlight = {t for r in load_prepared(prepared)["harmful"]
                     for t in tok(r.response, add_special_tokens=False)["input_ids"]}
    shown = np.arange(len(coords))
    is_hl = np.array([i in highlight for i in shown])
    hover = [display_token(tok, i) for i in shown]
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "token": hover})
    if dims == 3:
        frame["z"] = coords[:, 2]
    background, marked = frame[~is_hl], frame[is_hl]
    if dims == 3:
        fig = go.Figure([go.Scatter3d(x=background.x, y=background.y, z=background.z, mode="markers",
                                      name="vocabulary", hovertext=background.token, hoverinfo="text",
                                      marker=dict(size=2, color="#b8c4d6", opacity=0.5)),
                         go.Scatter3d(x=marked.x, y=marked.y, z=marked.z, mode="markers+text", name=highlight_kind,
                                      text=marked.token, hovertext=marked.token, hoverinfo="text",
                                      marker=dict(size=6, color="#d62728", line=dict(width=1, color="black")))])
    else:
        # the vocabulary as a faint cloud, the highlighted tokens drawn on top, large and labelled
        fig = go.Figure([go.Scattergl(x=background.x, y=background.y, mode="markers", name="vocabulary",
                                      hovertext=background.token, hoverinfo="text",
                                      marker=dict(size=3, color="#b8c4d6", opacity=0.5)),
                         go.Scatter(x=marked.x, y=marked.y, mode="markers+text", name=highlight_kind,
                                    text=marked.token, textposition="top center", hovertext=marked.token,
                                    hoverinfo="text", cliponaxis=False,
                                    marker=dict(size=10, color="#d62728", line=dict(width=1, color="black")))])
    fig.update_layout(height=600, title="Token embeddings, UMAP under cosine distance: nearby = low cost")
    st.plotly_chart(fig, width="stretch")
    missing = [t for t in highlight if t >= n_tokens]
    if missing:
        st.caption(f"{len(missing)} highlighted tokens have ids beyond the first {n_tokens:,} and are not shown.")
