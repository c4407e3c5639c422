"""Servers as seen from a kernel or a script: launch, reuse, records, supervision, stop."""

__all__: list[str] = []
