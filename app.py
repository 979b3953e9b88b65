"""semsafe dashboard: `streamlit run app.py`. The navigation, in the order of the lesson
(home → cost → inspector → playground → fine-tune → compare); each page is a file in pages/."""

import streamlit as st

st.set_page_config(page_title="semsafe", page_icon=":material/shield:", layout="wide")
st.navigation([
    st.Page("pages/0_Home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/1_Cost_matrix.py", title="Cost matrix", icon=":material/grid_on:", url_path="Cost_matrix"),
    st.Page("pages/2_EMD_inspector.py", title="EMD inspector", icon=":material/search:", url_path="EMD_inspector"),
    st.Page("pages/5_Playground.py", title="Playground", icon=":material/school:", url_path="Playground"),
    st.Page("pages/3_Fine_tune.py", title="Fine-tune", icon=":material/model_training:", url_path="Fine_tune"),
    st.Page("pages/4_Compare.py", title="Compare", icon=":material/compare_arrows:", url_path="Compare"),
]).run()
