#!/usr/bin/env python3
"""Transforms bootstrap/template.yaml the way a deploy does, for a CloudFormation that cannot read local files.

`sam deploy` uploads each function's CodeUri and each state machine's DefinitionS3Location, then CloudFormation
runs the SAM transform. This script does the same offline, for the template test against moto:

* every function's local CodeUri becomes the given code object (`--code-bucket`, `--code-key`), a dummy zip the
  test put there;
* every state machine's local definition file is inlined as `DefinitionString: {"Fn::Sub": [file,
  DefinitionSubstitutions]}`, which is what CloudFormation computes from the two properties (moto reads only
  `DefinitionString`);
* the SAM transform itself is aws-sam-translator, the library CloudFormation's transform is built from.

The result, plain CloudFormation JSON, goes to stdout. Usage:
    .venv/bin/python scripts/sam-transform.py bootstrap/template.yaml --code-bucket B --code-key K [--region R]
"""

import argparse
import json
import os
import sys

from cfnlint.decode import decode
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The template names managed policies by ARN only, so nothing needs looking up in IAM."""

    def load(self):
        return {}


def is_local(value):
    return isinstance(value, str) and not value.startswith("s3://")


def inline_local_files(template, template_dir, code_bucket, code_key):
    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function" and is_local(props.get("CodeUri")):
            props["CodeUri"] = {"Bucket": code_bucket, "Key": code_key}
        elif kind == "AWS::StepFunctions::StateMachine" and is_local(props.get("DefinitionS3Location")):
            path = os.path.normpath(os.path.join(template_dir, props.pop("DefinitionS3Location")))
            try:
                with open(path, encoding="utf-8") as f:
                    definition = f.read()
            except OSError as err:
                sys.exit(f"{name}: its definition {path} cannot be read: {err}")
            json.loads(definition)  # a definition that is not JSON fails here, not in the stack
            substitutions = props.pop("DefinitionSubstitutions", {})
            props["DefinitionString"] = {"Fn::Sub": [definition, substitutions]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template")
    parser.add_argument("--code-bucket", required=True)
    parser.add_argument("--code-key", required=True)
    parser.add_argument("--region", default="us-east-1", help="the region the stack is for (partition of ARNs)")
    args = parser.parse_args()
    # The translator reads the region (for the partition of the ARNs it writes) from the boto session.
    os.environ["AWS_DEFAULT_REGION"] = args.region

    template, errors = decode(args.template)
    if errors:
        sys.exit(f"{args.template} does not parse: {errors}")
    # cfn-lint's nodes carry line marks; plain JSON types from here on.
    template = json.loads(json.dumps(template))
    inline_local_files(
        template, os.path.dirname(os.path.abspath(args.template)), args.code_bucket, args.code_key
    )
    # Parameters are given at CreateStack, as on AWS; the transform leaves Ref/If to CloudFormation.
    transformed = transform(template, {}, NoManagedPolicies())
    json.dump(transformed, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
