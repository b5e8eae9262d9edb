"""A cluster's add-ons, access entries and pod identity associations, which moto does not have: the model
keeps them on moto's cluster and serves the EKS API's calls for them, with its answers and refusals.

Add-ons pass through CREATING or UPDATING before ACTIVE, and EKS refuses to take one to an older version
("You can't downgrade an add-on", UpdateAddon). Access entries carry their associated access policies;
pod identity associations bind a namespace's service account to an IAM role.
https://docs.aws.amazon.com/eks/latest/APIReference/API_Addon.html, API_AccessEntry.html,
API_PodIdentityAssociation.html
"""

import json
import re
import uuid

from moto.eks import models
from moto.eks.exceptions import InvalidParameterException, ResourceInUseException, ResourceNotFoundException

from . import context, world
from .eks import _error
from .context import ACCOUNT

_JSON = {"Content-Type": "application/json"}


def _cluster(backend, name):
    cluster = backend.clusters.get(name)
    if cluster is None:
        raise _error(ResourceNotFoundException, f"No cluster found for name: {name}.", clusterName=name)
    for attr in ("opsplane_addons", "opsplane_access", "opsplane_pod_identity"):
        if not hasattr(cluster, attr):
            setattr(cluster, attr, {})
    return cluster


def _now():
    return context.real_ms() / 1000.0


def _version_key(version):
    """`v1.18.3-eksbuild.1` as comparable numbers."""
    return [int(n) for n in re.findall(r"\d+", version or "")]


def _public(item):
    """What EKS answers of a kept item: its fields without the model's own (``_policies``)."""
    return {k: v for k, v in item.items() if not k.startswith("_")}


def create_addon(backend, name, body):
    request, w = world.current()
    cluster = _cluster(backend, name)
    addon_name = body.get("addonName")
    if addon_name in cluster.opsplane_addons:
        raise _error(ResourceInUseException, f"Addon already exists: {addon_name}", clusterName=name, addonName=addon_name)
    addon = {
        "addonName": addon_name,
        "clusterName": name,
        "status": "ACTIVE",
        "addonVersion": body.get("addonVersion") or "v1.0.0-eksbuild.1",
        "addonArn": f"arn:aws:eks:{backend.region_name}:{ACCOUNT}:addon/{name}/{addon_name}/{uuid.uuid4()}",
        "createdAt": _now(),
        "modifiedAt": _now(),
        "serviceAccountRoleArn": body.get("serviceAccountRoleArn"),
        "configurationValues": body.get("configurationValues"),
        "tags": body.get("tags") or {},
    }
    cluster.opsplane_addons[addon_name] = addon
    _walk(w, request, backend, name, addon, "CREATING", "eks_addon")
    return {"addon": _public(addon)}


class _AddonStatus:
    """What ``world.walk`` moves through its statuses: an add-on's ``status`` (the add-on is a dict)."""

    def __init__(self, addon):
        object.__setattr__(self, "_addon", addon)

    def __setattr__(self, attr, value):
        if attr == "status":
            self._addon["status"] = value


def _walk(w, request, backend, cluster_name, addon, status, duration):
    if w is not None:
        key = ("addon", backend.region_name, cluster_name, addon["addonName"])
        world.walk(w, request, key, _AddonStatus(addon), [(status, w.duration(duration))], "ACTIVE")


def describe_addon(backend, name, addon_name):
    cluster = _cluster(backend, name)
    addon = cluster.opsplane_addons.get(addon_name)
    if addon is None:
        raise _error(ResourceNotFoundException, f"No addon: {addon_name} found in cluster: {name}", clusterName=name, addonName=addon_name)
    return {"addon": _public(addon)}


def list_addons(backend, name):
    return {"addons": sorted(_cluster(backend, name).opsplane_addons), "nextToken": None}


def update_addon(backend, name, addon_name, body):
    request, w = world.current()
    cluster = _cluster(backend, name)
    addon = cluster.opsplane_addons.get(addon_name)
    if addon is None:
        raise _error(ResourceNotFoundException, f"No addon: {addon_name} found in cluster: {name}", clusterName=name, addonName=addon_name)
    if addon["status"] != "ACTIVE":
        raise _error(ResourceInUseException, f"Addon {addon_name} is currently {addon['status']}", clusterName=name, addonName=addon_name)
    version = body.get("addonVersion")
    if version and _version_key(version) < _version_key(addon["addonVersion"]):
        raise _error(
            InvalidParameterException,
            f"Updating addon {addon_name} from {addon['addonVersion']} to {version} is a downgrade, which is not supported",
            clusterName=name,
            addonName=addon_name,
        )
    params = []
    if version:
        addon["addonVersion"] = version
        params.append({"type": "AddonVersion", "value": version})
    if "configurationValues" in body:
        addon["configurationValues"] = body["configurationValues"]
        params.append({"type": "ConfigurationValues", "value": body["configurationValues"]})
    if "serviceAccountRoleArn" in body:
        addon["serviceAccountRoleArn"] = body["serviceAccountRoleArn"]
    addon["modifiedAt"] = _now()
    _walk(w, request, backend, name, addon, "UPDATING", "eks_addon")
    return {"update": {"id": str(uuid.uuid4()), "status": "InProgress", "type": "AddonUpdate", "params": params, "createdAt": _now(), "errors": []}}


def create_access_entry(backend, name, body):
    cluster = _cluster(backend, name)
    principal = body.get("principalArn")
    if principal in cluster.opsplane_access:
        raise _error(ResourceInUseException, "The specified access entry resource is already in use on this cluster.", clusterName=name)
    entry = {
        "clusterName": name,
        "principalArn": principal,
        "kubernetesGroups": body.get("kubernetesGroups") or [],
        "accessEntryArn": f"arn:aws:eks:{backend.region_name}:{ACCOUNT}:access-entry/{name}/{uuid.uuid4()}",
        "createdAt": _now(),
        "modifiedAt": _now(),
        "tags": body.get("tags") or {},
        "username": body.get("username") or principal,
        "type": body.get("type") or "STANDARD",
        "_policies": {},
    }
    cluster.opsplane_access[principal] = entry
    return {"accessEntry": _public(entry)}


def _entry(backend, name, principal):
    cluster = _cluster(backend, name)
    entry = cluster.opsplane_access.get(principal)
    if entry is None:
        raise _error(ResourceNotFoundException, f"The specified principalArn could not be found: {principal}", clusterName=name)
    return cluster, entry


def describe_access_entry(backend, name, principal):
    cluster, entry = _entry(backend, name, principal)
    return {"accessEntry": _public(entry)}


def list_access_entries(backend, name):
    return {"accessEntries": sorted(_cluster(backend, name).opsplane_access), "nextToken": None}


def associate_access_policy(backend, name, principal, body):
    _, entry = _entry(backend, name, principal)
    policy = {
        "policyArn": body.get("policyArn"),
        "accessScope": body.get("accessScope") or {"type": "cluster"},
        "associatedAt": _now(),
        "modifiedAt": _now(),
    }
    entry["_policies"][policy["policyArn"]] = policy
    return {"clusterName": name, "principalArn": principal, "associatedAccessPolicy": policy}


def update_access_entry(backend, name, principal, body):
    """UpdateAccessEntry: the given Kubernetes groups replace the entry's."""
    _, entry = _entry(backend, name, principal)
    if "kubernetesGroups" in body:
        entry["kubernetesGroups"] = body.get("kubernetesGroups") or []
    if body.get("username"):
        entry["username"] = body["username"]
    entry["modifiedAt"] = _now()
    return {"accessEntry": _public(entry)}


def disassociate_access_policy(backend, name, principal, policy_arn):
    """DisassociateAccessPolicy: the policy no longer applies to the principal."""
    _, entry = _entry(backend, name, principal)
    if entry["_policies"].pop(policy_arn, None) is None:
        raise _error(ResourceNotFoundException, f"The specified policy is not associated: {policy_arn}", clusterName=name)
    return {}


def list_associated_access_policies(backend, name, principal):
    _, entry = _entry(backend, name, principal)
    policies = [entry["_policies"][k] for k in sorted(entry["_policies"])]
    return {"clusterName": name, "principalArn": principal, "associatedAccessPolicies": policies, "nextToken": None}


def create_pod_identity_association(backend, name, body):
    cluster = _cluster(backend, name)
    association_id = "a-" + uuid.uuid4().hex[:17]
    association = {
        "clusterName": name,
        "namespace": body.get("namespace"),
        "serviceAccount": body.get("serviceAccount"),
        "roleArn": body.get("roleArn"),
        "associationArn": f"arn:aws:eks:{backend.region_name}:{ACCOUNT}:podidentityassociation/{name}/{association_id}",
        "associationId": association_id,
        "tags": body.get("tags") or {},
        "createdAt": _now(),
        "modifiedAt": _now(),
    }
    cluster.opsplane_pod_identity[association_id] = association
    return {"association": association}


def list_pod_identity_associations(backend, name):
    cluster = _cluster(backend, name)
    summaries = [
        {k: a[k] for k in ("clusterName", "namespace", "serviceAccount", "associationArn", "associationId")}
        for a in sorted(cluster.opsplane_pod_identity.values(), key=lambda a: (a["namespace"], a["serviceAccount"]))
    ]
    return {"associations": summaries, "nextToken": None}


def describe_pod_identity_association(backend, name, association_id):
    cluster = _cluster(backend, name)
    association = cluster.opsplane_pod_identity.get(association_id)
    if association is None:
        raise _error(ResourceNotFoundException, f"Association not found: {association_id}", clusterName=name)
    return {"association": association}


# (method, path, handler(backend, body, *path groups)), tried in order.
_ROUTES = [
    ("POST", r"^/clusters/([^/]+)/addons$", lambda b, body, c: create_addon(b, c, body)),
    ("GET", r"^/clusters/([^/]+)/addons$", lambda b, body, c: list_addons(b, c)),
    ("POST", r"^/clusters/([^/]+)/addons/([^/]+)/update$", lambda b, body, c, a: update_addon(b, c, a, body)),
    ("GET", r"^/clusters/([^/]+)/addons/([^/]+)$", lambda b, body, c, a: describe_addon(b, c, a)),
    ("POST", r"^/clusters/([^/]+)/access-entries$", lambda b, body, c: create_access_entry(b, c, body)),
    ("GET", r"^/clusters/([^/]+)/access-entries$", lambda b, body, c: list_access_entries(b, c)),
    # A principal ARN holds '/' (role/path/name): the policies' path is matched first.
    ("POST", r"^/clusters/([^/]+)/access-entries/(.+)/access-policies$", lambda b, body, c, p: associate_access_policy(b, c, p, body)),
    ("GET", r"^/clusters/([^/]+)/access-entries/(.+)/access-policies$", lambda b, body, c, p: list_associated_access_policies(b, c, p)),
    ("DELETE", r"^/clusters/([^/]+)/access-entries/(.+)/access-policies/(.+)$", lambda b, body, c, p, a: disassociate_access_policy(b, c, p, a)),
    ("GET", r"^/clusters/([^/]+)/access-entries/(.+)$", lambda b, body, c, p: describe_access_entry(b, c, p)),
    ("POST", r"^/clusters/([^/]+)/access-entries/(.+)$", lambda b, body, c, p: update_access_entry(b, c, p, body)),
    ("POST", r"^/clusters/([^/]+)/pod-identity-associations$", lambda b, body, c: create_pod_identity_association(b, c, body)),
    ("GET", r"^/clusters/([^/]+)/pod-identity-associations$", lambda b, body, c: list_pod_identity_associations(b, c)),
    ("GET", r"^/clusters/([^/]+)/pod-identity-associations/([^/]+)$", lambda b, body, c, a: describe_pod_identity_association(b, c, a)),
]


def serve(method, path, body, region, account):
    """(status, headers, body) for a call of this module's, or None for any other."""
    for m, pattern, handler in _ROUTES:
        match = re.match(pattern, path)
        if m != method or match is None:
            continue
        backend = models.eks_backends[account][region]
        try:
            answer = handler(backend, json.loads(body or b"{}"), *match.groups())
        except (ResourceInUseException, ResourceNotFoundException, InvalidParameterException) as err:
            return err.STATUS, {**_JSON, "x-amzn-ErrorType": err.TYPE}, err.description
        return 200, _JSON, json.dumps(answer)
    return None
