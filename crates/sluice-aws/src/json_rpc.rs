//! AWS JSON 1.1: routing by `X-Amz-Target`, body parsing, model checks, and the response and
//! error encoding (`{"__type","message"}`, `x-amzn-RequestId`, `{}` for empty output).

use http::HeaderMap;
use serde_json::Value;
use sluice_engine::Engine;

use crate::error::AwsError;
use crate::model::Model;
use crate::sigv4::{sha256_hex, RequestParts};
use crate::{codepipeline, ssm};

/// A request as received by the server.
#[derive(Debug)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// What to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// The service a target prefix names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    CodePipeline,
    Ssm,
}

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The AWS JSON 1.1 facades, sharing one engine.
#[derive(Debug)]
pub struct AwsJsonService {
    engine: Engine,
    codepipeline: Model,
    ssm: Model,
}

impl AwsJsonService {
    pub fn new(engine: Engine) -> Self {
        AwsJsonService { engine, codepipeline: codepipeline::model(), ssm: ssm::model() }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The CodePipeline model, for native APIs that take CodePipeline shapes.
    pub fn codepipeline_model(&self) -> &Model {
        &self.codepipeline
    }

    /// Handles one request; returns the response and an operation label for metrics: the
    /// operation's name when the service models it, else `unknown`, so callers cannot mint
    /// label values.
    pub async fn handle(&self, request: &HttpRequest<'_>) -> (HttpResponse, String) {
        let request_id = uuid::Uuid::new_v4().to_string();
        let target = request.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
        let label = self.label(target);
        let result = self.dispatch(target, request).await;
        let response = match result {
            Ok(body) => encode(200, &request_id, body.into_bytes()),
            Err(err) => {
                tracing::info!(target = %label, code = err.code, status = err.status, "request refused");
                encode_error(&err, &request_id)
            }
        };
        (response, label)
    }

    fn label(&self, target: &str) -> String {
        match route(target) {
            Ok((Target::CodePipeline, operation)) if self.codepipeline.has_operation(operation) => {
                operation.to_string()
            }
            Ok((Target::Ssm, operation)) if self.ssm.has_operation(operation) => operation.to_string(),
            _ => "unknown".to_string(),
        }
    }

    async fn dispatch(&self, target: &str, request: &HttpRequest<'_>) -> Result<String, AwsError> {
        let (service, operation) = route(target)?;
        let (model, signing_name) = match service {
            Target::CodePipeline => (&self.codepipeline, "codepipeline"),
            Target::Ssm => (&self.ssm, "ssm"),
        };
        let parts = RequestParts {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
            payload_sha256: &sha256_hex(request.body),
        };
        let principal = crate::auth::authenticate(&self.engine, &parts, signing_name).await?;
        if principal.scope.is_some() {
            return Err(AwsError::new(
                400,
                "AccessDeniedException",
                "Temporary job credentials may only read and write their job's artifacts",
            ));
        }
        if !model.has_operation(operation) {
            return Err(AwsError::unknown_operation(format!("Operation {operation} does not exist")));
        }
        let served = match service {
            Target::CodePipeline => codepipeline::serves(operation),
            Target::Ssm => ssm::serves(operation),
        };
        if !served {
            return Err(AwsError::unknown_operation(format!(
                "Operation {operation} is not supported by Sluice yet"
            )));
        }
        let input = parse_body(request.body)?;
        model.check_input(operation, &input)?;
        match service {
            Target::CodePipeline => codepipeline::call(&self.engine, &principal, operation, input).await,
            Target::Ssm => ssm::call(&self.engine, &principal, operation, input).await,
        }
    }
}

fn route(target: &str) -> Result<(Target, &str), AwsError> {
    let unknown = || AwsError::unknown_operation(format!("Unknown or unsupported X-Amz-Target {target:?}"));
    let (prefix, operation) = target.split_once('.').ok_or_else(unknown)?;
    match prefix {
        "CodePipeline_20150709" => Ok((Target::CodePipeline, operation)),
        "AmazonSSM" => Ok((Target::Ssm, operation)),
        _ => Err(unknown()),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, AwsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AwsError::serialization(format!("Request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(AwsError::serialization("Request body must be a JSON object"));
    }
    Ok(value)
}

fn encode(status: u16, request_id: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type", CONTENT_TYPE.into()), ("x-amzn-requestid", request_id.into())],
        body,
    }
}

/// Encodes an error in the AWS JSON 1.1 shape.
pub fn encode_error(err: &AwsError, request_id: &str) -> HttpResponse {
    let body = serde_json::json!({"__type": err.code, "message": err.message});
    let mut response = encode(err.status, request_id, body.to_string().into_bytes());
    response.headers.push(("x-amzn-errortype", err.code.to_string()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_route_by_prefix() {
        assert_eq!(
            route("CodePipeline_20150709.GetPipeline").unwrap(),
            (Target::CodePipeline, "GetPipeline")
        );
        assert_eq!(route("AmazonSSM.GetDocument").unwrap(), (Target::Ssm, "GetDocument"));
        for bad in ["", "GetPipeline", "AmazonSSM", "AmazonSSMx.GetDocument", "CodePipeline_20150709"] {
            assert_eq!(route(bad).unwrap_err().code, "UnknownOperationException", "{bad}");
        }
    }

    #[test]
    fn bodies_must_be_json_objects() {
        assert_eq!(parse_body(b"").unwrap(), serde_json::json!({}));
        assert_eq!(parse_body(b" \n").unwrap(), serde_json::json!({}));
        assert_eq!(parse_body(b"{\"a\":1}").unwrap()["a"], 1);
        for bad in [&b"{"[..], b"[]", b"\"x\"", b"\xff\xfe"] {
            assert_eq!(parse_body(bad).unwrap_err().code, "SerializationException");
        }
    }

    #[test]
    fn errors_have_the_aws_json_shape() {
        let response = encode_error(&AwsError::validation("bad"), "rid");
        assert_eq!(response.status, 400);
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body, serde_json::json!({"__type": "ValidationException", "message": "bad"}));
        assert!(response.headers.contains(&("x-amzn-requestid", "rid".into())));
    }
}
