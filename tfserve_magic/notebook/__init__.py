"""The notebook side: magics, rendering, widgets, per-kernel defaults, Colab and Jupyter discovery."""

__all__: list[str] = []
