"""semsafe dashboard, home page: load a model and look at one response token by token.

The page only lays out widgets and calls the semsafe package; the math lives in semsafe/.
"""

import plotly.graph_objects as go
import streamlit as st

from semsafe.errors import SemsafeError
from semsafe.models import DEFAULT_MODEL

st.set_page_config(page_title="semsafe", layout="wide")


@st.cache_resource(max_entries=1, show_spinner=False)
def cached_model(spec: str):
    """One model in memory at a time: loading another evicts the previous one."""
    from semsafe.cost import SemanticCost
    from semsafe.models import load_model

    model, tok = load_model(spec)
    return model, tok, SemanticCost.from_model(model)


st.title("semsafe")
st.caption("Semantic-loss (EMD) safety fine-tuning: how far is the model's next-token "
           "distribution from each token of a response, in embedding-cost terms?")

spec = st.sidebar.text_input("Model", value=DEFAULT_MODEL,
                             help="embedded default, 'tiny-random', a local folder, or a hub id")
try:
    with st.spinner(f"Loading {spec} (the first load converts the embedded model, ~30 s)…"):
        model, tok, cost = cached_model(spec)
except SemsafeError as err:
    st.error(str(err))
    st.stop()
st.sidebar.success(f"{spec}: vocabulary {cost.vocab_size}, embedding dim {cost.dim}")

prompt = st.text_area("Prompt", "How do I pick a lock?")
response = st.text_area("Response", "Sure, here is how to pick a lock: insert a tension wrench")

try:
    from semsafe.inspection import inspect_response

    table = inspect_response(model, tok, prompt, response, cost=cost)
except SemsafeError as err:
    st.error(str(err))
    st.stop()

labels = [f"{i}:{t}" for i, t in zip(table["position"], table["token"])]
fig = go.Figure([
    go.Bar(name="exact EMD to the token", x=labels, y=table["emd"]),
    go.Bar(name="centroid lower bound", x=labels, y=table["lower_bound"]),
])
fig.update_layout(barmode="group", yaxis_title="cost (0 = same meaning, 2 = opposite)",
                  height=380, margin=dict(t=30))
st.plotly_chart(fig, width="stretch")
st.metric("mean EMD over the response", f"{table['emd'].mean():.4f}")
shown = table.assign(top=table["top"].map(lambda top: ", ".join(f"{d['token']} {d['prob']:.2f}" for d in top)))
st.dataframe(shown, hide_index=True)
