"""Clients of a TF Serving compatible server (REST; works against real TensorFlow Serving too)."""

from tfserve_magic.client.rest import Client, Prediction, ServingError, VersionStatus

__all__ = ["Client", "Prediction", "ServingError", "VersionStatus"]
