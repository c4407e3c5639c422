"""The root of every error tfserve_magic raises on purpose, and the map of the hierarchy.

Catch :class:`TFServeError` to handle anything this package reports; catch a subclass to handle
one kind. Each subclass lives next to the code that raises it (so the serving core needs nothing
from the Jupyter side), and all of them descend from this one root::

    TFServeError
    ├── tfserve_magic.client.ServingError             a server refused a request or could not be
    │                                                  reached (.status: HTTP status, 0 if none;
    │                                                  .message: TF Serving's own text)
    ├── tfserve_magic.client.RequestError             a call the client cannot make as asked
    ├── tfserve_magic.status.ProtocolError            an answer that is not our handshake or
    │                                                  server description
    ├── tfserve_magic.lifecycle.launcher.LaunchError   start() could not bring a server up
    ├── tfserve_magic.lifecycle.refusals.UnknownServer   no server by that name (or for that model)
    ├── tfserve_magic.lifecycle.refusals.AmbiguousName   several would do (or none runs): name one
    ├── tfserve_magic.lifecycle.refusals.NotOurServer    a remote asked to stop, ours to disconnect
    ├── tfserve_magic.lifecycle.refusals.OwnedElsewhere  another running notebook's, without force
    ├── tfserve_magic.lifecycle.refusals.ConnectError    %tfserve connect could not record a remote
    ├── tfserve_magic.operations.export.ExportError    a version that cannot be written
    ├── tfserve_magic.operations.labels.LabelError     a label move the server would refuse
    ├── tfserve_magic.operations.deploy.DeployError    a deployment folder that cannot be written
    ├── tfserve_magic.serving.status_errors.StatusError       (inside the server) a failure with a TF
    │   ├── InvalidArgument, NotFound, ...             Serving status code, turned into
    │   └── PayloadTooLarge                            {"error": ...} and an HTTP status in one place
    ├── tfserve_magic.serving.status_errors.ConfigError       a bad flag, config file or server name
    ├── tfserve_magic.serving.models.repository.RepositoryError   an unreadable model base path
    └── tfserve_magic.serving.status_errors.LoadError         a version folder that cannot be served

None of them is also a ValueError or an OSError: ``except TFServeError`` is the one way to
catch what the package reports. ``tests/test_error_model.py`` holds this: no deliberate
``raise ValueError`` (or another built-in error) outside a short allow-list that says why.

Pure: imports nothing, so every layer, the core included, may import it.
"""

from __future__ import annotations

__all__ = ["TFServeError"]


class TFServeError(Exception):
    """Base class of every error tfserve_magic raises on purpose."""
