//! The port a DISTRIBUTED Map's `ItemReader` reads through (and its `ResultWriter` writes through), and
//! the decoding of what it reads.
//!
//! The engine core knows S3 only by these three operations; the `s3` feature provides the adapter over
//! `aws-sdk-s3`, tests can use [`MemoryItemReader`].

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

/// One object of a `listObjectsV2` listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSummary {
    /// The key.
    pub key: String,
    /// The ETag as S3 returns it (quoted).
    pub etag: String,
    /// Last modification, RFC 3339.
    pub last_modified: String,
    /// Size in bytes.
    pub size: i64,
    /// Storage class, e.g. `STANDARD`.
    pub storage_class: String,
}

/// What a DISTRIBUTED Map needs from S3: its `ItemReader` reads, its `ResultWriter` writes.
pub trait ItemReader: Send + Sync {
    /// `GetObject`: the object's bytes.
    fn get_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, String>>;
    /// `ListObjectsV2`: every object under `prefix` (all pages).
    fn list_objects<'a>(
        &'a self,
        bucket: &'a str,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ObjectSummary>, String>>;
    /// `PutObject`: stores `body` under `key`, replacing what was there.
    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// An in-memory bucket store, for tests and local runs without S3.
#[derive(Debug, Default)]
pub struct MemoryItemReader {
    objects: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl MemoryItemReader {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores an object.
    pub fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.objects
            .lock()
            .expect("lock")
            .insert((bucket.to_string(), key.to_string()), body.into());
    }

    /// An object's bytes, if it is stored.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.objects
            .lock()
            .expect("lock")
            .get(&(bucket.to_string(), key.to_string()))
            .cloned()
    }
}

impl ItemReader for MemoryItemReader {
    fn get_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        let r = self
            .objects
            .lock()
            .expect("lock")
            .get(&(bucket.to_string(), key.to_string()))
            .cloned()
            .ok_or_else(|| format!("The specified key does not exist: s3://{bucket}/{key}"));
        Box::pin(async move { r })
    }

    fn list_objects<'a>(
        &'a self,
        bucket: &'a str,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ObjectSummary>, String>> {
        let mut out: Vec<ObjectSummary> = self
            .objects
            .lock()
            .expect("lock")
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix))
            .map(|((_, k), body)| ObjectSummary {
                key: k.clone(),
                etag: format!(
                    "\"{}\"",
                    hex::encode(<md5::Md5 as sha2::Digest>::digest(body))
                ),
                last_modified: "1970-01-01T00:00:00Z".into(),
                size: body.len() as i64,
                storage_class: "STANDARD".into(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Box::pin(async move { Ok(out) })
    }

    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.put(bucket, key, body);
        Box::pin(async { Ok(()) })
    }
}

/// Reads the items an `ItemReader` describes. `params` holds `Bucket` and `Key` (getObject) or
/// `Bucket` and `Prefix` (listObjectsV2); `config` is the `ReaderConfig`.
pub async fn read_items(
    reader: &dyn ItemReader,
    resource: &str,
    params: &Value,
    config: &Value,
) -> Result<Vec<Value>, String> {
    let bucket = params
        .get("Bucket")
        .and_then(Value::as_str)
        .ok_or("the ItemReader needs \"Bucket\"")?;
    let max_items = config
        .get("MaxItems")
        .and_then(Value::as_u64)
        .map(|m| m as usize);
    let mut items = if resource.ends_with("s3:listObjectsV2") {
        let prefix = params.get("Prefix").and_then(Value::as_str).unwrap_or("");
        reader
            .list_objects(bucket, prefix)
            .await?
            .into_iter()
            .map(|o| {
                let mut m = Map::new();
                m.insert("Etag".into(), Value::String(o.etag));
                m.insert("Key".into(), Value::String(o.key));
                m.insert("LastModified".into(), Value::String(o.last_modified));
                m.insert("Size".into(), Value::from(o.size));
                m.insert("StorageClass".into(), Value::String(o.storage_class));
                Value::Object(m)
            })
            .collect()
    } else if resource.ends_with("s3:getObject") {
        let key = params
            .get("Key")
            .and_then(Value::as_str)
            .ok_or("the ItemReader needs \"Key\"")?;
        let body = reader.get_object(bucket, key).await?;
        let text = String::from_utf8(body)
            .map_err(|e| format!("s3://{bucket}/{key} is not UTF-8: {e}"))?;
        decode(&text, config)?
    } else {
        return Err(format!("unsupported ItemReader resource {resource}"));
    };
    if let Some(m) = max_items.filter(|m| *m > 0) {
        items.truncate(m);
    }
    Ok(items)
}

/// Decodes an object's text by `ReaderConfig.InputType` (JSON by default).
pub fn decode(text: &str, config: &Value) -> Result<Vec<Value>, String> {
    match config
        .get("InputType")
        .and_then(Value::as_str)
        .unwrap_or("JSON")
    {
        "JSON" => {
            match serde_json::from_str::<Value>(text).map_err(|e| format!("invalid JSON: {e}"))? {
                Value::Array(a) => Ok(a),
                _ => Err("a JSON item source must hold an array".into()),
            }
        }
        "JSONL" => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| format!("invalid JSON line: {e}")))
            .collect(),
        "CSV" => {
            let mut lines = text.lines().filter(|l| !l.is_empty());
            let given = config.get("CSVHeaderLocation").and_then(Value::as_str) == Some("GIVEN");
            let headers: Vec<String> = if given {
                config
                    .get("CSVHeaders")
                    .and_then(Value::as_array)
                    .ok_or("CSVHeaderLocation GIVEN needs CSVHeaders")?
                    .iter()
                    .map(|h| h.as_str().unwrap_or_default().to_string())
                    .collect()
            } else {
                split_csv(lines.next().ok_or("the CSV has no header row")?)
            };
            Ok(lines
                .map(|l| {
                    let cells = split_csv(l);
                    let mut m = Map::new();
                    for (i, h) in headers.iter().enumerate() {
                        m.insert(
                            h.clone(),
                            Value::String(cells.get(i).cloned().unwrap_or_default()),
                        );
                    }
                    Value::Object(m)
                })
                .collect())
        }
        other => Err(format!("unsupported InputType {other}")),
    }
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_json_jsonl_csv() {
        assert_eq!(
            decode("[1,2]", &Value::Null).unwrap(),
            vec![json!(1), json!(2)]
        );
        assert_eq!(
            decode("{\"a\":1}\n{\"a\":2}\n", &json!({"InputType": "JSONL"}))
                .unwrap()
                .len(),
            2
        );
        let rows = decode(
            "n,v\na,\"x,y\"\n",
            &json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}),
        )
        .unwrap();
        assert_eq!(rows, vec![json!({"n": "a", "v": "x,y"})]);
        let rows = decode(
            "a,1\n",
            &json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["n", "v"]}),
        )
        .unwrap();
        assert_eq!(rows, vec![json!({"n": "a", "v": "1"})]);
    }

    #[tokio::test]
    async fn reads_from_a_store() {
        let store = MemoryItemReader::new();
        store.put("b", "in/items.json", "[{\"x\":1},{\"x\":2},{\"x\":3}]");
        let p = json!({"Bucket": "b", "Key": "in/items.json"});
        let items = read_items(
            &store,
            "arn:aws:states:::s3:getObject",
            &p,
            &json!({"MaxItems": 2}),
        )
        .await
        .unwrap();
        assert_eq!(items, vec![json!({"x": 1}), json!({"x": 2})]);
        let listed = read_items(
            &store,
            "arn:aws:states:::s3:listObjectsV2",
            &json!({"Bucket": "b", "Prefix": "in/"}),
            &Value::Null,
        )
        .await
        .unwrap();
        assert_eq!(listed[0]["Key"], json!("in/items.json"));
        assert!(
            read_items(
                &store,
                "arn:aws:states:::s3:getObject",
                &json!({"Bucket": "b", "Key": "no"}),
                &Value::Null
            )
            .await
            .is_err()
        );
    }
}
