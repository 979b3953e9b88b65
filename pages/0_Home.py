"""Home: the model, caches, runs, and the lesson path (app.py routes here first)."""

import pandas as pd
import streamlit as st

from semsafe.compare import find_summary
from semsafe.errors import SemsafeError
from semsafe.runs import list_runs, runs_dir
from semsafe.ui import ensure_app_navigation, load_or_stop, model_picker

ensure_app_navigation()  # before anything else: see semsafe.ui
st.set_page_config(page_title="semsafe · home", page_icon=":material/shield:", layout="wide")
st.title("semsafe")
st.caption("Semantic-loss (EMD) safety fine-tuning: push a chat model away from its own harmful "
           "answers, and see why it works.")

spec = model_picker()
model, tok, cost = load_or_stop(spec)
st.sidebar.success(f"{spec}: vocabulary {cost.vocab_size:,}, embedding dim {cost.dim}")

col1, col2, col3 = st.columns(3)
with col1:
    from semsafe.models import DEFAULT_MODEL
    from semsafe.paths import cache_dir

    st.subheader("Caches")
    converted = (cache_dir() / "models" / DEFAULT_MODEL / "semsafe-manifest.json").exists()
    projections = list((cache_dir() / "projections").glob("*.npy"))
    evals = list((cache_dir() / "eval").glob("*/summary.json"))
    st.markdown(f"- converted embedded model: {'yes' if converted else '— (made on first load)'}\n"
                f"- UMAP projections: {len(projections)}\n"
                f"- base-model evaluations: {len(evals)}\n"
                f"- cache folder: `{cache_dir()}`")
with col2:
    st.subheader("Start here")
    st.caption("The lesson path, in order:")
    st.page_link("pages/1_Cost_matrix.py", label="1 · Cost matrix: which tokens are close", icon=":material/grid_on:")
    st.page_link("pages/2_EMD_inspector.py", label="2 · EMD inspector: the loss token by token", icon=":material/search:")
    st.page_link("pages/5_Playground.py", label="3 · Playground: EMD vs NLL, hands on", icon=":material/school:")
    st.page_link("pages/3_Fine_tune.py", label="4 · Fine-tune: train with the penalty", icon=":material/model_training:")
    st.page_link("pages/4_Compare.py", label="5 · Compare: before and after", icon=":material/compare_arrows:")
with col3:
    st.subheader("The loss in one line")
    st.latex(r"L = \mathrm{CE}_{\text{retain}} - \lambda\,\overline{\mathrm{EMD}}\big(P_\theta,\,\delta_{y^h_t}\big)")
    st.caption("Earth Mover's Distance (EMD) to a one-hot token is exact and cheap: 1 − ê_y·μ_P. "
               "It is bounded by 2; the harmful answer's NLL = −log P(y) is not, so gradient ascent "
               "on NLL can push it to infinity.")

st.subheader("Runs")
rows = []
for run in list_runs():
    try:
        status, config = run.status, run.config
    except SemsafeError as err:  # one damaged run folder must not hide the others
        st.warning(str(err))
        continue
    row = {"run": run.id, "state": run.state, "objective": config.get("objective"),
           "harmful-set size": (config.get("data") or {}).get("n_harmful"),
           "step": f"{status.get('step', 0)}/{status.get('total_steps', '?')}"}
    try:
        _, summary = find_summary(run.id)
        suites = summary.get("suites", {})
        row["harmful rate"] = (suites.get("harmful", {}).get("harmful_rate") or {}).get("mean")
        row["over-refusal"] = (suites.get("overalign", {}).get("over_refusal_rate") or {}).get("mean")
    except SemsafeError:
        pass
    rows.append(row)
if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
else:
    st.info(f"No runs yet in `{runs_dir()}`. Start one on the Fine-tune page.")
