"""The bundled demo: ``python -m tfserve_magic.demo`` builds the demo models, serves them and predicts."""

__all__: list[str] = []
