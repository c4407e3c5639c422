"""Setting up the server process: flags, options, devices, bind -> handshake -> serve."""

__all__: list[str] = []
