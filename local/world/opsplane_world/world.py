"""A world: one local plane standing for one AWS account, with its settings, its operations in flight, its
throttling buckets and its fault generator."""

import random

from . import context, iam, settings


class Operation:
    """An AWS operation in flight on one resource: phases of (status, seconds) from ``start_ms``.

    ``show(status, fraction)`` puts the status the resource has at a point of the operation onto moto's
    object; ``finish()`` applies the outcome. A resource's time only moves forward: whoever asks, it is
    seen at the latest virtual time anyone asked about it (``high_water``).
    """

    def __init__(self, kind, start_ms, phases, show, finish, service=None):
        self.kind = kind
        self.service = service
        self.start_ms = start_ms
        self.phases = [(status, max(0.0, float(seconds))) for status, seconds in phases]
        self.show = show
        self.finish = finish
        self.high_water = start_ms

    def total(self):
        return sum(seconds for _, seconds in self.phases)

    def advance(self, t_ms):
        """Shows the operation at ``t_ms``; True once it is over (and finished)."""
        self.high_water = max(self.high_water, t_ms)
        elapsed = (self.high_water - self.start_ms) / 1000.0
        total = self.total()
        if elapsed >= total:
            self.finish()
            return True
        at = 0.0
        for status, seconds in self.phases:
            if elapsed < at + seconds:
                self.show(status, elapsed / total if total else 1.0)
                return False
            at += seconds
        self.finish()
        return True


def walk(w, request, key, resource, phases, done, on_finish=None, progress=False, attr="status"):
    """Walks ``resource`` through ``phases`` from the request's time, then leaves it ``done`` and calls
    ``on_finish``; with ``progress`` it shows ``PercentProgress`` along the way (snapshots and copies).
    ``attr`` is where moto keeps the resource's status (``snapshot_status`` for ElastiCache's snapshots)."""

    def show(status, fraction):
        setattr(resource, attr, status)
        if progress:
            resource.percent_progress = int(fraction * 100)

    def finish():
        setattr(resource, attr, done)
        if progress:
            resource.percent_progress = 100
        if on_finish:
            on_finish()

    if progress:
        resource.percent_progress = 0
    w.start(key, Operation(key[0], request.t_ms, phases, show, finish, request.service))


def linger(w, request, key, collection, name, resource, status, seconds):
    """Keeps a resource moto has just forgotten in ``collection`` under ``name``, showing ``status`` (its name
    still taken), for ``seconds`` of virtual time, then drops it: AWS's deletions take minutes."""
    collection[name] = resource

    def show(s, _fraction):
        resource.status = s

    def finish():
        if collection.get(name) is resource:
            del collection[name]

    w.start(key, Operation(key[0], request.t_ms, [(status, seconds)], show, finish, request.service))


class TokenBucket:
    """AWS's token bucket (``burst`` tokens, refilled at ``rate`` per second), judged on the virtual clock.

    A stream of requests passes a token bucket if and only if every interval of ``W`` seconds holds at most
    ``burst + rate * W`` of them (the bucket's arrival curve). The local engine runs executions at different
    virtual times at once (a fleet's child executions, each at its own point of its own run), so requests
    reach the world out of virtual order, and a bucket refilled by the clock's progress would throttle every
    request behind the furthest-ahead execution. The windows are therefore checked around each request's own
    time, ending and starting there, at 1, 10, 60 and 600 s: the short ones bind the burst, the long ones the
    sustained rate. A throttled request is not counted; retried at the same virtual time (the SDK's
    back-off sleeps in real time) it is throttled again, and the definitions' ``Throttled`` retry, which
    waits in virtual time, gets it through."""

    WINDOWS = (1, 10, 60, 600)

    def __init__(self, burst, rate):
        self.burst = float(burst)
        self.rate = float(rate)
        # Admitted requests per virtual second, and per ten seconds for the long windows.
        self.seconds = {}
        self.tens = {}

    def _count(self, lo, hi):
        """Admitted requests in the virtual seconds ``[lo, hi)``."""
        if hi - lo <= 60:
            return sum(self.seconds.get(s, 0) for s in range(lo, hi))
        return sum(self.tens.get(t, 0) for t in range(lo // 10, (hi + 9) // 10))

    def take(self, t_ms):
        second = int(t_ms // 1000)
        for w in self.WINDOWS:
            cap = self.burst + self.rate * w
            if self._count(second - w + 1, second + 1) + 1 > cap or self._count(second, second + w) + 1 > cap:
                return False
        self.seconds[second] = self.seconds.get(second, 0) + 1
        self.tens[second // 10] = self.tens.get(second // 10, 0) + 1
        return True


class World:
    """One plane's account: settings, operations in flight, manual snapshots it owns, buckets."""

    def __init__(self, world_id):
        self.id = world_id
        self.settings = settings.merged(settings.DEFAULTS, {})
        self.operations = {}
        self.buckets = {}
        self.rng = random.Random(self.settings["faults"]["seed"])
        # Requests per service and virtual second (the request's time header), for the fleet's
        # request-rate figures: what AWS's per-account throttling would see.
        self.meters = {}
        # Counters the soak tests and the docs read back: what the model refused or injected.
        self.counters = {}
        # The networks made for this world (network.py), by ("operator", region) or ("environment", ...).
        self.networks = {}
        # CloudWatch alarm mute rules (mute.py), by region and name: moto has none.
        self.mute_rules = {}
        self._roles = None

    def roles(self):
        """The template's roles (iam.py), loaded once per template."""
        template = self.settings["iam"]["template"]
        if self._roles is None or self._roles[0] != template:
            self._roles = (template, iam.load(template))
        return self._roles[1]

    def configure(self, override):
        override = dict(override)
        if override.pop("reset_meters", False):
            self.meters = {}
        if override.pop("instant", False):
            self.settings = settings.merged(self.settings, settings.INSTANT)
        self.settings = settings.merged(self.settings, override)
        self.buckets = {}
        self.rng = random.Random(self.settings["faults"]["seed"])

    def duration(self, name):
        return float(self.settings["durations"][name])

    def quota(self, name):
        return int(self.settings["quotas"][name])

    def count(self, name):
        self.counters[name] = self.counters.get(name, 0) + 1

    def meter(self, service, t_ms):
        seconds = self.meters.setdefault(service, {})
        second = int(t_ms // 1000)
        seconds[second] = seconds.get(second, 0) + 1

    def rates(self):
        """Per service: requests seen, the busiest virtual second, and the busiest minute as a rate (the
        sustained rate AWS's token bucket refills at is per second; its burst absorbs a busy second)."""
        out = {}
        for service, seconds in self.meters.items():
            ordered = sorted(seconds.items())
            peak_minute, window, start = 0, 0, 0
            for i, (second, n) in enumerate(ordered):
                window += n
                while ordered[start][0] <= second - 60:
                    window -= ordered[start][1]
                    start += 1
                peak_minute = max(peak_minute, window)
            out[service] = {
                "requests": sum(seconds.values()),
                "peak_second": max(seconds.values()),
                "peak_minute_rate": round(peak_minute / 60.0, 3),
                "first_second": ordered[0][0],
                "last_second": ordered[-1][0],
            }
        return out

    def start(self, key, operation):
        """Tracks ``operation`` on ``key`` (replacing one in flight) and shows its first status."""
        self.operations[key] = operation
        if operation.advance(operation.start_ms):
            del self.operations[key]

    def forget(self, key):
        self.operations.pop(key, None)

    def in_flight(self, kind, region, t_ms=None):
        """The operations of ``kind`` in ``region`` still running; at ``t_ms``, when given (those done by
        then are finished first: a quota counts what is in flight at the request's time, not what no
        request has looked at since)."""
        keys = [k for k, op in self.operations.items() if op.kind == kind and k[1] == region]
        if t_ms is not None:
            for key in keys:
                operation = self.operations.get(key)
                if operation is not None and operation.advance(t_ms):
                    self.operations.pop(key, None)
            keys = [k for k in keys if k in self.operations]
        return keys

    def settle(self, t_ms, targets=None, service=None):
        """Moves this world's operations on ``targets`` (resource names; None: every resource of ``service``,
        or every resource at all without one) to ``t_ms``."""
        for key in list(self.operations):
            if targets is not None and not any(part in targets for part in key[2:]):
                continue
            operation = self.operations.get(key)
            if targets is None and service is not None and operation is not None and operation.service not in (None, service):
                continue
            if operation is not None and operation.advance(t_ms):
                self.operations.pop(key, None)

    def bucket(self, service, region):
        """The bucket of ``service`` in ``region``: AWS throttles per account and Region."""
        limits = self.settings["throttle"].get(service)
        if limits is None:
            return None
        key = (service, region)
        if key not in self.buckets:
            self.buckets[key] = TokenBucket(limits["burst"], limits["rate"])
        return self.buckets[key]


_worlds = {}


DEFAULT = "default"


def get(world_id):
    """The world ``world_id``; created with AWS's defaults on first use. The default world (requests with no
    world header: clients built outside a plane, moto's own callers) is instant: it stands for no account
    in particular, and nothing it asks for is timed."""
    if world_id not in _worlds:
        w = World(world_id)
        if world_id == DEFAULT:
            w.configure({"instant": True})
        _worlds[world_id] = w
    return _worlds[world_id]


def settle(w, t_ms, targets, service=None):
    """Moves the operations the request may see to its time. Only the resources it names move (a list call
    names none and moves them all of its own service): parallel branches of one execution each run their own
    virtual clock, and one branch's poll must not age another branch's snapshot, nor an RDS list call a Redis
    restore running beside it. A request of the default world (real time) moves every world's, which only
    ever moves a plane's resources by the real time that passed."""
    worlds = list(_worlds.values()) if w.id == DEFAULT else [w]
    for each in worlds:
        each.settle(t_ms, targets, service if w.id != DEFAULT else None)


def current():
    """The request in flight and its world, or (None, None) outside a request."""
    request = context.current()
    return (request, get(request.world)) if request is not None else (None, None)
