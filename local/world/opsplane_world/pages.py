"""RDS's list markers as AWS keeps them: a position in the listing, not a record that must still exist.

moto's marker names the first record of the next page, and when that record is deleted between two pages
it fails the next call with ``InvalidToken`` (in JSON, which the query protocol's clients cannot even read).
AWS's DescribeDBInstances and DescribeDBSnapshots answer "only records beyond the marker" (``Marker``,
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html), so a listing that
another caller shortens between its pages goes on: a drill's sweep pages through every instance of the
Region while other environments' drills delete their scratch instances. The model lists instances and
snapshots in identifier order and resumes a marker whose record is gone at the first record beyond it.
"""

from moto.rds import models
from moto.utilities import paginator

from . import context


def _in_identifier_order(original):
    def describe(self, *args, **kwargs):
        return sorted(original(self, *args, **kwargs), key=lambda record: record.resource_id)

    return describe


def _position(pages, record):
    """Where ``record`` stands in the listing, as moto's marker spells a position."""
    return "|".join(str(getattr(record, attr)) for attr in pages._unique_attributes)


def _beyond_the_marker(original):
    def paginate(self, results):
        request = context.current()
        marker = self._parsed_token
        if request is None or request.service != "rds" or marker is None:
            return original(self, results)
        if any(self._check_predicate(record) for record in results):
            return original(self, results)
        beyond = [r for r in results if _position(self, r) > marker["uniqueAttributes"]]
        # The rest is a first page of what lies beyond: moto's own paging, from no marker.
        self._starting_token = self._parsed_token = None
        return original(self, beyond)

    return paginate


def install():
    for name in ("describe_db_instances", "describe_db_snapshots"):
        setattr(models.RDSBackend, name, _in_identifier_order(getattr(models.RDSBackend, name)))
    paginator.Paginator.paginate = _beyond_the_marker(paginator.Paginator.paginate)
