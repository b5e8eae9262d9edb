//! Task resources: the service integrations Step Functions knows, and which resources are Lambda functions.

use super::ctx::Ctx;
use crate::error::ValidationError;

/// Optimised integrations under `arn:aws:states:::` (any `.sync`, `.sync:2` or `.waitForTaskToken`
/// suffix), for the services whose whole list is known here; other services are not checked.
pub(super) const KNOWN_INTEGRATIONS: &[&str] = &[
    "lambda:invoke",
    "dynamodb:getItem",
    "dynamodb:putItem",
    "dynamodb:updateItem",
    "dynamodb:deleteItem",
    "sns:publish",
    "sqs:sendMessage",
    "states:startExecution",
    "events:putEvents",
    "ecs:runTask",
    "batch:submitJob",
    "glue:startJobRun",
    "athena:startQueryExecution",
    "athena:getQueryExecution",
    "athena:getQueryResults",
    "athena:stopQueryExecution",
    "eks:call",
    "eks:runJob",
    "eks:createCluster",
    "eks:deleteCluster",
    "eks:createNodegroup",
    "eks:deleteNodegroup",
    "eks:createFargateProfile",
    "eks:deleteFargateProfile",
];

/// True when `resource` is a Lambda function: a plain function ARN or the `lambda:invoke` integration.
pub fn is_lambda_resource(resource: &str) -> bool {
    resource.starts_with("arn:aws:states:::lambda:invoke")
        || resource.contains(":lambda:") && resource.contains(":function:")
}

pub(super) fn check_resource(name: &str, resource: &str, ctx: &mut Ctx) {
    if let Some(rest) = resource.strip_prefix("arn:aws:states:::") {
        let base = rest.split(".sync").next().unwrap_or(rest);
        let base = base.strip_suffix(".waitForTaskToken").unwrap_or(base);
        // A service whose optimised actions are all listed must name one of them (`dynamodb:query`
        // exists only as `aws-sdk:dynamodb:query`); other services get the benefit of the doubt.
        let service = base.split(':').next().unwrap_or(base);
        let listed_service = KNOWN_INTEGRATIONS
            .iter()
            .any(|k| k.split(':').next() == Some(service));
        let known = base.starts_with("aws-sdk:")
            || base.starts_with("activity")
            || KNOWN_INTEGRATIONS.contains(&base)
            || (!listed_service && base.contains(':'));
        if !known {
            ctx.push(ValidationError::field(
                name,
                "Resource",
                format!("the resource {resource} is not a recognised service integration"),
            ));
        }
    } else if !resource.starts_with("arn:") {
        ctx.push(ValidationError::field(
            name,
            "Resource",
            format!("\"{resource}\" is not a valid resource ARN"),
        ));
    }
}
