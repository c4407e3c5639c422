"""Dynamic batching (TF Serving's): parameters, merge/split/pad, the scheduler, the batching servable."""

__all__: list[str] = []
