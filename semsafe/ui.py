"""Streamlit plumbing shared by the dashboard pages: one cached model, the model picker, and
error display. Pages import from here and from the package; they hold no math."""

import contextlib
import os

import streamlit as st

from .errors import SemsafeError
from .models import DEFAULT_MODEL


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


def model_picker() -> str:
    """Sidebar text box for the model spec, shared across pages."""
    if "model_spec" not in st.session_state:
        st.session_state.model_spec = os.environ.get("SEMSAFE_MODEL", DEFAULT_MODEL)
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
