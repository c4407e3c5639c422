"""What the lifecycle refuses, as :class:`~tfserve_magic.errors.TFServeError` subclasses.

Finding, stopping, connecting and disconnecting servers fail in a few ways a caller may want
to tell apart (the Jupyter server extension answers 404 for one and 409 for another); each
message says what to do instead. No imports beyond the root error.
"""

from __future__ import annotations

from tfserve_magic.errors import TFServeError

__all__ = ["AmbiguousName", "ConnectError", "NotOurServer", "OwnedElsewhere", "UnknownServer"]


class UnknownServer(TFServeError):
    """No recorded (or no running) server by that name or port, or none serving that model."""


class AmbiguousName(TFServeError):
    """The call must name a server or a model: several would do, or none is running."""


class NotOurServer(TFServeError):
    """A remote server asked to do what only ours do (stop, show its log), or one of ours
    asked to do what only remotes do (disconnect), or a name taken by the other kind."""


class OwnedElsewhere(TFServeError):
    """A server that another running notebook (kernel) started, asked to stop without force:
    stopping it would take that notebook's server away."""


class ConnectError(TFServeError):
    """``%tfserve connect`` could not record a remote server: a bad address, no answer, or a
    TF Serving whose models were not named or are not served."""
