"""fashion_core: the Fashion-MNIST training and evaluation engine behind the dashboard.

Import-safe: no work happens at import time, and nothing here imports streamlit.
"""
__version__ = "0.1.0"
