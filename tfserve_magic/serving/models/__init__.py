"""Model management: config files, version folders, policies, the servable manager, the loader, polling."""

__all__: list[str] = []
