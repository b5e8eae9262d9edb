//! The S3 adapter of the [`ItemReader`] port, over `aws-sdk-s3` (feature `s3`): what a DISTRIBUTED Map
//! reads its items from and writes its `ResultWriter` results to.

use futures::future::BoxFuture;

use crate::item_reader::{ItemReader, ObjectSummary};

/// Reads DISTRIBUTED Map items from S3, and writes Map Run results there, through the SDK.
#[derive(Debug, Clone)]
pub struct S3ItemReader {
    client: aws_sdk_s3::Client,
}

impl S3ItemReader {
    /// An adapter over an S3 client (point it at moto for local runs).
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3ItemReader { client }
    }
}

impl ItemReader for S3ItemReader {
    fn get_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let out = self
                .client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "S3 GetObject s3://{bucket}/{key}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    )
                })?;
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| format!("reading s3://{bucket}/{key}: {e}"))?;
            Ok(body.into_bytes().to_vec())
        })
    }

    fn list_objects<'a>(
        &'a self,
        bucket: &'a str,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ObjectSummary>, String>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    format!(
                        "S3 ListObjectsV2 s3://{bucket}/{prefix}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    )
                })?;
                for o in page.contents() {
                    out.push(ObjectSummary {
                        key: o.key().unwrap_or_default().to_string(),
                        etag: o.e_tag().unwrap_or_default().to_string(),
                        last_modified: o
                            .last_modified()
                            .and_then(|t| {
                                t.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok()
                            })
                            .unwrap_or_default(),
                        size: o.size().unwrap_or_default(),
                        storage_class: o
                            .storage_class()
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_else(|| "STANDARD".into()),
                    });
                }
            }
            Ok(out)
        })
    }

    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type("application/json")
                .body(aws_sdk_s3::primitives::ByteStream::from(body))
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "S3 PutObject s3://{bucket}/{key}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    )
                })?;
            Ok(())
        })
    }
}
