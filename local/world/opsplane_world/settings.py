"""Every figure of the model in one table, with the AWS source each default follows; overridable per world.

Durations are seconds of virtual time. AWS publishes no fixed durations for most operations (they depend on
size, engine and load); the defaults are typical figures for a small instance (db.t3/db.m5, 20-100 GiB) and
are meant to be overridden where a test cares.
"""

import copy

DEFAULTS = {
    "durations": {
        # CreateDBInstance: `creating`, then `backing-up` (the first automated backup), then `available`.
        # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status
        # A small PostgreSQL instance typically takes 10-15 minutes.
        "rds_create": 600,
        "rds_backing_up": 120,
        # ModifyDBInstance with ApplyImmediately: `modifying` with PendingModifiedValues until applied.
        # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.DBInstance.Modifying.html
        "rds_modify": 300,
        # CreateDBSnapshot: `creating` with PercentProgress; time grows with the data stored.
        # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_CreateSnapshot.html
        "rds_snapshot_base": 60,
        "rds_snapshot_per_gib": 3,
        # CopyDBSnapshot across Regions: `pending`, then `copying` with PercentProgress; minutes to hours.
        # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_CopySnapshot.html
        "rds_copy_pending": 30,
        "rds_copy_base": 300,
        "rds_copy_per_gib": 6,
        # RestoreDBInstanceFromDBSnapshot / ToPointInTime: a new instance, `creating` until `available`.
        # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RestoreFromSnapshot.html
        "rds_restore": 900,
        # DeleteDBInstance: `deleting`, then gone from DescribeDBInstances.
        # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_DeleteInstance.html
        "rds_delete": 300,
        # CreateCluster: `CREATING` to `ACTIVE`, "typically takes 10 to 15 minutes".
        # https://docs.aws.amazon.com/eks/latest/userguide/create-cluster.html
        "eks_cluster_create": 600,
        # UpdateClusterVersion: `UPDATING` to `ACTIVE`; the control plane update takes tens of minutes.
        # https://docs.aws.amazon.com/eks/latest/userguide/update-cluster.html
        "eks_cluster_update": 1500,
        # UpdateClusterConfig (endpoint access, logging): `UPDATING` for minutes, far less than a version.
        # https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html
        "eks_cluster_config": 300,
        # DeleteCluster: `DELETING` until gone; updates are refused meanwhile.
        # https://docs.aws.amazon.com/eks/latest/userguide/delete-cluster.html
        "eks_cluster_delete": 600,
        # CreateNodegroup, UpdateNodegroupVersion (a rolling replacement), UpdateNodegroupConfig (scaling).
        # https://docs.aws.amazon.com/eks/latest/userguide/managed-node-update-behavior.html
        "eks_nodegroup_create": 300,
        "eks_nodegroup_update": 900,
        "eks_nodegroup_scale": 120,
        # CreateAddon and UpdateAddon: `CREATING`/`UPDATING` to `ACTIVE` while EKS applies the manifests.
        # https://docs.aws.amazon.com/eks/latest/userguide/creating-an-add-on.html
        "eks_addon": 90,
        # CreateReplicationGroup: `creating` to `available`, typically 10-20 minutes for a small group;
        # ModifyReplicationGroup and replica changes: `modifying`; DeleteReplicationGroup: `deleting`.
        # https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Clusters.Create.html
        "elasticache_create": 720,
        # CreateReplicationGroup with SnapshotName: made as any group, then the RDB file loaded into it.
        # https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/backups-restoring.html
        "elasticache_restore": 900,
        "elasticache_modify": 600,
        "elasticache_delete": 300,
        # CreateSnapshot: `creating` for minutes (grows with the data); CopySnapshot to S3: `exporting`.
        # https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/backups-manual.html
        "elasticache_snapshot": 300,
        "elasticache_export": 300,
    },
    "quotas": {
        # "Manual DB instance snapshots: 100" per Region.
        # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Limits.html
        "manual_snapshots": 100,
        # Cross-Region snapshot copies in progress to one destination Region: 20 (older pages say 5).
        # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_CopySnapshot.html
        "copies_in_flight": 20,
    },
    "throttle": {
        # "By default, you can make up to 300 requests in a burst and a sustained 12 requests per second",
        # per account and Region, answered with ThrottlingException "Rate exceeded".
        # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-api-throttling.html
        "rds": {"burst": 300, "rate": 12.0},
        # EKS throttles per account and Region with a token bucket as well (ThrottlingException, HTTP 429).
        # https://docs.aws.amazon.com/eks/latest/APIReference/CommonErrors.html
        "eks": {"burst": 100, "rate": 10.0},
    },
    # Injected faults for soak runs: the share of RDS/EKS/DynamoDB/S3 requests answered with a 5xx or a
    # throttle before they reach moto, from a seeded generator so a run can be replayed.
    "faults": {"server_error_rate": 0.0, "throttle_rate": 0.0, "seed": 1},
    # A new AWS account has a default VPC in every Region; without one, CreateDBInstance and the restores
    # need a DBSubnetGroupName.
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_VPC.WorkingWithRDSInstanceinaVPC.html
    "default_vpc": True,
    # Each function and state machine acts with its template role (iam.py); ``template`` names a test's
    # copy of bootstrap/template.yaml instead of the project's.
    "iam": {"enforce": True, "template": None},
}

INSTANT = {
    "durations": {key: 0 for key in DEFAULTS["durations"]},
}


def merged(base, override):
    """``base`` with ``override`` laid over it, key by key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out
