//! The facade's one error type and its mapping to the wire: a gRPC status whose message is
//! `ERROR_CODE: message`, or over REST an HTTP status with `{"detail": {"code", "message"}}`
//! (the status follows the gRPC code as Cloudforet's REST gateway maps it).

use serde_json::json;

/// A Cloudforet error: its code (`ERROR_NOT_FOUND`…), the gRPC status it travels as, and text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CfError {
    pub code: &'static str,
    pub status: tonic::Code,
    pub message: String,
}

pub type Result<T, E = CfError> = std::result::Result<T, E>;

impl CfError {
    pub fn new(code: &'static str, status: tonic::Code, message: impl Into<String>) -> Self {
        CfError { code, status, message: message.into() }
    }

    pub fn not_found(key: &str, value: &str) -> Self {
        Self::new(
            "ERROR_NOT_FOUND",
            tonic::Code::NotFound,
            format!("Resource cannot be found or access is denied. ({key} = {value})"),
        )
    }

    pub fn required(key: &str) -> Self {
        Self::new(
            "ERROR_REQUIRED_PARAMETER",
            tonic::Code::InvalidArgument,
            format!("Required parameter. (key = {key})"),
        )
    }

    pub fn invalid(key: &str, reason: &str) -> Self {
        Self::new(
            "ERROR_INVALID_PARAMETER",
            tonic::Code::InvalidArgument,
            format!("Parameter is invalid. (key = {key}, reason = {reason})"),
        )
    }

    pub fn authentication(message: &str) -> Self {
        Self::new(
            "ERROR_AUTHENTICATE_FAILURE",
            tonic::Code::Unauthenticated,
            format!("Authenticate failure. (message = {message})"),
        )
    }

    pub fn permission_denied() -> Self {
        Self::new("ERROR_PERMISSION_DENIED", tonic::Code::PermissionDenied, "Permission denied.")
    }

    pub fn unknown_operation(path: &str) -> Self {
        Self::new(
            "ERROR_UNSUPPORTED_API",
            tonic::Code::Unimplemented,
            format!("Call Unsupported API. (reason = {path} is not served by Sluice)"),
        )
    }

    pub fn internal() -> Self {
        Self::new("ERROR_INTERNAL_API", tonic::Code::Internal, "Internal error.")
    }

    pub fn to_status(&self) -> tonic::Status {
        tonic::Status::new(self.status, format!("{}: {}", self.code, self.message))
    }

    /// The HTTP status Cloudforet's REST gateway answers for this gRPC code.
    pub fn http_status(&self) -> u16 {
        use tonic::Code::*;
        match self.status {
            InvalidArgument | FailedPrecondition | OutOfRange => 400,
            Unauthenticated => 401,
            PermissionDenied => 403,
            NotFound => 404,
            AlreadyExists | Aborted => 409,
            Cancelled => 499,
            // A method Sluice does not serve is the caller's 4xx, never a server error.
            Unimplemented => 404,
            Unavailable => 503,
            DeadlineExceeded => 504,
            _ => 500,
        }
    }

    pub fn rest_body(&self) -> Vec<u8> {
        json!({"detail": {"code": self.code, "message": self.message}}).to_string().into_bytes()
    }
}

impl From<sluice_engine::Error> for CfError {
    fn from(err: sluice_engine::Error) -> Self {
        use sluice_engine::Error as E;
        match err {
            E::Conflict(what) => CfError::new(
                "ERROR_NOT_UNIQUE",
                tonic::Code::AlreadyExists,
                format!("Tried to save duplicate unique key. ({what})"),
            ),
            E::Validation(message) => {
                CfError::new("ERROR_INVALID_ARGUMENT", tonic::Code::InvalidArgument, message)
            }
            other => {
                tracing::warn!(error = %other, "Cloudforet request failed");
                CfError::internal()
            }
        }
    }
}

impl From<sluice_store::Error> for CfError {
    fn from(err: sluice_store::Error) -> Self {
        sluice_engine::Error::from(err).into()
    }
}
