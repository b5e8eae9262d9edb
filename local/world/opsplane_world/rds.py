"""RDS as AWS runs it: statuses over time, the refusals AWS makes in a status, the snapshot quotas.

Each patch wraps one moto backend method: it refuses what AWS refuses in the resource's current status,
lets moto do the work, then starts an ``Operation`` that walks the resource through AWS's statuses.
Statuses: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html
"""

from moto.rds import models
from moto.rds.exceptions import RDSClientError

from . import keys, network, world

# moto's own snapshot quota counts every snapshot of the shared server; the model counts per world.
models.RDSBackend.SNAPSHOT_QUOTA = property(lambda self: 10**9)

# What ModifyDBInstance leaves in PendingModifiedValues until it is applied, moto attribute -> AWS member.
PENDING = {
    "db_instance_class": "DBInstanceClass",
    "allocated_storage": "AllocatedStorage",
    "engine_version": "EngineVersion",
    "storage_type": "StorageType",
    "iops": "Iops",
    "multi_az": "MultiAZ",
}


def _invalid_instance(message):
    return RDSClientError("InvalidDBInstanceState", message)


def _invalid_snapshot(message):
    return RDSClientError("InvalidDBSnapshotState", message)


_request = world.current


def _instance_operation(backend, database, phases, on_finish=None):
    request, w = _request()
    if w is not None:
        key = ("db", backend.region_name, database.db_instance_identifier)
        world.walk(w, request, key, database, phases, "available", on_finish)


def _snapshot_operation(backend, snapshot, kind, phases):
    request, w = _request()
    if w is not None:
        key = (kind, backend.region_name, snapshot.db_snapshot_identifier)
        world.walk(w, request, key, snapshot, phases, "available", progress=True)


def _require_network(kwargs):
    """Without a default VPC, an instance needs a DB subnet group (AWS: InvalidVPCNetworkStateFault)."""
    request, w = _request()
    if w is None or w.settings["default_vpc"] or kwargs.get("db_subnet_group_name"):
        return
    w.count("refused.no_default_vpc")
    raise RDSClientError(
        "InvalidVPCNetworkStateFault",
        "The account has no default VPC in this Region: give a DBSubnetGroupName.",
    )


def _wrap(name, wrapper):
    original = getattr(models.RDSBackend, name)
    setattr(models.RDSBackend, name, wrapper(original))


def _report_key_arn(backend, database):
    # RDS reports an instance's storage key by ARN whatever the request named it by (KmsKeyId: "the AWS KMS
    # key identifier ... the key ARN", DBInstance in the API reference); moto keeps the alias it was given.
    if getattr(database, "kms_key_id", None):
        database.kms_key_id = keys.key_arn(backend.region_name, database.kms_key_id)


def _monitoring_settings(database, db_kwargs):
    # moto drops Performance Insights and Enhanced Monitoring at creation; RDS reports both
    # (PerformanceInsightsEnabled, MonitoringInterval and MonitoringRoleArn of DBInstance).
    database.enable_performance_insights = bool(db_kwargs.get("enable_performance_insights", False))
    database.monitoring_interval = int(db_kwargs.get("monitoring_interval") or 0)
    database.monitoring_role_arn = db_kwargs.get("monitoring_role_arn")


def _create(original):
    def create_db_instance(self, db_kwargs):
        _require_network(db_kwargs)
        database = original(self, db_kwargs)
        _monitoring_settings(database, db_kwargs)
        _report_key_arn(self, database)
        _, w = _request()
        if w is not None:
            _instance_operation(
                self,
                database,
                [("creating", w.duration("rds_create")), ("backing-up", w.duration("rds_backing_up"))],
            )
        return database

    return create_db_instance


def _restore(original):
    # From a snapshot: (snapshot, overrides); to a point in time: (source, target, overrides).
    def restore(self, *args):
        _require_network(args[-1])
        database = original(self, *args)
        # AWS restores without deletion protection unless the request asks for it (DeletionProtection,
        # "By default, deletion protection isn't enabled", RestoreDBInstanceFromDBSnapshot API reference);
        # moto copies the source's.
        database.deletion_protection = bool(args[-1].get("deletion_protection", False))
        # Nor does it take the source's network: no DBSubnetGroupName is the default VPC's default group, no
        # VpcSecurityGroupIds the VPC's default security group (same reference); moto copies the source's.
        network.place_restore(self, database, args[-1])
        _, w = _request()
        if w is not None:
            _instance_operation(self, database, [("creating", w.duration("rds_restore"))])
        return database

    return restore


def _modify(original):
    def modify_db_instance(self, db_instance_identifier, db_kwargs):
        request, w = _request()
        database = self.databases.get(db_instance_identifier)
        if w is None or database is None:
            return original(self, db_instance_identifier, db_kwargs)
        if database.status != "available":
            w.count("refused.modify_not_available")
            raise _invalid_instance(
                f"Database instance is not in available state. Instance {db_instance_identifier} is "
                f"{database.status}."
            )
        before = {attr: getattr(database, attr, None) for attr in PENDING}
        database = original(self, db_instance_identifier, db_kwargs)
        after = {attr: getattr(database, attr, None) for attr in PENDING}
        changed = {attr: after[attr] for attr in PENDING if after[attr] != before[attr]}
        if not changed:
            return database
        # Until applied, DescribeDBInstances shows the old values and the new ones as pending.
        for attr in changed:
            setattr(database, attr, before[attr])
        database.pending_modified_values = {PENDING[attr]: value for attr, value in changed.items()}
        if not db_kwargs.get("apply_immediately"):
            # Applied in the next maintenance window, which the model does not reach.
            return database

        def apply():
            for attr, value in changed.items():
                setattr(database, attr, value)
            database.pending_modified_values = {}

        _instance_operation(self, database, [("modifying", w.duration("rds_modify"))], on_finish=apply)
        return database

    return modify_db_instance


def _owned_manual_snapshots(backend, w):
    return [
        s
        for s in backend.database_snapshots.values()
        if s.snapshot_type == "manual" and getattr(s, "opsplane_world", None) == w.id
    ]


def _check_snapshot_quota(backend, w):
    if len(_owned_manual_snapshots(backend, w)) >= w.quota("manual_snapshots"):
        w.count("refused.snapshot_quota")
        # AWS's words, as callers have met them: "Cannot create more than 100 manual snapshots".
        raise RDSClientError(
            "SnapshotQuotaExceeded", f"Cannot create more than {w.quota('manual_snapshots')} manual snapshots"
        )


def _create_snapshot(original):
    def create_db_snapshot(self, db_instance_identifier, db_snapshot_identifier, *args, **kwargs):
        request, w = _request()
        if (args[0] if args else kwargs.get("snapshot_type", "manual")) != "manual":
            # moto's automated backups: AWS takes those itself, outside any caller's request.
            return original(self, db_instance_identifier, db_snapshot_identifier, *args, **kwargs)
        database = self.databases.get(db_instance_identifier)
        if w is not None and database is not None:
            if database.status != "available":
                w.count("refused.snapshot_not_available")
                raise _invalid_instance(
                    f"Cannot create a snapshot because the database instance {db_instance_identifier} "
                    f"is not currently in the available state."
                )
            _check_snapshot_quota(self, w)
        snapshot = original(self, db_instance_identifier, db_snapshot_identifier, *args, **kwargs)
        if w is not None:
            snapshot.opsplane_world = w.id
            seconds = w.duration("rds_snapshot_base") + w.duration("rds_snapshot_per_gib") * float(
                snapshot.allocated_storage or 0
            )
            _snapshot_operation(self, snapshot, "snapshot", [("creating", seconds)])
        return snapshot

    return create_db_snapshot


def _copy_snapshot(original):
    def copy_db_snapshot(self, source_db_snapshot_identifier, target_db_snapshot_identifier, *args, **kwargs):
        request, w = _request()
        if w is None:
            return original(self, source_db_snapshot_identifier, target_db_snapshot_identifier, *args, **kwargs)
        source_region = self.region_name
        source_id = source_db_snapshot_identifier
        if source_id.startswith("arn:aws:rds:"):
            source_region = source_id.split(":")[3]
            source_id = source_id.split(":")[6]
        source = models.rds_backends[self.account_id][source_region].database_snapshots.get(source_id.lower())
        if source is not None and source.status != "available":
            w.count("refused.copy_source_not_available")
            raise _invalid_snapshot(
                f"Snapshot {source_id} is not in available state: it is {source.status}."
            )
        cross_region = source_region != self.region_name
        # A KMS key belongs to one region: AWS refuses to copy an encrypted snapshot to another region
        # without a key of the destination ("If you copy an encrypted snapshot to a different AWS Region,
        # then you must specify an AWS KMS key identifier for the destination AWS Region", CopyDBSnapshot).
        if cross_region and source is not None and source.storage_encrypted and not kwargs.get("kms_key_id"):
            w.count("refused.copy_without_key")
            raise RDSClientError(
                "InvalidParameterValue",
                "KmsKeyId is required to copy an encrypted snapshot to another AWS Region.",
            )
        if cross_region and len(w.in_flight("copy", self.region_name, request.t_ms)) >= w.quota("copies_in_flight"):
            w.count("refused.copies_in_flight")
            # AWS answers with the snapshot quota's code and these words (older accounts: 5).
            raise RDSClientError(
                "SnapshotQuotaExceeded",
                f"Cannot copy more than {w.quota('copies_in_flight')} snapshots across regions",
            )
        _check_snapshot_quota(self, w)
        snapshot = original(self, source_db_snapshot_identifier, target_db_snapshot_identifier, *args, **kwargs)
        snapshot.opsplane_world = w.id
        gib = float(snapshot.allocated_storage or 0)
        if cross_region:
            phases = [
                ("pending", w.duration("rds_copy_pending")),
                ("copying", w.duration("rds_copy_base") + w.duration("rds_copy_per_gib") * gib),
            ]
            _snapshot_operation(self, snapshot, "copy", phases)
        else:
            seconds = w.duration("rds_snapshot_base") + w.duration("rds_snapshot_per_gib") * gib
            _snapshot_operation(self, snapshot, "snapshot", [("creating", seconds)])
        return snapshot

    return copy_db_snapshot


def _delete_snapshot(original):
    def delete_db_snapshot(self, db_snapshot_identifier, *args, **kwargs):
        request, w = _request()
        snapshot = self.database_snapshots.get(db_snapshot_identifier.lower())
        if w is not None and snapshot is not None and snapshot.snapshot_type == "manual" and snapshot.status == "creating":
            w.count("refused.delete_creating_snapshot")
            raise _invalid_snapshot(
                f"Cannot delete the snapshot {db_snapshot_identifier} while it is being created."
            )
        deleted = original(self, db_snapshot_identifier, *args, **kwargs)
        if w is not None:
            # Deleting a copy in `pending` or `copying` cancels it, as on AWS.
            w.forget(("copy", self.region_name, db_snapshot_identifier.lower()))
            w.forget(("snapshot", self.region_name, db_snapshot_identifier.lower()))
        return deleted

    return delete_db_snapshot


def _delete_instance(original):
    def delete_db_instance(self, db_instance_identifier, *args, **kwargs):
        request, w = _request()
        database = self.databases.get(db_instance_identifier)
        if w is None or database is None:
            return original(self, db_instance_identifier, *args, **kwargs)
        if database.status == "deleting":
            w.count("refused.already_deleting")
            raise _invalid_instance(f"Instance {db_instance_identifier} is already being deleted.")
        if database.status == "creating":
            w.count("refused.delete_creating")
            raise _invalid_instance(
                f"Instance {db_instance_identifier} is currently creating - it cannot be deleted until "
                f"it is available."
            )
        deleted = original(self, db_instance_identifier, *args, **kwargs)
        key = ("db", self.region_name, db_instance_identifier)
        world.linger(w, request, key, self.databases, db_instance_identifier, deleted, "deleting", w.duration("rds_delete"))
        return deleted

    return delete_db_instance


def account_quotas(backend, w):
    """DescribeAccountAttributes' AccountQuotas that the model keeps: ManualSnapshots, this world's usage in
    the Region. (AWS reports no quota for copies in flight; they are only met as a refusal.)"""
    return [("ManualSnapshots", len(_owned_manual_snapshots(backend, w)), w.quota("manual_snapshots"))]


# moto's option groups know PostgreSQL majors up to 13; RDS offers an option group for every major it runs
# (CreateOptionGroup, MajorEngineVersion; PostgreSQL's have no options to add, but instances name them).
_POSTGRES_MAJORS = {"14", "15", "16", "17"}


def _create_option_group(original):
    def create_option_group(self, option_group_kwargs):
        major = option_group_kwargs.get("major_engine_version")
        if option_group_kwargs.get("engine_name") != "postgres" or major not in _POSTGRES_MAJORS:
            return original(self, option_group_kwargs)
        group = original(self, {**option_group_kwargs, "major_engine_version": "13"})
        group.major_engine_version = major
        return group

    return create_option_group


def install():
    # What ModifyDBInstance sets (EnablePerformanceInsights) is reported as PerformanceInsightsEnabled.
    models.DBInstance.performance_insights_enabled = property(
        lambda self: bool(getattr(self, "enable_performance_insights", False))
    )
    _wrap("create_option_group", _create_option_group)
    _wrap("create_db_instance", _create)
    _wrap("restore_db_instance_from_db_snapshot", _restore)
    _wrap("restore_db_instance_to_point_in_time", _restore)
    _wrap("modify_db_instance", _modify)
    _wrap("create_db_snapshot", _create_snapshot)
    _wrap("copy_db_snapshot", _copy_snapshot)
    _wrap("delete_db_snapshot", _delete_snapshot)
    _wrap("delete_db_instance", _delete_instance)
