"""Cloud Control API's reads of the EC2 resources a spec names, which moto does not serve: ``GetResource`` of
a security group, a subnet or a launch template by its primary identifier, and ``ListResources`` of launch
templates (whose name is not their identifier), answered from moto's EC2 state.

opsplane asks Cloud Control, not EC2, whether these exist: one small client reads every resource type, where
EC2's SDK crate is the largest of all. A resource that does not exist is ``ResourceNotFoundException``.
https://docs.aws.amazon.com/cloudcontrolapi/latest/APIReference/API_GetResource.html
https://docs.aws.amazon.com/cloudcontrolapi/latest/APIReference/API_ListResources.html
https://docs.aws.amazon.com/cloudcontrolapi/latest/userguide/resource-identifier.html
"""

import json

from moto.ec2.models import ec2_backends

OPERATIONS = {"GetResource", "ListResources"}

# What each type's read handler needs beside `cloudformation:GetResource` / `ListResources` (the types'
# schemas, handlers.read.permissions and handlers.list.permissions): Cloud Control calls EC2 with the
# caller's own credentials.
HANDLER_PERMISSIONS = {
    "AWS::EC2::SecurityGroup": ["ec2:DescribeSecurityGroups"],
    "AWS::EC2::Subnet": ["ec2:DescribeSubnets"],
    "AWS::EC2::LaunchTemplate": ["ec2:DescribeLaunchTemplates"],
}

_JSON = {"Content-Type": "application/x-amz-json-1.0"}


def _error(status, code, message):
    return status, {**_JSON, "x-amzn-ErrorType": code}, json.dumps({"__type": code, "Message": message})


def _security_group(ec2, identifier):
    group = ec2.get_security_group_from_id(identifier)
    if group is None:
        return None
    return {"Id": group.id, "GroupId": group.id, "GroupName": group.name, "VpcId": group.vpc_id,
            "GroupDescription": group.description}


def _subnet(ec2, identifier):
    for zone in ec2.subnets.values():
        subnet = zone.get(identifier)
        if subnet is not None:
            return {"SubnetId": subnet.id, "VpcId": subnet.vpc_id, "CidrBlock": subnet.cidr_block,
                    "AvailabilityZone": subnet.availability_zone}
    return None


def _launch_template_properties(template):
    return {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name,
            "DefaultVersionNumber": str(template.default_version_number),
            "LatestVersionNumber": str(template.latest_version_number)}


def _launch_template(ec2, identifier):
    template = ec2.launch_templates.get(identifier)
    return _launch_template_properties(template) if template is not None else None


_READERS = {
    "AWS::EC2::SecurityGroup": _security_group,
    "AWS::EC2::Subnet": _subnet,
    "AWS::EC2::LaunchTemplate": _launch_template,
}


def required_actions(action, body):
    """The IAM actions a Cloud Control request needs: its own and its type's handler's."""
    try:
        type_name = json.loads(body or b"{}").get("TypeName", "")
    except ValueError:
        type_name = ""
    return [f"cloudformation:{action}", *HANDLER_PERMISSIONS.get(type_name, [])]


def serve(action, body, region, account):
    """(status, headers, body) for a Cloud Control request."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return _error(400, "ValidationException", "The request body is not JSON.")
    type_name = request.get("TypeName", "")
    reader = _READERS.get(type_name)
    if reader is None:
        return _error(400, "TypeNotFoundException", f"The type {type_name} cannot be found.")
    ec2 = ec2_backends[account][region]
    if action == "GetResource":
        identifier = request.get("Identifier", "")
        properties = reader(ec2, identifier)
        if properties is None:
            return _error(
                400,
                "ResourceNotFoundException",
                f"Resource of type '{type_name}' with identifier '{identifier}' was not found.",
            )
        description = {"Identifier": identifier, "Properties": json.dumps(properties)}
        return 200, _JSON, json.dumps({"TypeName": type_name, "ResourceDescription": description})
    if type_name != "AWS::EC2::LaunchTemplate":
        return _error(400, "UnsupportedActionException", f"The model lists only AWS::EC2::LaunchTemplate, not {type_name}.")
    # ListResources: every template in one page (the model keeps no more than a test makes).
    described = [
        {"Identifier": t.id, "Properties": json.dumps(_launch_template_properties(t))}
        for t in ec2.launch_templates.values()
    ]
    return 200, _JSON, json.dumps({"TypeName": type_name, "ResourceDescriptions": described})
