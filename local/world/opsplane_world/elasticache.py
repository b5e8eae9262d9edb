"""ElastiCache (Redis OSS) replication groups as AWS runs them, on moto's: statuses over time, the member
cache clusters that carry the engine version, groups and subnet group, and the changes moto lacks.

A replication group is ``creating`` and then ``available``; ``ModifyReplicationGroup`` (node type, engine
version, parameter group, security groups) and ``IncreaseReplicaCount``/``DecreaseReplicaCount`` take it
``modifying`` and are refused unless it is ``available``; ``DeleteReplicationGroup`` leaves it ``deleting``
for minutes before it is gone. ``DescribeReplicationGroups`` does not report the engine version, groups or
subnet group: ``DescribeCacheClusters`` of a member does, so the model keeps members as moto's cache
clusters.
https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Clusters.html (statuses)
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_ModifyReplicationGroup.html
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_IncreaseReplicaCount.html
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_DecreaseReplicaCount.html
"""

import datetime
import uuid

from moto.elasticache import models
from moto.s3.models import s3_backends
from moto.elasticache.exceptions import ElastiCacheException, ReplicationGroupNotFound, SnapshotNotFound

from . import context, world

OPERATIONS = {"ModifyReplicationGroup", "IncreaseReplicaCount", "DecreaseReplicaCount", "CopySnapshot"}


def _request():
    return world.current()


def _wrap(name, wrapper):
    original = getattr(models.ElastiCacheBackend, name)
    setattr(models.ElastiCacheBackend, name, wrapper(original))


def _member(backend, group, cluster_id, role):
    """A member cache cluster of ``group`` as moto keeps cache clusters, with the group's settings."""
    settings = group.opsplane_settings
    cluster = models.CacheCluster(
        account_id=backend.account_id,
        region_name=backend.region_name,
        cache_cluster_id=cluster_id,
        cache_node_type=group.cache_node_type,
        replication_group_id=group.replication_group_id,
        az_mode=None,
        preferred_availability_zone=None,
        num_cache_nodes=1,
        engine="redis",
        engine_version=settings["engine_version"],
        cache_parameter_group_name=settings["parameter_group"],
        cache_subnet_group_name=settings["subnet_group"],
        transit_encryption_enabled=group.transit_encryption_enabled,
        network_type=None,
        ip_discovery=None,
        snapshot_name=None,
        preferred_maintenance_window=None,
        port=group.port,
        notification_topic_arn=None,
        auto_minor_version_upgrade=None,
        snapshot_retention_limit=None,
        snapshot_window=None,
        auth_token=None,
        outpost_mode=None,
        preferred_outpost_arn=None,
        preferred_availability_zones=None,
        cache_security_group_names=None,
        security_group_ids=settings["security_group_ids"],
        tags=None,
        snapshot_arns=None,
        preferred_outpost_arns=None,
        log_delivery_configurations=[],
        cache_node_ids_to_remove=None,
        cache_node_ids_to_reboot=None,
    )
    # DescribeCacheClusters reports a member's groups as SecurityGroups: [{SecurityGroupId, Status}].
    cluster.security_groups = [{"security_group_id": g, "status": "active"} for g in settings["security_group_ids"]]
    cluster.cache_parameter_group = {"cache_parameter_group_name": settings["parameter_group"]}
    cluster.opsplane_role = role
    backend.cache_clusters[cluster_id] = cluster
    return cluster


def _sync_members(backend, group):
    """The group's members as cache clusters: one per node group member, with the group's settings now."""
    wanted = [m["cache_cluster_id"] for ng in group.node_groups for m in ng["node_group_members"]]
    for cluster_id in list(backend.cache_clusters):
        cluster = backend.cache_clusters[cluster_id]
        if getattr(cluster, "replication_group_id", None) == group.replication_group_id and cluster_id not in wanted:
            del backend.cache_clusters[cluster_id]
    for ng in group.node_groups:
        for m in ng["node_group_members"]:
            _member(backend, group, m["cache_cluster_id"], m.get("current_role", "replica"))
    group.member_clusters = wanted


class InvalidReplicationGroupState(ElastiCacheException):
    """ElastiCache refuses a change of a group that is not ``available``."""

    code = "InvalidReplicationGroupState"


def _not_available(w, group):
    if w is not None:
        w.count("refused.cache_not_available")
    return InvalidReplicationGroupState(
        f"Replication group {group.replication_group_id} is not in available state. It is {group.status}."
    )


def _create(original):
    def create_replication_group(self, *args, **kwargs):
        # Without cluster mode a group is sized by NumCacheClusters (its primary and replicas); moto reads
        # only ReplicasPerNodeGroup there.
        if kwargs.get("cluster_mode") != "enabled" and kwargs.get("num_cache_clusters") and not kwargs.get("replicas_per_node_group"):
            kwargs["replicas_per_node_group"] = int(kwargs["num_cache_clusters"]) - 1
        # A restore reads an available snapshot (moto takes any name); it takes the data load's time more.
        source = kwargs.get("snapshot_name")
        if source:
            snapshot = self.snapshots.get(source)
            if snapshot is None:
                raise SnapshotNotFound(source)
            if snapshot.snapshot_status != "available":
                raise InvalidSnapshotState(f"Snapshot {source} is {snapshot.snapshot_status}.")
        group = original(self, *args, **kwargs)
        group.opsplane_settings = {
            "engine_version": kwargs.get("engine_version") or "7.1",
            "parameter_group": kwargs.get("cache_parameter_group_name") or "default.redis7",
            "subnet_group": kwargs.get("cache_subnet_group_name") or "default",
            "security_group_ids": list(kwargs.get("security_group_ids") or []),
        }
        _sync_members(self, group)
        request, w = _request()
        # Stamped as moto stamps an RDS instance or snapshot (the real time of the request), the clock the
        # functions compare with: the orphan sweep ages the group by it.
        group.replication_group_create_time = datetime.datetime.fromtimestamp(context.real_ms() / 1000.0, tz=datetime.timezone.utc)
        if w is not None:
            key = ("cache", self.region_name, group.replication_group_id)
            took = w.duration("elasticache_restore" if source else "elasticache_create")
            world.walk(w, request, key, group, [("creating", took)], "available")
        return group

    return create_replication_group


def _delete(original):
    def delete_replication_group(self, replication_group_id, *args, **kwargs):
        request, w = _request()
        group = self.replication_groups.get(replication_group_id)
        if group is not None and w is not None and group.status not in ("available", "create-failed"):
            raise _not_available(w, group)
        answer = original(self, replication_group_id, *args, **kwargs)

        def gone():
            self.replication_groups.pop(replication_group_id, None)
            for cluster_id in list(self.cache_clusters):
                if getattr(self.cache_clusters[cluster_id], "replication_group_id", None) == replication_group_id:
                    del self.cache_clusters[cluster_id]

        if w is None:
            gone()
        else:
            key = ("cache", self.region_name, replication_group_id)
            world.walk(w, request, key, group, [("deleting", w.duration("elasticache_delete"))], "deleting", gone)
        return answer

    return delete_replication_group


def _group(backend, group_id):
    group = backend.replication_groups.get(group_id)
    if group is None:
        raise ReplicationGroupNotFound(group_id)
    return group


def _change(backend, group, apply):
    """Takes ``group`` ``modifying`` for the model's time, then applies ``apply()`` and its members."""
    request, w = _request()
    if group.status != "available":
        raise _not_available(w, group)

    def finish():
        apply()
        _sync_members(backend, group)

    if w is None:
        finish()
        return
    key = ("cache", backend.region_name, group.replication_group_id)
    world.walk(w, request, key, group, [("modifying", w.duration("elasticache_modify"))], "available", finish)


def _set_replicas(group, replicas):
    """Each shard keeps its primary and ``replicas`` replicas."""
    for ng in group.node_groups:
        members = ng["node_group_members"]
        primary = [m for m in members if m.get("current_role") == "primary"] or members[:1]
        kept = primary + [m for m in members if m not in primary][:replicas]
        n = len(kept)
        while n <= replicas:
            base = dict(kept[0])
            prefix = group.replication_group_id if group.cluster_mode != "enabled" else f"{group.replication_group_id}-{ng['node_group_id']}"
            base["cache_cluster_id"] = f"{prefix}-{n + 1:0>3}"
            base["current_role"] = "replica"
            kept.append(base)
            n += 1
        ng["node_group_members"] = kept


def serve(action, params, region, account):
    """(status, headers, body) for the ElastiCache calls moto lacks; raises moto's ElastiCache errors."""
    backend = models.elasticache_backends[account][region]
    if action == "CopySnapshot":
        snapshot = _export(backend, params, account)
        return _answer(
            action,
            f"<Snapshot><SnapshotName>{snapshot.snapshot_name}</SnapshotName>"
            f"<SnapshotStatus>{snapshot.snapshot_status}</SnapshotStatus></Snapshot>",
        )
    group = _group(backend, params.get("ReplicationGroupId", ""))
    if action == "ModifyReplicationGroup":
        groups = [v for k, v in sorted(params.items()) if k.startswith("SecurityGroupIds.")]

        def apply():
            if params.get("CacheNodeType"):
                group.cache_node_type = params["CacheNodeType"]
            settings = group.opsplane_settings
            if params.get("EngineVersion"):
                settings["engine_version"] = params["EngineVersion"]
            if params.get("CacheParameterGroupName"):
                settings["parameter_group"] = params["CacheParameterGroupName"]
            if groups:
                settings["security_group_ids"] = groups

        _change(backend, group, apply)
    else:
        replicas = int(params.get("NewReplicaCount", "0"))
        _change(backend, group, lambda: _set_replicas(group, replicas))
    return _answer(
        action,
        f"<ReplicationGroup><ReplicationGroupId>{group.replication_group_id}</ReplicationGroupId>"
        f"<Status>{group.status}</Status></ReplicationGroup>",
    )


def _answer(action, result):
    """The query protocol's answer to ``action``, its result holding ``result``."""
    body = (
        f'<{action}Response xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/"><{action}Result>{result}'
        f"</{action}Result><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )
    return 200, {"Content-Type": "text/xml"}, body


class InvalidSnapshotState(ElastiCacheException):
    """ElastiCache refuses to export or delete a snapshot that is busy."""

    code = "InvalidSnapshotState"


def _snapshot_walk(w, request, backend, snapshot, status, seconds, on_finish=None):
    """``snapshot`` shows ``status`` at once (moto made it ``available``) and for ``seconds`` of the
    request's virtual time, then ``available``."""
    snapshot.snapshot_status = status
    key = ("cache-snapshot", backend.region_name, snapshot.snapshot_name)
    world.walk(w, request, key, snapshot, [(status, seconds)], "available", on_finish, attr="snapshot_status")


def _create_snapshot(original):
    # CreateSnapshot: `creating` until `available`; refused unless the group is available (AWS:
    # InvalidReplicationGroupState). The snapshot's time is its node snapshots' SnapshotCreateTime.
    # https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/backups-manual.html
    def create_snapshot(self, *args, **kwargs):
        request, w = _request()
        group = self.replication_groups.get(kwargs.get("replication_group_id") or "")
        if w is not None and group is not None and group.status != "available":
            raise _not_available(w, group)
        snapshot = original(self, *args, **kwargs)
        # Stamped as moto stamps an RDS snapshot (the real time of the request), so that both engines'
        # snapshots of one backup, and the drill's RPO from them, read one clock; an engine's virtual clock
        # runs ahead of it by the virtual time earlier executions took.
        taken = datetime.datetime.fromtimestamp(context.real_ms() / 1000.0, tz=datetime.timezone.utc)
        members = group.member_clusters[:1] if group is not None else []
        snapshot.node_snapshots = [
            {"cache_cluster_id": m, "node_group_id": "0001", "cache_node_id": "0001", "snapshot_create_time": taken}
            for m in members
        ]
        if w is not None:
            _snapshot_walk(w, request, self, snapshot, "creating", w.duration("elasticache_snapshot"))
        return snapshot

    return create_snapshot


def _export(backend, params, account):
    """CopySnapshot with TargetBucket: the snapshot `exporting`, then one `.rdb` object per shard in the
    bucket (which must exist in the account). https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/backups-exporting.html"""
    request, w = _request()
    source = backend.snapshots.get(params.get("SourceSnapshotName", ""))
    if source is None:
        raise SnapshotNotFound(params.get("SourceSnapshotName", ""))
    if source.snapshot_status != "available":
        raise InvalidSnapshotState(f"Snapshot {source.snapshot_name} is {source.snapshot_status}.")
    bucket_name = params.get("TargetBucket")
    if not bucket_name:
        raise ElastiCacheException("InvalidParameterValue", "The model serves CopySnapshot to S3 only: give TargetBucket.")
    s3 = s3_backends[account]["global"]
    if bucket_name not in s3.buckets:
        raise ElastiCacheException("InvalidParameterValue", f"No bucket named {bucket_name} in this account.")
    target = params.get("TargetSnapshotName", source.snapshot_name)

    def write():
        shards = max(1, int(getattr(source, "num_node_groups", None) or 1))
        for n in range(1, shards + 1):
            s3.put_object(bucket_name, f"{target}-{n:04d}.rdb", b"REDIS0011 opsplane local world snapshot")

    if w is None:
        write()
    else:
        _snapshot_walk(w, request, backend, source, "exporting", w.duration("elasticache_export"), write)
    return source


def install():
    _wrap("create_replication_group", _create)
    _wrap("delete_replication_group", _delete)
    _wrap("create_snapshot", _create_snapshot)

