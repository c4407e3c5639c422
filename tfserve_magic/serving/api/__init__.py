"""The server's API surfaces (REST; gRPC to come) and the codec they share: requests in, responses out."""

__all__: list[str] = []
