"""The WSGI layer in front of moto: reads who asks and when, throttles and injects faults as AWS would,
moves the world's operations to the request's virtual time, then lets moto (or the model) answer.

Control requests (``/_opsplane/world/<id>``) configure a world and read its counters; they never reach moto.
"""

import io
import json
import re
import uuid
from urllib.parse import parse_qs

from moto.elasticache.exceptions import ElastiCacheException
from moto.rds.models import rds_backends

from . import cbor, cloudcontrol, context, elasticache, eks, eks_access, iam, keys, mute, network, rds, world
from .context import ACCOUNT

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
# Services whose requests the fault injector may fail: the ones the workflows retry.
_FAULTY = {"rds", "eks", "dynamodb", "s3"}


def _read_body(environ):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _scope(environ):
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", "") or environ.get("QUERY_STRING", ""))
    return (match.group(1), match.group(2)) if match else ("us-east-1", "")


def _params(environ, body):
    """The request's query and form-encoded body parameters (the query protocol's), first value each."""
    params = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        params.update({k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
    return params


def _action(environ, params):
    if "Action" in params:
        return params["Action"]
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.split(".")[-1]
    return f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"


# The request parameters that name the resource an RDS call is about.
_RDS_NAMES = (
    "DBInstanceIdentifier",
    "DBSnapshotIdentifier",
    "SourceDBSnapshotIdentifier",
    "TargetDBSnapshotIdentifier",
    "SourceDBInstanceIdentifier",
    "TargetDBInstanceIdentifier",
)


def _targets(environ, request):
    """The resource names a request is about (lower-cased, as RDS keeps them), or None for a list call."""
    service = request.service
    if service == "rds":
        names = {v.split(":")[-1].lower() for k, v in request.params.items() if k in _RDS_NAMES and v}
        # A batched describe names its resources as a filter's values (Filters.Filter.1.Values.Value.N).
        names |= {v.lower() for k, v in request.params.items() if k.startswith("Filters.") and ".Values." in k and v}
        return names or None
    if service == "elasticache":
        # A member cache cluster (<group>-001) moves with its replication group.
        names = set()
        for k, v in request.params.items():
            if k in ("ReplicationGroupId", "SnapshotName", "SourceSnapshotName", "TargetSnapshotName") and v:
                names.add(v)
            elif k == "CacheClusterId" and v:
                names.add(v.rsplit("-", 1)[0])
        return names or None
    if service == "eks":
        parts = [p for p in environ.get("PATH_INFO", "").split("/") if p]
        # /clusters/<name>[/node-groups/<nodegroup>[/...]]
        if len(parts) >= 2 and parts[0] == "clusters":
            return {parts[1]} | ({parts[3]} if len(parts) >= 4 and parts[2] == "node-groups" else set())
        return None
    return set()


def _respond(start_response, status, headers, body):
    reasons = {200: "OK", 400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Slow Down"}
    data = body.encode("utf-8") if isinstance(body, str) else body
    headers = dict(headers)
    headers["Content-Length"] = str(len(data))
    headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
    start_response(f"{status} {reasons.get(status, 'Error')}", list(headers.items()))
    return [data]


def _error(service, status, code, message):
    """An error as ``service``'s protocol spells it (query XML, REST JSON, JSON 1.0, S3 XML)."""
    if service in ("rds", "ec2", "elasticache"):
        return status, {"Content-Type": "text/xml"}, (
            '<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>'
            + ("Sender" if status < 500 else "Receiver")
            + f"</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
    if service == "s3":
        return status, {"Content-Type": "application/xml"}, (
            f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{uuid.uuid4()}</RequestId></Error>"
        )
    if service == "dynamodb":
        return status, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
        )
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code}, json.dumps({"message": message})


def _throttle(service):
    # RDS answers ThrottlingException "Rate exceeded" (rds-api-throttling.html); EKS's common errors list
    # ThrottlingException too; DynamoDB's is ThrottlingException; S3 slows callers down with 503 SlowDown.
    if service == "s3":
        return _error(service, 503, "SlowDown", "Please reduce your request rate.")
    return _error(service, 400, "ThrottlingException", "Rate exceeded")


def _server_error(service):
    code = {"rds": "InternalFailure", "eks": "ServerException", "dynamodb": "InternalServerError", "s3": "InternalError"}
    return _error(service, 500, code.get(service, "InternalFailure"), "We encountered an internal error. Please try again.")


def _before(w, request):
    """An injected fault or a throttle for this request, or None to serve it."""
    faults = w.settings["faults"]
    w.meter(request.service, request.t_ms)
    if request.service in _FAULTY and (faults["server_error_rate"] or faults["throttle_rate"]):
        roll = w.rng.random()
        if roll < faults["server_error_rate"]:
            w.count(f"injected.5xx.{request.service}")
            return _server_error(request.service)
        if roll < faults["server_error_rate"] + faults["throttle_rate"]:
            w.count(f"injected.throttle.{request.service}")
            return _throttle(request.service)
    bucket = w.bucket(request.service, request.region)
    if bucket is not None and not bucket.take(request.t_ms):
        w.count(f"throttled.{request.service}")
        return _throttle(request.service)
    return None


_DENIED = {
    # The access-denied error each protocol answers with (each API reference's Common Errors).
    "rds": (403, "AccessDenied"),
    "ec2": (403, "UnauthorizedOperation"),
    "s3": (403, "AccessDenied"),
    "eks": (403, "AccessDeniedException"),
}


# DynamoDB's transactions are authorized item by item: no IAM action is named after them.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


def _iam_actions(environ, service, action, body):
    """Every IAM action a request needs (``rds:CreateDBSnapshot``); none that the model cannot name."""
    if service == "cloudcontrolapi":
        return cloudcontrol.required_actions(action, body)
    name = _iam_action(environ, service, action)
    if name in ("dynamodb:TransactWriteItems", "dynamodb:TransactGetItems"):
        try:
            items = json.loads(body or b"{}").get("TransactItems", [])
        except ValueError:
            items = []
        return sorted({f"dynamodb:{_TRANSACT[k]}" for item in items for k in item if k in _TRANSACT})
    return [name] if name else []


_IAM_PREFIX = {"monitoring": "cloudwatch"}


def _iam_action(environ, service, action):
    """The IAM action a request needs (``rds:CreateDBSnapshot``), or None when the model cannot name it."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    # CloudWatch signs as `monitoring`; its IAM actions are `cloudwatch:*`.
    service = _IAM_PREFIX.get(service, service)
    if service == "s3":
        name = iam.s3_action(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
    elif service == "eks":
        name = iam.eks_action(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
    elif target:
        name = target.split(".")[-1]
    elif action and " " not in action:
        name = action
    else:
        name = None
    return f"{service}:{name}" if name else None


def _authorize(w, environ, request, body):
    """AWS's access-denied answer when the caller's template role does not allow the request, else None."""
    role = environ.get(context.ROLE_HEADER)
    if not role or not w.settings["iam"]["enforce"]:
        return None
    statements = w.roles().get(role, [])
    denied = [a for a in _iam_actions(environ, request.service, request.action, body) if not iam.allowed(statements, a)]
    if not denied:
        return None
    action = denied[0]
    w.count(f"denied.{role}.{action}")
    kind, name = role.split(":", 1)
    principal = f"arn:aws:sts::{ACCOUNT}:assumed-role/opsplane-{name}-{kind}/opsplane-{name}"
    message = (
        f"User: {principal} is not authorized to perform: {action} because no identity-based policy allows "
        f"the {action} action"
    )
    status, code = _DENIED.get(request.service, (400, "AccessDeniedException"))
    return _error(request.service, status, code, message)


def _account_attributes(w, region):
    quotas = "".join(
        f"<AccountQuota><AccountQuotaName>{name}</AccountQuotaName><Used>{used}</Used><Max>{most}</Max></AccountQuota>"
        for name, used, most in rds.account_quotas(rds_backends[ACCOUNT][region], w)
    )
    return 200, {"Content-Type": "text/xml"}, (
        '<DescribeAccountAttributesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
        f"<DescribeAccountAttributesResult><AccountQuotas>{quotas}</AccountQuotas></DescribeAccountAttributesResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</DescribeAccountAttributesResponse>"
    )


def _control(environ, start_response, body):
    parts = environ["PATH_INFO"][len("/_opsplane/world/"):].strip("/").split("/")
    w = world.get(parts[0] or world.DEFAULT)
    ok = lambda answer: _respond(start_response, 200, {"Content-Type": "application/json"}, json.dumps(answer))
    # /<world>/network/<region>/<environment>: the environment's DB subnet group and security groups.
    if len(parts) == 4 and parts[1] == "network":
        return ok(network.environment_network(w, parts[2], parts[3]))
    # /<world>/closed-group/<region>/<name>: a security group in the operator VPC that admits nothing.
    if len(parts) == 4 and parts[1] == "closed-group":
        return ok(network.closed_group(w, parts[2], parts[3]))
    # /<world>/kms-key/<region>/<alias>: the account's key alias/<alias> in the region (made when absent).
    if len(parts) == 4 and parts[1] == "kms-key":
        return ok(keys.account_key(parts[2], parts[3]))
    # /<world>/launch-template/<region>/<name>: the account's launch template <name>, made when absent with
    # one version; a POST adds a version (its number in the answer).
    if len(parts) == 4 and parts[1] == "launch-template":
        return ok(network.launch_template(parts[2], parts[3], environ.get("REQUEST_METHOD") == "POST"))
    # /<world>/reaches/<region>/<instance>: whether the probe's network reaches the instance, and why.
    if len(parts) == 4 and parts[1] == "reaches":
        reachable, why = network.reaches(w, parts[2], parts[3])
        return ok({"reachable": reachable, "why": why})
    # /<world>/reaches-cache/<region>/<group>: the same for a Redis replication group.
    if len(parts) == 4 and parts[1] == "reaches-cache":
        reachable, why = network.reaches_cache(w, parts[2], parts[3])
        return ok({"reachable": reachable, "why": why})
    if environ.get("REQUEST_METHOD") == "POST":
        try:
            w.configure(json.loads(body or b"{}"))
        except (ValueError, TypeError) as err:
            return _respond(start_response, 400, {"Content-Type": "application/json"}, json.dumps({"message": str(err)}))
    return ok({"settings": w.settings, "counters": w.counters, "operations": len(w.operations), "rates": w.rates()})


def install(app_class):
    dispatch = app_class.__call__

    def __call__(self, environ, start_response):
        body = _read_body(environ)
        if environ.get("PATH_INFO", "").startswith("/_opsplane/world/"):
            return _control(environ, start_response, body)
        if cbor.is_cbor(environ):
            # moto serves CloudWatch's JSON protocol, not the CBOR the SDK sends: translate both ways.
            body = cbor.to_json_request(environ, body)
            answer = {}

            def capture(status, headers, exc_info=None):
                answer["status"], answer["headers"] = status, headers
                return lambda _data: None

            chunks = list(serve(self, environ, capture, body))
            status, headers, data = cbor.to_cbor_response(answer["status"], answer["headers"], chunks)
            start_response(status, headers)
            return [data]
        return serve(self, environ, start_response, body)

    def serve(self, environ, start_response, body):
        region, service = _scope(environ)
        world_id = environ.get(context.WORLD_HEADER) or world.DEFAULT
        try:
            t_ms = int(environ.get(context.TIME_HEADER) or context.real_ms())
        except ValueError:
            t_ms = context.real_ms()
        params = _params(environ, body)
        request = context.Request(world_id, t_ms, service, _action(environ, params), region, params)
        w = world.get(world_id)
        refused = _authorize(w, environ, request, body) or _before(w, request)
        if refused is not None:
            return _respond(start_response, *refused)
        context.set_current(request)
        try:
            world.settle(w, t_ms, _targets(environ, request), service)
            if service == "rds" and request.action == "DescribeAccountAttributes":
                return _respond(start_response, *_account_attributes(w, region))
            if service == "monitoring" and request.action in mute.OPERATIONS:
                return _respond(start_response, *mute.serve(w, request.action, body, region, ACCOUNT, t_ms))
            if service == "elasticache" and request.action in elasticache.OPERATIONS:
                try:
                    return _respond(start_response, *elasticache.serve(request.action, params, region, ACCOUNT))
                except ElastiCacheException as err:
                    return _respond(start_response, *_error(service, 400, err.code, err.message))
            if service == "cloudcontrolapi" and request.action in cloudcontrol.OPERATIONS:
                return _respond(start_response, *cloudcontrol.serve(request.action, body, region, ACCOUNT))
            if service == "eks":
                method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")
                served = eks_access.serve(method, path, body, region, ACCOUNT) or eks.serve(method, path, body, region, ACCOUNT)
                if served is not None:
                    return _respond(start_response, *served)
            return dispatch(self, environ, start_response)
        finally:
            context.set_current(None)

    app_class.__call__ = __call__
