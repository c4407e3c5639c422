"""The model server: a TensorFlow-Serving-compatible REST server built on Tornado.

This package must never import IPython, ipywidgets or jupyter_server. Only ``loader`` imports
TensorFlow. Run it with ``python -m tfserve_magic.serving`` or the ``tfserve-server`` script.
"""

__all__: list[str] = []
