"""EKS as AWS runs it: clusters and node groups pass through CREATING/UPDATING before ACTIVE, and an update
is refused while another is in progress.

moto has no UpdateClusterVersion or UpdateNodegroupVersion; the model serves both (``serve``) on moto's
state, with the answers and refusals the EKS API reference gives.
Statuses: https://docs.aws.amazon.com/eks/latest/APIReference/API_Cluster.html and API_Nodegroup.html
"""

import json
import re
import uuid

from moto.eks import models
from moto.eks.exceptions import InvalidParameterException, ResourceInUseException, ResourceNotFoundException

from . import context, world


_request = world.current


def _walk(w, request, key, target, status, seconds, on_finish=None):
    world.walk(w, request, key, target, [(status, seconds)], "ACTIVE", on_finish)


def _error(kind, message, **names):
    """One of moto's EKS errors, the names it does not concern left empty."""
    fields = {"clusterName": None, "nodegroupName": None, "fargateProfileName": None, "addonName": None}
    fields.update(names)
    return kind(message=message, **fields)


def _in_use(message, **names):
    return _error(ResourceInUseException, message, **names)


def _wrap(name, wrapper):
    original = getattr(models.EKSBackend, name)
    setattr(models.EKSBackend, name, wrapper(original))


def _create_cluster(original):
    def create_cluster(self, *args, **kwargs):
        cluster = original(self, *args, **kwargs)
        request, w = _request()
        if w is not None:
            key = ("cluster", self.region_name, cluster.name)
            _walk(w, request, key, cluster, "CREATING", w.duration("eks_cluster_create"))
        return cluster

    return create_cluster


def _delete_cluster(original):
    def delete_cluster(self, name):
        request, w = _request()
        cluster = self.clusters.get(name)
        if w is not None and cluster is not None:
            _require_active(w, cluster, f"Cluster {name}", clusterName=name)
        deleted = original(self, name)
        if w is None:
            return deleted
        # While DELETING, _require_active refuses every update of it.
        key = ("cluster", self.region_name, name)
        world.linger(w, request, key, self.clusters, name, deleted, "DELETING", w.duration("eks_cluster_delete"))
        return deleted

    return delete_cluster


def _create_nodegroup(original):
    def create_nodegroup(self, *args, **kwargs):
        nodegroup = original(self, *args, **kwargs)
        request, w = _request()
        if w is not None:
            key = ("nodegroup", self.region_name, nodegroup.cluster_name, nodegroup.nodegroup_name)
            _walk(w, request, key, nodegroup, "CREATING", w.duration("eks_nodegroup_create"))
        return nodegroup

    return create_nodegroup


def _nodegroup(backend, cluster_name, nodegroup_name):
    cluster = backend.clusters.get(cluster_name)
    nodegroup = cluster.nodegroups.get(nodegroup_name) if cluster else None
    if nodegroup is None:
        raise _error(
            ResourceNotFoundException,
            f"No node group found for name: {nodegroup_name}.",
            clusterName=cluster_name,
            nodegroupName=nodegroup_name,
        )
    return nodegroup


def _require_active(w, target, what, **names):
    if target.status != "ACTIVE":
        w.count("refused.eks_not_active")
        raise _in_use(f"{what} is currently {target.status}; an update needs it ACTIVE.", **names)


def _update_nodegroup_config(original):
    def update_nodegroup_config(self, cluster_name, nodegroup_name, *args, **kwargs):
        request, w = _request()
        if w is not None:
            nodegroup = _nodegroup(self, cluster_name, nodegroup_name)
            # A node group is not changed while its cluster's control plane is being created or updated.
            _require_active(w, self.clusters[cluster_name], f"Cluster {cluster_name}", clusterName=cluster_name)
            _require_active(
                w, nodegroup, f"Nodegroup {nodegroup_name}", clusterName=cluster_name, nodegroupName=nodegroup_name
            )
        answer = original(self, cluster_name, nodegroup_name, *args, **kwargs)
        if w is not None:
            key = ("nodegroup", self.region_name, cluster_name, nodegroup_name)
            _walk(w, request, key, nodegroup, "UPDATING", w.duration("eks_nodegroup_scale"))
        return answer

    return update_nodegroup_config


def _update_cluster_config(original):
    # UpdateClusterConfig changes what the request names and keeps the rest of the cluster's VPC
    # configuration (its subnets above all); moto replaces the whole of it. A cluster being created or
    # updated refuses another update (ResourceInUseException), and the change takes the control plane
    # UPDATING for minutes, as a version update does.
    # https://docs.aws.amazon.com/eks/latest/APIReference/API_UpdateClusterConfig.html
    def update_cluster_config(self, name, resources_vpc_config=None, *args, **kwargs):
        request, w = _request()
        cluster = self.clusters.get(name)
        if cluster is not None and resources_vpc_config:
            resources_vpc_config = {**(cluster.resources_vpc_config or {}), **resources_vpc_config}
        if w is not None and cluster is not None:
            _require_active(w, cluster, f"Cluster {name}", clusterName=name)
        answer = original(self, name, resources_vpc_config, *args, **kwargs)
        if w is not None and cluster is not None:
            _walk(w, request, ("cluster", self.region_name, name), cluster, "UPDATING", w.duration("eks_cluster_config"))
        return answer

    return update_cluster_config


def _update(kind, params):
    return {
        "update": {
            "id": str(uuid.uuid4()),
            "status": "InProgress",
            "type": kind,
            "params": params,
            "createdAt": context.real_ms() / 1000.0,
            "errors": [],
        }
    }


def update_cluster_version(backend, cluster_name, body):
    """UpdateClusterVersion: one minor version up, on an ACTIVE cluster; UPDATING until it is applied."""
    request, w = _request()
    cluster = backend.clusters.get(cluster_name)
    if cluster is None:
        raise _error(ResourceNotFoundException, f"No cluster found for name: {cluster_name}.", clusterName=cluster_name)
    version = body.get("version", "")
    _require_active(w, cluster, f"Cluster {cluster_name}", clusterName=cluster_name)
    if not _one_minor_up(cluster.version, version):
        raise _error(
            InvalidParameterException,
            f"Unsupported Kubernetes minor version update from {cluster.version} to {version}",
            clusterName=cluster_name,
        )

    def apply():
        cluster.version = version

    _walk(w, request, ("cluster", backend.region_name, cluster_name), cluster, "UPDATING",
          w.duration("eks_cluster_update"), on_finish=apply)
    return _update("VersionUpdate", [{"type": "Version", "value": version}])


def update_nodegroup_version(backend, cluster_name, nodegroup_name, body):
    """UpdateNodegroupVersion: the node group follows its cluster's version (or the one given), rolling its
    nodes, UPDATING until done; refused while another update runs."""
    request, w = _request()
    nodegroup = _nodegroup(backend, cluster_name, nodegroup_name)
    _require_active(w, backend.clusters[cluster_name], f"Cluster {cluster_name}", clusterName=cluster_name)
    _require_active(w, nodegroup, f"Nodegroup {nodegroup_name}", clusterName=cluster_name, nodegroupName=nodegroup_name)
    cluster = backend.clusters[cluster_name]
    version = body.get("version") or cluster.version
    if version != cluster.version:
        raise _error(
            InvalidParameterException,
            f"Requested Nodegroup Kubernetes Version {version} is not supported by cluster version {cluster.version}",
            clusterName=cluster_name,
            nodegroupName=nodegroup_name,
        )

    # A launch template's version rolls the nodes too; the template itself stays the one the group was
    # created with (UpdateNodegroupVersion, launchTemplate: "You can't change the template").
    template = body.get("launchTemplate") or {}

    def apply():
        nodegroup.version = version
        if template.get("version") and nodegroup.launch_template:
            nodegroup.launch_template["version"] = template["version"]

    _walk(w, request, ("nodegroup", backend.region_name, cluster_name, nodegroup_name), nodegroup, "UPDATING",
          w.duration("eks_nodegroup_update"), on_finish=apply)
    return _update("VersionUpdate", [{"type": "Version", "value": version}])


def _one_minor_up(current, wanted):
    try:
        cur = [int(x) for x in str(current).split(".")[:2]]
        new = [int(x) for x in str(wanted).split(".")[:2]]
    except ValueError:
        return False
    return new[0] == cur[0] and new[1] == cur[1] + 1


_CLUSTER_VERSION = re.compile(r"^/clusters/([^/]+)/updates$")
_NODEGROUP_VERSION = re.compile(r"^/clusters/([^/]+)/node-groups/([^/]+)/update-version$")


def serve(method, path, body, region, account):
    """Serves the EKS calls moto lacks: (status, headers, body), or None when moto serves the path."""
    if method != "POST":
        return None
    backend = models.eks_backends[account][region]
    parsed = json.loads(body or b"{}")
    try:
        m = _CLUSTER_VERSION.match(path)
        if m:
            return 200, {"Content-Type": "application/json"}, json.dumps(update_cluster_version(backend, m.group(1), parsed))
        m = _NODEGROUP_VERSION.match(path)
        if m:
            answer = update_nodegroup_version(backend, m.group(1), m.group(2), parsed)
            return 200, {"Content-Type": "application/json"}, json.dumps(answer)
    except (ResourceInUseException, ResourceNotFoundException, InvalidParameterException) as err:
        # moto's EKS errors carry their AWS type, HTTP status and JSON body as attributes.
        return err.STATUS, {"Content-Type": "application/json", "x-amzn-ErrorType": err.TYPE}, err.description
    return None


def install():
    _wrap("create_cluster", _create_cluster)
    _wrap("create_nodegroup", _create_nodegroup)
    _wrap("delete_cluster", _delete_cluster)
    _wrap("update_nodegroup_config", _update_nodegroup_config)
    _wrap("update_cluster_config", _update_cluster_config)
