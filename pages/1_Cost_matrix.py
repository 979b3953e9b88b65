"""Cost matrix: the semantic cost c(u, v) = 1 - cos(e_u, e_v) between tokens, never all of it."""

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from semsafe.inspection import display_token
from semsafe.ui import load_or_stop, model_picker, readable_errors

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

left, right = st.columns([3, 2])
with left:
    fig = go.Figure(go.Heatmap(z=sub, x=labels, y=labels, colorscale="Viridis", zmin=0, zmax=max(1.2, sub.max()),
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
from semsafe.projection import cached_projection, compute_projection  # noqa: E402

c1, c2, c3 = st.columns(3)
n_tokens = c1.select_slider("tokens projected (first ids = common tokens)",
                            options=[2000, 5000, 10000, 20000, cost.vocab_size], value=5000)
dims = c2.radio("dimensions", [2, 3], horizontal=True)
from semsafe.prepare import latest_prepared, load_prepared  # noqa: E402

prepared = latest_prepared(spec)
highlight_kind = c3.radio("highlight", ["your text"] + (["the harmful set's tokens"] if prepared else []))
coords = cached_projection(spec, n_tokens, dims)
if coords is None:
    st.info("Not computed yet for these settings.")
    if st.button("Compute UMAP (cached on disk)"):
        with st.status(f"Projecting {n_tokens:,} token embeddings…", expanded=True) as status:
            with readable_errors():
                coords = compute_projection(cost, spec, n_tokens, dims, on_stage=status.write)
            status.update(label="Projection ready", state="complete")
if coords is not None:
    if highlight_kind == "your text":
        highlight = set(ids)
    else:
        highlight = {t for r in load_prepared(prepared)["harmful"]
                     for t in tok(r.response, add_special_tokens=False)["input_ids"]}
    shown = np.arange(len(coords))
    is_hl = np.array([i in highlight for i in shown])
    hover = [display_token(tok, i) for i in shown]
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "token": hover,
                          "group": np.where(is_hl, highlight_kind, "vocabulary")})
    if dims == 3:
        frame["z"] = coords[:, 2]
        fig = px.scatter_3d(frame, x="x", y="y", z="z", color="group", hover_name="token", opacity=0.6)
        fig.update_traces(marker_size=2)
    else:
        fig = px.scatter(frame, x="x", y="y", color="group", hover_name="token", opacity=0.6,
                         render_mode="webgl")
        fig.update_traces(marker_size=3)
    fig.update_layout(height=600)
    st.plotly_chart(fig, width="stretch")
    missing = [t for t in highlight if t >= n_tokens]
    if missing:
        st.caption(f"{len(missing)} highlighted tokens have ids beyond the first {n_tokens:,} and are not shown.")
