//! REST transport: `POST /identity/v2/<resource>/<verb>` with a JSON body and
//! `Authorization: Bearer <token>`; answers JSON with proto field names, or an error as
//! `{"detail": {"code", "message"}}` with the HTTP status of its gRPC code.

use serde_json::Value;

use crate::error::CfError;
use crate::{wire, Cloudforet};

/// A REST answer: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Cloudforet {
    /// True when `path` is a REST method Sluice serves (the server routes on it).
    pub fn serves_rest(path: &str) -> bool {
        path.starts_with("/identity/v2/")
    }

    /// The metrics label of a gRPC or REST path: `cloudforet.Service.method` for a served
    /// method, else `cloudforet.unknown` (so unknown paths add no label values).
    pub fn operation(path: &str) -> String {
        let method = wire::method_by_grpc_path(path).or_else(|| wire::method_by_rest_path(path));
        match method {
            Some(m) => format!("cloudforet.{}.{}", m.parent_service().name(), m.name()),
            None if path.starts_with("/grpc.reflection.") => "cloudforet.reflection".into(),
            None => "cloudforet.unknown".into(),
        }
    }

    /// Serves one REST call; `authorization` is the header's value.
    pub async fn rest(&self, path: &str, authorization: Option<&str>, body: &[u8]) -> RestResponse {
        match self.rest_call(path, authorization, body).await {
            Ok(value) => RestResponse { status: 200, body: value.to_string().into_bytes() },
            Err(err) => RestResponse { status: err.http_status(), body: err.rest_body() },
        }
    }

    async fn rest_call(
        &self,
        path: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<Value, CfError> {
        let method = wire::method_by_rest_path(path).ok_or_else(|| CfError::unknown_operation(path))?;
        let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(body).map_err(|_| CfError::invalid("body", "the body is not JSON"))?
        };
        let input = wire::normalize(&method.input(), &body)?;
        let token =
            authorization.and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")));
        let output = self.call(&method, token.map(str::trim), input).await?;
        wire::respond_json(&method.output(), &output)
    }
}
