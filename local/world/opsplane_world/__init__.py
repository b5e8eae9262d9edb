"""opsplane's model of AWS behaviour, between our SDK clients and moto.

moto answers every call at once and never says no for lack of time, quota or rate. This package, loaded by
the local world's moto launcher, makes moto's answers follow what AWS does where opsplane depends on it:
operations take modelled time on the caller's virtual clock and pass through AWS's intermediate statuses,
AWS's refusals and quotas apply, the RDS and EKS APIs throttle, and the account's network decides whether a
restore has somewhere to go. Each behaviour cites the AWS documentation it follows; docs/LOCAL-WORLD.md
lists them with the tests that show them.

A request names its world (one local plane, standing for one AWS account) and its virtual time in two
headers; see ``context``.
"""

from . import eks, elasticache, events, middleware, pages, rds


def install(app_class):
    """Wraps moto's WSGI application class and patches its backends. Called once by the launcher."""
    rds.install()
    pages.install()
    events.install()
    eks.install()
    elasticache.install()
    middleware.install(app_class)
