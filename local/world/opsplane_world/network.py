"""Networks as AWS has them, on moto's EC2, RDS and ElastiCache state: which VPC a DB instance or a Redis
replication group sits in, and whether the plane's probes, which run in the operator's VPC with their own
security group (the template's ProbeSubnetIds and ProbeSecurityGroupIds), can open a connection to it.

An instance is reachable when its DB subnet group is in the probe's VPC and one of its VPC security groups
admits the probe's security group on the instance's port: a restore that names no DB subnet group lands in
the default VPC's default subnet group, and one that names no security groups gets the VPC's default group.
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_VPC.Scenarios.html
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_VPC.WorkingWithRDSInstanceinaVPC.html
A replication group likewise: its cache subnet group's VPC and its security groups on its port (6379); a
group made without a cache subnet group lands in the default VPC.
https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/VPCs.html
"""

from moto.ec2.models import ec2_backends
from moto.elasticache.models import elasticache_backends
from moto.rds.models import rds_backends

from .context import ACCOUNT


def _operator_network(w, region):
    """The world's operator VPC in ``region`` with three subnets and the probe's security group (created once)."""
    key = ("operator", region)
    if key in w.networks:
        return w.networks[key]
    ec2 = ec2_backends[ACCOUNT][region]
    index = len(w.networks) % 200 + 10
    vpc = ec2.create_vpc(f"10.{index}.0.0/16", tags=[{"Key": "opsplane:world", "Value": w.id}])
    zones = [f"{region}a", f"{region}b", f"{region}c"]
    subnets = [ec2.create_subnet(vpc.id, f"10.{index}.{n}.0/24", availability_zone=zone) for n, zone in enumerate(zones)]
    probe = ec2.create_security_group(f"opsplane-probe-{w.id}"[:255], "the plane's SQL probe", vpc_id=vpc.id)
    network = {"vpc": vpc.id, "subnets": [s.id for s in subnets], "probe_security_group": probe.id}
    w.networks[key] = network
    return network


def environment_network(w, region, name):
    """An environment's DB subnet group, cache subnet group and security group in the operator VPC, the
    group admitting the probe on PostgreSQL's and Redis's ports, and the VPC's subnets; what its instances,
    its replication groups and its cluster are created with."""
    operator = _operator_network(w, region)
    key = ("environment", region, name)
    if key not in w.networks:
        ec2 = ec2_backends[ACCOUNT][region]
        rds = rds_backends[ACCOUNT][region]
        group_name = f"{name}-db"
        subnets = [ec2.get_subnet(s) for s in operator["subnets"]]
        if group_name not in rds.subnet_groups:
            rds.create_subnet_group(group_name, f"{name}'s databases", subnets, [])
        sg = ec2.create_security_group(f"{name}-db-{w.id}"[:255], f"{name}'s databases", vpc_id=operator["vpc"])
        for port in ("5432", "6379"):
            ec2.authorize_security_group_ingress(
                sg.id, "tcp", port, port, [], source_groups=[{"GroupId": operator["probe_security_group"]}]
            )
        caches = elasticache_backends[ACCOUNT][region]
        cache_group = f"{name}-cache"
        if cache_group not in caches.cache_subnet_groups:
            caches.create_cache_subnet_group(cache_group, f"{name}'s caches", operator["subnets"], [])
        w.networks[key] = {
            "db_subnet_group": group_name,
            "cache_subnet_group": cache_group,
            "security_group_ids": [sg.id],
            "subnet_ids": operator["subnets"],
        }
    return w.networks[key]


def closed_group(w, region, name):
    """A security group in the operator VPC that admits nothing: what a placement naming the wrong group
    (or a group whose rules were changed) gives an instance. Made once per name."""
    operator = _operator_network(w, region)
    key = ("closed", region, name)
    if key not in w.networks:
        ec2 = ec2_backends[ACCOUNT][region]
        group = ec2.create_security_group(f"{name}-{w.id}"[:255], "admits nothing", vpc_id=operator["vpc"])
        w.networks[key] = {"security_group_id": group.id}
    return w.networks[key]


def _subnet_group_name(database):
    # moto keeps the name write-only and the group itself (None: the default VPC's default group).
    return getattr(database, "_db_subnet_group_name", None)


def _vpc_of(rds, ec2, database):
    group = rds.subnet_groups.get(_subnet_group_name(database) or "default")
    if group is None:
        return ec2.default_vpc.id if ec2.default_vpc else None
    return group.vpc_id


def reaches(w, region, instance_id):
    """(reachable, why) for the probe of world ``w`` and instance ``instance_id``."""
    operator = w.networks.get(("operator", region))
    if operator is None:
        return True, "the world models no network"
    rds = rds_backends[ACCOUNT][region]
    ec2 = ec2_backends[ACCOUNT][region]
    database = rds.databases.get(instance_id.lower())
    if database is None:
        return False, f"no instance {instance_id}"
    vpc = _vpc_of(rds, ec2, database)
    if vpc != operator["vpc"]:
        return False, (
            f"{instance_id} sits in {vpc} (DB subnet group {_subnet_group_name(database) or 'default'}), "
            f"the probe in {operator['vpc']}"
        )
    port = int(getattr(database, "port", 5432) or 5432)
    return _admits(ec2, operator, instance_id, database.vpc_security_group_ids, port)


def _admits(ec2, operator, name, group_ids, port):
    """(reachable, why): whether one of ``group_ids`` admits the probe's security group on ``port``."""
    for sg_id in group_ids:
        group = ec2.get_security_group_from_id(sg_id)
        for rule in getattr(group, "ingress_rules", []) if group else []:
            pairs = list(getattr(rule, "source_groups", None) or []) + [getattr(rule, "source_group", None) or {}]
            sources = {pair.get("GroupId") for pair in pairs}
            low, high = int(rule.from_port or 0), int(rule.to_port or 65535)
            if operator["probe_security_group"] in sources and low <= port <= high:
                return True, f"{name} admits the probe through {sg_id}"
    return False, (
        f"no security group of {name} ({', '.join(group_ids) or 'none'}) admits "
        f"the probe's {operator['probe_security_group']} on port {port}"
    )


def reaches_cache(w, region, group_id):
    """(reachable, why) for the probe of world ``w`` and the replication group ``group_id``."""
    operator = w.networks.get(("operator", region))
    if operator is None:
        return True, "the world models no network"
    caches = elasticache_backends[ACCOUNT][region]
    ec2 = ec2_backends[ACCOUNT][region]
    group = caches.replication_groups.get(group_id)
    if group is None:
        return False, f"no replication group {group_id}"
    settings = getattr(group, "opsplane_settings", {})
    subnet_group = caches.cache_subnet_groups.get(settings.get("subnet_group") or "default")
    vpc = subnet_group.vpc_id if subnet_group is not None else (ec2.default_vpc.id if ec2.default_vpc else None)
    if vpc != operator["vpc"]:
        return False, (
            f"{group_id} sits in {vpc} (cache subnet group {settings.get('subnet_group') or 'default'}), "
            f"the probe in {operator['vpc']}"
        )
    group_ids = list(settings.get("security_group_ids") or [])
    if not group_ids:
        default = ec2.get_default_security_group(vpc)
        group_ids = [default.id] if default else []
    return _admits(ec2, operator, group_id, group_ids, int(getattr(group, "port", 6379) or 6379))


def place_restore(rds, database, request):
    """Puts a restored instance where AWS would: in the DB subnet group and security groups the request
    names, else the default VPC and that VPC's default security group."""
    ec2 = ec2_backends[ACCOUNT][rds.region_name]
    if not request.get("db_subnet_group_name"):
        database._db_subnet_group_name = None
        database.db_subnet_group = None
    if not request.get("vpc_security_group_ids"):
        vpc = _vpc_of(rds, ec2, database)
        default = ec2.get_default_security_group(vpc) if vpc else None
        database.vpc_security_group_ids = [default.id] if default else []


def launch_template(region, name, new_version):
    """The account's EC2 launch template ``name`` for node groups (made with one version when absent); with
    ``new_version`` one more version. Its id, name and latest version number."""
    ec2 = ec2_backends[ACCOUNT][region]
    template_id = ec2.launch_template_name_to_ids.get(name)
    if template_id is None:
        template = ec2.create_launch_template(name, "node groups", {"MetadataOptions": {"HttpTokens": "required"}}, {})
    else:
        template = ec2.get_launch_template(template_id)
        if new_version:
            template.create_version({"MetadataOptions": {"HttpTokens": "required"}}, "node groups")
    return {"id": template.id, "name": template.name, "latest_version": str(template.latest_version_number)}
