"""The request being served: which world asks, at what virtual time, for which service and action.

moto serves one request at a time (the launcher serialises them), so the request in flight is one global.
The Rust SDK clients of a local plane send ``x-opsplane-world`` (the plane's id) and ``x-opsplane-time``
(the caller's virtual time in epoch milliseconds: the execution's clock inside a handler, the engine's
latest time outside one). A request without them is the "default" world at real time.
"""

import time

# The account every world's resources live in: moto's default, which the plane's clients act as.
ACCOUNT = "123456789012"

WORLD_HEADER = "HTTP_X_OPSPLANE_WORLD"
TIME_HEADER = "HTTP_X_OPSPLANE_TIME"
# The template role the caller acts with: ``function:<name>`` inside a handler, ``workflow:<name>`` for a
# state machine's own integrations; absent for the operator (tests, the CLI, seeding), who may do anything.
ROLE_HEADER = "HTTP_X_OPSPLANE_ROLE"


class Request:
    """One AWS request as the model sees it."""

    def __init__(self, world, t_ms, service, action, region, params):
        self.world = world
        self.t_ms = t_ms
        self.service = service
        self.action = action
        self.region = region
        # The query protocol's parameters (query string and form body), first value each.
        self.params = params


_current = None


def current():
    """The request in flight, or None outside one (moto's own start-up, control requests)."""
    return _current


def set_current(request):
    global _current
    _current = request


def real_ms():
    return int(time.time() * 1000)
