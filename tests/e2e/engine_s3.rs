//! The local engine's DISTRIBUTED Map reading its items from S3 (moto) through the SDK adapter.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use opsplane_statemachines::Engine;
use opsplane_statemachines::s3::S3ItemReader;
use serde_json::json;

use crate::harness::World;

async fn bucket_with(world: &World, objects: &[(&str, &str)]) -> String {
    let s3 = &world.clients.s3;
    let bucket = world.config.bucket_name.clone();
    let mut create = s3.create_bucket().bucket(&bucket);
    if world.config.region != "us-east-1" {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    world.config.region.as_str(),
                ))
                .build(),
        );
    }
    create.send().await.expect("create bucket");
    for (key, body) in objects {
        s3.put_object()
            .bucket(&bucket)
            .key(*key)
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .expect("put object");
    }
    bucket
}

fn distributed_map(reader: serde_json::Value) -> String {
    json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemReader": reader,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "P",
            "States": {"P": {"Type": "Pass", "End": true}}}}}})
    .to_string()
}

#[tokio::test]
async fn distributed_map_reads_json_and_csv_objects_from_s3() {
    let world = World::new().await;
    let bucket = bucket_with(
        &world,
        &[
            ("items/a.json", r#"[{"id": 1}, {"id": 2}]"#),
            ("items/b.csv", "env,size\nstaging,2\nprod,5\n"),
        ],
    )
    .await;
    let engine = Engine::new();
    engine.set_item_reader(Arc::new(S3ItemReader::new(world.clients.s3.clone())));

    let def = distributed_map(json!({"Resource": "arn:aws:states:::s3:getObject",
        "Parameters": {"Bucket.$": "$.bucket", "Key": "items/a.json"}}));
    let arn = engine
        .register_state_machine("s3-json", &def, &HashMap::new())
        .expect("valid");
    let d = engine
        .run(&arn, json!({"bucket": bucket}))
        .await
        .expect("runs");
    assert_eq!(d.output, Some(json!([{"id": 1}, {"id": 2}])), "{d:?}");

    let def = distributed_map(json!({"Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
        "Parameters": {"Bucket.$": "$.bucket", "Key": "items/b.csv"}}));
    let arn = engine
        .register_state_machine("s3-csv", &def, &HashMap::new())
        .expect("valid");
    let d = engine
        .run(&arn, json!({"bucket": bucket}))
        .await
        .expect("runs");
    assert_eq!(
        d.output,
        Some(json!([{"env": "staging", "size": "2"}, {"env": "prod", "size": "5"}])),
        "{d:?}"
    );

    let def = distributed_map(json!({"Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket.$": "$.bucket", "Prefix": "items/"}}));
    let arn = engine
        .register_state_machine("s3-list", &def, &HashMap::new())
        .expect("valid");
    let d = engine
        .run(&arn, json!({"bucket": bucket}))
        .await
        .expect("runs");
    let keys: Vec<&str> = d
        .output
        .as_ref()
        .and_then(|o| o.as_array())
        .expect("array")
        .iter()
        .filter_map(|o| o["Key"].as_str())
        .collect();
    assert_eq!(keys, ["items/a.json", "items/b.csv"]);
}

#[tokio::test]
async fn a_missing_object_fails_the_map_with_item_reader_failed() {
    let world = World::new().await;
    let bucket = bucket_with(&world, &[]).await;
    let engine = Engine::new();
    engine.set_item_reader(Arc::new(S3ItemReader::new(world.clients.s3.clone())));
    let def = distributed_map(
        json!({"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket.$": "$.bucket", "Key": "nope.json"}}),
    );
    let arn = engine
        .register_state_machine("s3-missing", &def, &HashMap::new())
        .expect("valid");
    let d = engine
        .run(&arn, json!({"bucket": bucket}))
        .await
        .expect("runs");
    assert_eq!(d.error.as_deref(), Some("States.ItemReaderFailed"));
}
