"""Streamlit helpers shared by the pages in pages/ (fashion_core itself never imports streamlit)."""
