"""IAM as the deploy template grants it: each function and each state machine of a local plane acts with
its own role's policies, read from ``bootstrap/template.yaml`` (or a test's copy), and a call the role does
not allow is refused with the service's access-denied error, as on AWS.

moto's own access control (INITIAL_NO_AUTH_ACTION_COUNT) judges every non-IAM request against resource
``*`` and cannot read our condition keys, so it would refuse every resource-scoped statement of the
template; the model judges actions itself. What it does not judge (said in docs/LOCAL-WORLD.md): the
``Resource`` element (ARNs, wildcards), ``Condition`` blocks (resource tags, ``aws:SourceAccount``) and
Step Functions calls (the local engine is not on moto). ``!If`` takes the branch of a template with none of
its optional parameters set (no KMS key, no probe VPC, ...).
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
"""

import os
import re

import yaml

_TEMPLATE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "bootstrap", "template.yaml")


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form intrinsics (``!Sub``, ``!If``, ...) as ``{"Fn::X": ...}``."""


def _intrinsic(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def _resolve(value):
    """Drops ``!If`` (to its "no optional parameter" branch) and ``AWS::NoValue``."""
    if isinstance(value, dict):
        if "Fn::If" in value:
            _, _, otherwise = value["Fn::If"]
            return _resolve(otherwise)
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        out = [_resolve(v) for v in value]
        return [v for v in out if v != {"Ref": "AWS::NoValue"}]
    return value


def _statements(policies):
    out = []
    for policy in policies or []:
        if isinstance(policy, dict):
            document = policy.get("PolicyDocument", policy)
            out.extend(document.get("Statement", []))
    return out


def load(path=None):
    """Role name -> list of statements: ``function:<name>`` for each function, ``workflow:<name>`` for each
    state machine (names without the ``opsplane-`` prefix)."""
    with open(path or _TEMPLATE, encoding="utf-8") as f:
        template = _resolve(yaml.load(f, Loader=_CfnLoader))
    resources = template.get("Resources", {})
    roles = {}
    for resource in resources.values():
        kind, props = resource.get("Type"), resource.get("Properties", {})
        if kind == "AWS::Serverless::Function":
            name = str(props.get("FunctionName", "")).removeprefix("opsplane-")
            roles[f"function:{name}"] = _statements(props.get("Policies"))
        elif kind == "AWS::StepFunctions::StateMachine":
            name = str(props.get("StateMachineName", "")).removeprefix("opsplane-")
            role = props.get("RoleArn", {}).get("Fn::GetAtt", "")
            role_name = role.split(".")[0] if isinstance(role, str) else role[0]
            role_props = resources.get(role_name, {}).get("Properties", {})
            roles[f"workflow:{name}"] = _statements(role_props.get("Policies"))
    return roles


def _matches(patterns, action):
    if isinstance(patterns, str):
        patterns = [patterns]
    for pattern in patterns:
        regex = "^" + re.escape(pattern).replace("\\*", ".*").replace("\\?", ".") + "$"
        if re.match(regex, action, re.IGNORECASE):
            return True
    return False


def allowed(statements, action):
    """AWS's evaluation on the Action element: an explicit Deny wins, else an Allow is needed."""
    verdict = False
    for statement in statements:
        if not isinstance(statement, dict) or "Action" not in statement:
            continue
        if _matches(statement["Action"], action):
            if statement.get("Effect") == "Deny":
                return False
            verdict = True
    return verdict


# S3's REST operations, as IAM names them: (method, on an object?, query marker) -> action.
def s3_action(method, path, query):
    parts = [p for p in path.split("/") if p]
    on_object = len(parts) >= 2
    for marker, action in (
        ("retention", "PutObjectRetention" if method == "PUT" else "GetObjectRetention"),
        ("legal-hold", "PutObjectLegalHold" if method == "PUT" else "GetObjectLegalHold"),
        ("versioning", "PutBucketVersioning" if method == "PUT" else "GetBucketVersioning"),
        ("object-lock", "PutBucketObjectLockConfiguration" if method == "PUT" else "GetBucketObjectLockConfiguration"),
        ("versions", "ListBucketVersions"),
        ("tagging", "PutObjectTagging" if method == "PUT" else "GetObjectTagging"),
    ):
        if marker in query:
            return action
    if on_object:
        return {"GET": "GetObject", "HEAD": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject", "POST": "PutObject"}.get(method)
    if method in ("GET", "HEAD"):
        return "ListBucket"
    return None


# EKS's REST operations by method and path shape.
_EKS = [
    ("GET", r"^/clusters/[^/]+$", "DescribeCluster"),
    ("POST", r"^/clusters$", "CreateCluster"),
    ("POST", r"^/clusters/[^/]+/updates$", "UpdateClusterVersion"),
    ("POST", r"^/clusters/[^/]+/update-config$", "UpdateClusterConfig"),
    ("GET", r"^/clusters/[^/]+/node-groups$", "ListNodegroups"),
    ("POST", r"^/clusters/[^/]+/node-groups$", "CreateNodegroup"),
    ("GET", r"^/clusters/[^/]+/node-groups/[^/]+$", "DescribeNodegroup"),
    ("POST", r"^/clusters/[^/]+/node-groups/[^/]+/update-config$", "UpdateNodegroupConfig"),
    ("POST", r"^/clusters/[^/]+/node-groups/[^/]+/update-version$", "UpdateNodegroupVersion"),
    ("POST", r"^/clusters/[^/]+/addons$", "CreateAddon"),
    ("GET", r"^/clusters/[^/]+/addons$", "ListAddons"),
    ("POST", r"^/clusters/[^/]+/addons/[^/]+/update$", "UpdateAddon"),
    ("GET", r"^/clusters/[^/]+/addons/[^/]+$", "DescribeAddon"),
    ("POST", r"^/clusters/[^/]+/access-entries$", "CreateAccessEntry"),
    ("GET", r"^/clusters/[^/]+/access-entries$", "ListAccessEntries"),
    ("POST", r"^/clusters/[^/]+/access-entries/.+/access-policies$", "AssociateAccessPolicy"),
    ("GET", r"^/clusters/[^/]+/access-entries/.+/access-policies$", "ListAssociatedAccessPolicies"),
    ("DELETE", r"^/clusters/[^/]+/access-entries/.+/access-policies/.+$", "DisassociateAccessPolicy"),
    ("GET", r"^/clusters/[^/]+/access-entries/.+$", "DescribeAccessEntry"),
    ("POST", r"^/clusters/[^/]+/access-entries/.+$", "UpdateAccessEntry"),
    ("POST", r"^/clusters/[^/]+/pod-identity-associations$", "CreatePodIdentityAssociation"),
    ("GET", r"^/clusters/[^/]+/pod-identity-associations$", "ListPodIdentityAssociations"),
    ("GET", r"^/clusters/[^/]+/pod-identity-associations/[^/]+$", "DescribePodIdentityAssociation"),
    ("GET", r"^/tags/.+$", "ListTagsForResource"),
    ("POST", r"^/tags/.+$", "TagResource"),
]


def eks_action(method, path):
    for m, pattern, action in _EKS:
        if m == method and re.match(pattern, path):
            return action
    return None
