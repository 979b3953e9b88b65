"""Streamlit plumbing shared by the dashboard pages: one cached model, the model picker, and
error display. Pages import from here and from the package; they hold no math."""

import contextlib
import os

import streamlit as st

from .errors import SemsafeError
from .paths import DEFAULT_MODEL


def ensure_app_navigation() -> None:
    """Rerun a page through app.py's navigation when Streamlit served it the old way.

    Until some session has run app.py (which calls ``st.navigation``), Streamlit serves the
    pages/ folder in its older multipage mode: the first visitor to a page URL on a freshly
    started server (a bookmark of /Compare) got that page without app.py, under a navigation of
    file names in file order, with "app" at the top. Each page calls this first; it clears that
    process-wide mode (what ``st.navigation`` itself does) and reruns, so app.py routes the same
    URL to the same page. Uses Streamlit's own flag; on a Streamlit without it, does nothing."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_resource(max_entries=1, show_spinner=False)
def cached_model(spec: str):
    """The model, its tokenizer and its semantic cost. max_entries=1: choosing another model
    unloads the previous one."""
    from .cost import SemanticCost
    from .models import load_model

    model, tok = load_model(spec)
    return model, tok, SemanticCost.from_model(model)


@st.cache_resource(max_entries=2, show_spinner=False)
def cached_run_model(run_id: str, runs_root: str):
    """A run's model (base + adapter) for before/after views; the base is the same weights with
    the adapter disabled, so one copy serves both."""
    from .cost import SemanticCost
    from .runs import Run

    model, tok = Run.open(run_id).load_model()
    with model.disable_adapter():
        cost = SemanticCost.from_model(model)
    return model, tok, cost


GLOSSARY = """
**Earth Mover's Distance (EMD)** — the least total cost of moving one probability distribution's
mass onto another's, where moving mass from token u to token v costs c(u, v).

**Semantic cost** — c(u, v) = 1 − cos(e_u, e_v) between token embeddings: 0 for the same
direction, up to 2 for opposite ones. Synonyms are cheap to move between.

**One-hot target** — the distribution that puts all mass on one token y (here: the next token
of a harmful answer). EMD to it has a closed form, 1 − ê_y·μ_P.

**Centroid lower bound** — ½‖μ_P − μ_Q‖² with μ the probability-weighted mean of unit
embeddings; never above the EMD, equal to it when both sides are one-hot.

**λ (lambda)** — the weight of the harmful-set term. In *ratio* mode it is the target ratio of
that term's gradient norm to the retain term's, so objectives compare at equal strength.

**Over-refusal** — refusing a safe prompt that only looks unsafe ("How do I kill a Python
process?"); the cost of over-alignment.

**Direction** — higher EMD to a harmful answer means the model moved further from it.
"""


def glossary() -> None:
    """The glossary, reachable from every page's sidebar."""
    with st.sidebar.expander("Glossary"):
        st.markdown(GLOSSARY)


def model_picker() -> str:
    """Sidebar text box for the model spec, shared across pages (with the glossary under it)."""
    if "model_spec" not in st.session_state:
        st.session_state.model_spec = os.environ.get("SEMSAFE_MODEL", DEFAULT_MODEL)
    glossary()
    return st.sidebar.text_input(
        "Model", key="model_spec",
        help="'smollm2-135m-instruct' (embedded), 'tiny-random', a local folder, or a hub id (online)")


def load_or_stop(spec: str):
    """Load the model with a spinner that says what is happening; a readable error stops the page."""
    try:
        with st.spinner(f"Loading {spec} (the first load converts the embedded model, about 30 s)…"):
            return cached_model(spec)
    except SemsafeError as err:
        st.error(str(err))
        st.stop()


@contextlib.contextmanager
def readable_errors():
    """Show a SemsafeError as a message in the page, never as a traceback."""
    try:
        yield
    except SemsafeError as err:
        st.error(str(err))
        st.stop()
