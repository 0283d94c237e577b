//! The S3-compatible artifact endpoint (path style): GetObject, PutObject, HeadObject,
//! ListObjectsV2 and DeleteObject, SigV4 with signing name `s3`, errors as S3's XML. Bodies
//! stream in and out; nothing here holds a whole object in memory. Any other S3 request is
//! refused with a 4xx naming it unsupported.

use std::fmt::Write as _;

use bytes::Bytes;
use http::request::Parts;
use http_body::Body;
use http_body_util::BodyExt;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sluice_engine::{Engine, Error as EngineError};
use sluice_store::objects::ObjectRow;
use tokio::io::AsyncSeekExt;

use crate::auth::{self, AuthFailure};
use crate::sigv4::{RequestParts, SigError, UNSIGNED_PAYLOAD};

/// A response body: nothing, a small buffer, or `len` bytes of an open file (already positioned).
pub enum S3Body {
    Empty,
    Bytes(Vec<u8>),
    File { file: tokio::fs::File, len: u64 },
}

/// An S3 answer.
pub struct S3Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: S3Body,
}

/// An S3 error: status, code and message, rendered as S3's XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn s3_error(status: u16, code: &'static str, message: impl Into<String>) -> S3Error {
    S3Error { status, code, message: message.into() }
}

/// The one mapping of engine errors to S3 codes.
impl From<EngineError> for S3Error {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::NoSuchKey(m) => s3_error(404, "NoSuchKey", m),
            EngineError::InvalidBucketName(m) => s3_error(400, "InvalidBucketName", m),
            EngineError::EntityTooLarge(m) => s3_error(400, "EntityTooLarge", m),
            EngineError::Validation(m) => s3_error(400, "InvalidArgument", m),
            EngineError::InvalidNextToken(m) => s3_error(400, "InvalidArgument", m),
            EngineError::AccessDenied(m) => s3_error(403, "AccessDenied", m),
            other => {
                tracing::error!(error = ?other, "artifact store failure");
                s3_error(500, "InternalError", "We encountered an internal error. Please try again.")
            }
        }
    }
}

fn auth_error(failure: AuthFailure) -> S3Error {
    match failure {
        AuthFailure::Signature(SigError::Missing) => {
            s3_error(403, "AccessDenied", "Anonymous access is not allowed")
        }
        AuthFailure::Signature(SigError::Malformed(why)) => {
            s3_error(400, "AuthorizationHeaderMalformed", why)
        }
        AuthFailure::Signature(SigError::Skewed(why)) => s3_error(403, "RequestTimeTooSkewed", why),
        AuthFailure::Signature(SigError::Expired(why)) => s3_error(403, "AccessDenied", why),
        AuthFailure::Signature(SigError::Mismatch) => s3_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature does not match the one Sluice computed; check your key and signing method",
        ),
        AuthFailure::WrongService(_) | AuthFailure::WrongRegion { .. } => s3_error(
            400,
            "AuthorizationHeaderMalformed",
            "The credential scope is not valid for this endpoint",
        ),
        AuthFailure::UnknownKey => s3_error(
            403,
            "InvalidAccessKeyId",
            "The AWS access key Id you provided does not exist in our records",
        ),
        AuthFailure::Engine(err) => err.into(),
    }
}

fn unsupported(what: &str) -> S3Error {
    s3_error(400, "UnsupportedOperation", format!("{what} is not supported by Sluice's artifact endpoint"))
}

fn escape_xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn error_response(err: &S3Error, request_id: &str, head: bool) -> S3Response {
    let body = if head {
        S3Body::Empty
    } else {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{request_id}</RequestId></Error>",
            err.code,
            escape_xml(&err.message)
        );
        S3Body::Bytes(xml.into_bytes())
    };
    S3Response {
        status: err.status,
        headers: vec![("content-type", "application/xml".into()), ("x-amz-request-id", request_id.into())],
        body,
    }
}

/// Whether a request is signed for S3 (header or presigned form), which routes it here.
pub fn is_s3_request(parts: &Parts) -> bool {
    let in_header = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("/s3/aws4_request"));
    let in_query = parts.uri.query().is_some_and(|q| {
        q.contains("%2Fs3%2Faws4_request") || q.contains("/s3/aws4_request") || q.contains("AWSAccessKeyId=")
    });
    in_header || in_query
}

/// Which operation a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operation {
    GetObject { bucket: String, key: String },
    HeadObject { bucket: String, key: String },
    PutObject { bucket: String, key: String },
    DeleteObject { bucket: String, key: String },
    ListObjectsV2 { bucket: String },
}

impl Operation {
    fn label(&self) -> &'static str {
        match self {
            Operation::GetObject { .. } => "s3.GetObject",
            Operation::HeadObject { .. } => "s3.HeadObject",
            Operation::PutObject { .. } => "s3.PutObject",
            Operation::DeleteObject { .. } => "s3.DeleteObject",
            Operation::ListObjectsV2 { .. } => "s3.ListObjectsV2",
        }
    }
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

/// Query parameters that only carry signing data and may accompany any operation.
fn is_signing_param(name: &str) -> bool {
    let sigv2 = matches!(name, "AWSAccessKeyId" | "Signature" | "Expires");
    name.starts_with("X-Amz-") || name.starts_with("x-amz-") || name == "x-id" || sigv2
}

fn route(parts: &Parts) -> Result<Operation, S3Error> {
    let path = percent_decode_str(parts.uri.path())
        .decode_utf8()
        .map_err(|_| s3_error(400, "InvalidURI", "The path is not valid UTF-8"))?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let (bucket, key) = match path.split_once('/') {
        Some((bucket, key)) => (bucket.to_string(), key.to_string()),
        None => (path.to_string(), String::new()),
    };
    if bucket.is_empty() {
        return Err(unsupported("ListBuckets"));
    }
    let pairs = query_pairs(parts.uri.query());
    let subresource = pairs.iter().find(|(k, _)| {
        !is_signing_param(k)
            && !matches!(
                k.as_str(),
                "list-type"
                    | "prefix"
                    | "delimiter"
                    | "max-keys"
                    | "continuation-token"
                    | "start-after"
                    | "encoding-type"
                    | "fetch-owner"
            )
    });
    if let Some((name, _)) = subresource {
        return Err(unsupported(&format!("The ?{name} subresource")));
    }
    let method = parts.method.as_str();
    match (method, key.is_empty()) {
        ("GET", true) if pairs.iter().any(|(k, v)| k == "list-type" && v == "2") => {
            Ok(Operation::ListObjectsV2 { bucket })
        }
        ("GET", true) => Err(unsupported("ListObjects (version 1)")),
        ("GET", false) => Ok(Operation::GetObject { bucket, key }),
        ("HEAD", false) => Ok(Operation::HeadObject { bucket, key }),
        ("PUT", false) if parts.headers.contains_key("x-amz-copy-source") => Err(unsupported("CopyObject")),
        ("PUT", false) => Ok(Operation::PutObject { bucket, key }),
        ("DELETE", false) => Ok(Operation::DeleteObject { bucket, key }),
        _ => Err(unsupported(&format!(
            "{method} on {}",
            if key.is_empty() { "a bucket" } else { "an object" }
        ))),
    }
}

fn http_date(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn iso_date(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn object_headers(row: &ObjectRow, length: u64) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", row.content_type.clone()),
        ("content-length", length.to_string()),
        ("etag", row.etag.clone()),
        ("last-modified", http_date(row.last_modified)),
        ("accept-ranges", "bytes".into()),
    ]
}

/// Serves one S3 request; returns the response and a metrics label.
pub async fn handle<B>(engine: &Engine, parts: &Parts, body: B) -> (S3Response, &'static str)
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let request_id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    let head = parts.method == http::Method::HEAD;
    let operation = match route(parts) {
        Ok(operation) => operation,
        Err(err) => return (error_response(&err, &request_id, head), "s3.unsupported"),
    };
    let label = operation.label();
    let mut response = match serve(engine, parts, operation, body).await {
        Ok(response) => response,
        Err(err) => error_response(&err, &request_id, head),
    };
    response.headers.push(("x-amz-request-id", request_id));
    (response, label)
}

/// The payload hash the client signed: S3 requires `x-amz-content-sha256` on header-signed
/// requests; presigned ones use UNSIGNED-PAYLOAD.
fn declared_payload(parts: &Parts) -> Result<String, S3Error> {
    match parts.headers.get("x-amz-content-sha256").map(|v| v.to_str()) {
        Some(Ok(value)) if value.starts_with("STREAMING-") => {
            Err(unsupported("Chunked (aws-chunked) uploads"))
        }
        Some(Ok(value)) => Ok(value.to_string()),
        Some(Err(_)) => Err(s3_error(400, "InvalidArgument", "x-amz-content-sha256 is not valid")),
        None if parts.headers.contains_key("authorization") => Err(s3_error(
            400,
            "InvalidRequest",
            "Missing required header for this request: x-amz-content-sha256",
        )),
        None => Ok(UNSIGNED_PAYLOAD.to_string()),
    }
}

async fn serve<B>(
    engine: &Engine,
    parts: &Parts,
    operation: Operation,
    body: B,
) -> Result<S3Response, S3Error>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    if parts.uri.query().is_some_and(|q| q.contains("AWSAccessKeyId=")) {
        return Err(s3_error(
            400,
            "InvalidRequest",
            "Signature Version 2 is not supported; sign with AWS4-HMAC-SHA256 (boto3: signature_version='s3v4')",
        ));
    }
    let declared = declared_payload(parts)?;
    let request = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        payload_sha256: &declared,
    };
    let principal = auth::verify(engine, &request, "s3").await.map_err(auth_error)?;
    authorize(&principal, &operation)?;
    match operation {
        Operation::GetObject { bucket, key } => get_object(engine, parts, &bucket, &key).await,
        Operation::HeadObject { bucket, key } => {
            let row = engine.object(&bucket, &key).await?;
            Ok(S3Response {
                status: 200,
                headers: object_headers(&row, row.size as u64),
                body: S3Body::Empty,
            })
        }
        Operation::PutObject { bucket, key } => {
            put_object(engine, parts, &bucket, &key, &declared, body).await
        }
        Operation::DeleteObject { bucket, key } => {
            engine.delete_object(&bucket, &key).await?;
            Ok(S3Response { status: 204, headers: Vec::new(), body: S3Body::Empty })
        }
        Operation::ListObjectsV2 { bucket } => list_objects_v2(engine, parts, &bucket).await,
    }
}

/// Long-term keys may do everything here; a job's temporary credentials may read their input
/// objects and write their output objects, nothing else.
fn authorize(principal: &sluice_engine::Principal, operation: &Operation) -> Result<(), S3Error> {
    let Some(scope) = &principal.scope else { return Ok(()) };
    let allowed = match operation {
        Operation::GetObject { bucket, key } | Operation::HeadObject { bucket, key } => {
            scope.may_read(bucket, key)
        }
        Operation::PutObject { bucket, key } => scope.may_write(bucket, key),
        Operation::DeleteObject { .. } | Operation::ListObjectsV2 { .. } => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(s3_error(403, "AccessDenied", "Access Denied: these job credentials do not cover this request"))
    }
}

/// A satisfiable `Range: bytes=…` as (start, length), None for the whole object.
fn parse_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, S3Error> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None); // several ranges: S3 answers the whole object
    }
    let invalid = || s3_error(416, "InvalidRange", "The requested range is not satisfiable");
    let (first, last) = spec.split_once('-').ok_or_else(invalid)?;
    let (start, end) = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| invalid())?;
            (size.saturating_sub(n), size.checked_sub(1).ok_or_else(invalid)?)
        }
        (start, "") => (start.parse().map_err(|_| invalid())?, size.saturating_sub(1)),
        (start, end) => {
            let end: u64 = end.parse().map_err(|_| invalid())?;
            (start.parse().map_err(|_| invalid())?, end.min(size.saturating_sub(1)))
        }
    };
    if start >= size || start > end {
        return Err(invalid());
    }
    Ok(Some((start, end - start + 1)))
}

async fn get_object(engine: &Engine, parts: &Parts, bucket: &str, key: &str) -> Result<S3Response, S3Error> {
    let (row, mut file) = engine.open_object(bucket, key).await?;
    let size = row.size as u64;
    let range = parse_range(parts.headers.get("range").and_then(|v| v.to_str().ok()), size)?;
    let Some((start, len)) = range else {
        return Ok(S3Response {
            status: 200,
            headers: object_headers(&row, size),
            body: S3Body::File { file, len: size },
        });
    };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| S3Error::from(EngineError::Internal(format!("seek: {e}"))))?;
    let mut headers = object_headers(&row, len);
    headers.push(("content-range", format!("bytes {start}-{}/{size}", start + len - 1)));
    Ok(S3Response { status: 206, headers, body: S3Body::File { file, len } })
}

async fn put_object<B>(
    engine: &Engine,
    parts: &Parts,
    bucket: &str,
    key: &str,
    declared: &str,
    mut body: B,
) -> Result<S3Response, S3Error>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("binary/octet-stream")
        .to_string();
    let mut upload = engine.begin_upload(bucket, key, &content_type).await?;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| s3_error(400, "IncompleteBody", format!("The request body was cut short: {e}")))?;
        if let Ok(data) = frame.into_data() {
            upload.write(&data).await?;
        }
    }
    let is_hash = declared.len() == 64 && declared.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hash && !declared.eq_ignore_ascii_case(&upload.sha256_hex()) {
        return Err(s3_error(
            400,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed",
        ));
    }
    let row = upload.finish(engine).await?;
    Ok(S3Response { status: 200, headers: vec![("etag", row.etag)], body: S3Body::Empty })
}

/// Characters S3 leaves alone when `encoding-type=url`.
const URL_ENCODE: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/');

struct Listing {
    contents: Vec<ObjectRow>,
    prefixes: Vec<String>,
    /// Where the next page starts, when the listing was cut short.
    next_after: Option<String>,
}

/// Walks keys in order from `after`, folding keys that contain `delimiter` past the prefix into
/// common prefixes, until `max_keys` entries are collected.
async fn collect(
    engine: &Engine,
    bucket: &str,
    prefix: &str,
    delimiter: &str,
    mut after: String,
    max_keys: usize,
) -> Result<Listing, S3Error> {
    let mut listing = Listing { contents: Vec::new(), prefixes: Vec::new(), next_after: None };
    loop {
        let batch = engine.list_objects(bucket, prefix, &after, 1000).await?;
        let exhausted = batch.len() < 1000;
        for row in batch {
            let rest = &row.key[prefix.len()..];
            let common = rest
                .find(delimiter)
                .filter(|_| !delimiter.is_empty())
                .map(|at| format!("{prefix}{}", &rest[..at + delimiter.len()]));
            if common.is_some() && common.as_ref() == listing.prefixes.last() {
                continue; // another key under the prefix just listed
            }
            if listing.contents.len() + listing.prefixes.len() == max_keys {
                listing.next_after = Some(after);
                return Ok(listing);
            }
            match common {
                Some(common) => {
                    after = format!("{common}\u{10FFFF}");
                    listing.prefixes.push(common);
                }
                None => {
                    after = row.key.clone();
                    listing.contents.push(row);
                }
            }
        }
        if exhausted {
            return Ok(listing);
        }
    }
}

async fn list_objects_v2(engine: &Engine, parts: &Parts, bucket: &str) -> Result<S3Response, S3Error> {
    let pairs = query_pairs(parts.uri.query());
    let param = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let prefix = param("prefix").unwrap_or_default();
    let delimiter = param("delimiter").unwrap_or_default();
    let url_encoded = param("encoding-type").is_some_and(|e| e == "url");
    let max_keys: usize = match param("max-keys") {
        Some(v) => v.parse().map_err(|_| s3_error(400, "InvalidArgument", "max-keys must be a number"))?,
        None => 1000,
    };
    let max_keys = max_keys.min(1000);
    let scope = format!("s3-list:{bucket}:{prefix}:{delimiter}");
    let token = param("continuation-token");
    let start_after = param("start-after").unwrap_or_default();
    let after = match &token {
        Some(token) => engine.open_token(&scope, token)?,
        None => start_after.clone(),
    };
    let listing = collect(engine, bucket, &prefix, &delimiter, after, max_keys).await?;
    let shown = |text: &str| {
        let text =
            if url_encoded { utf8_percent_encode(text, URL_ENCODE).to_string() } else { text.to_string() };
        escape_xml(&text)
    };
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    let _ = write!(xml, "<Name>{}</Name><Prefix>{}</Prefix>", escape_xml(bucket), shown(&prefix));
    let _ = write!(
        xml,
        "<KeyCount>{}</KeyCount><MaxKeys>{max_keys}</MaxKeys>",
        listing.contents.len() + listing.prefixes.len()
    );
    if !delimiter.is_empty() {
        let _ = write!(xml, "<Delimiter>{}</Delimiter>", shown(&delimiter));
    }
    if url_encoded {
        xml.push_str("<EncodingType>url</EncodingType>");
    }
    let _ = write!(xml, "<IsTruncated>{}</IsTruncated>", listing.next_after.is_some());
    if let Some(token) = &token {
        let _ = write!(xml, "<ContinuationToken>{}</ContinuationToken>", escape_xml(token));
    }
    if let Some(next) = &listing.next_after {
        let _ =
            write!(xml, "<NextContinuationToken>{}</NextContinuationToken>", engine.seal_token(&scope, next));
    }
    if !start_after.is_empty() {
        let _ = write!(xml, "<StartAfter>{}</StartAfter>", shown(&start_after));
    }
    for row in &listing.contents {
        let _ = write!(
            xml,
            "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            shown(&row.key),
            iso_date(row.last_modified),
            escape_xml(&row.etag),
            row.size
        );
    }
    for common in &listing.prefixes {
        let _ = write!(xml, "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>", shown(common));
    }
    xml.push_str("</ListBucketResult>");
    Ok(S3Response {
        status: 200,
        headers: vec![("content-type", "application/xml".into())],
        body: S3Body::Bytes(xml.into_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str) -> Parts {
        http::Request::builder().method(method).uri(uri).body(()).unwrap().into_parts().0
    }

    #[test]
    fn routes_path_style_requests() {
        let get = route(&parts("GET", "/bkt/dir/a%20b.txt")).unwrap();
        assert_eq!(get, Operation::GetObject { bucket: "bkt".into(), key: "dir/a b.txt".into() });
        let list = route(&parts("GET", "/bkt?list-type=2&prefix=dir%2F&encoding-type=url")).unwrap();
        assert_eq!(list, Operation::ListObjectsV2 { bucket: "bkt".into() });
        assert_eq!(route(&parts("GET", "/bkt/k?x-id=GetObject")).unwrap().label(), "s3.GetObject");
        for refused in ["/", "/bkt", "/bkt/k?acl", "/bkt/k?uploads", "/bkt/k?tagging"] {
            let err = route(&parts("GET", refused)).unwrap_err();
            assert_eq!((err.status, err.code), (400, "UnsupportedOperation"), "{refused}");
        }
        assert_eq!(route(&parts("POST", "/bkt/k?uploads")).unwrap_err().code, "UnsupportedOperation");
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=0-3"), 10).unwrap(), Some((0, 4)));
        assert_eq!(parse_range(Some("bytes=7-"), 10).unwrap(), Some((7, 3)));
        assert_eq!(parse_range(Some("bytes=-4"), 10).unwrap(), Some((6, 4)));
        assert_eq!(parse_range(Some("bytes=5-100"), 10).unwrap(), Some((5, 5)));
        assert_eq!(parse_range(Some("bytes=10-"), 10).unwrap_err().status, 416);
        assert_eq!(parse_range(Some("bytes=x-y"), 10).unwrap_err().code, "InvalidRange");
    }

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(escape_xml("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        let response = error_response(&s3_error(404, "NoSuchKey", "no <key>"), "RID", false);
        let S3Body::Bytes(body) = response.body else { panic!("error bodies are bytes") };
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("<Code>NoSuchKey</Code><Message>no &lt;key&gt;</Message>"), "{text}");
        assert!(matches!(error_response(&s3_error(404, "NoSuchKey", "x"), "RID", true).body, S3Body::Empty));
    }
}
