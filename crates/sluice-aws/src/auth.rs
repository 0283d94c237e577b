//! Who sent a request: SigV4 verification against Sluice's access keys. [`verify`] says why a
//! request failed in protocol-neutral terms; each facade maps that to its own error shape
//! ([`authenticate`] for AWS JSON, the S3 facade for S3's XML).

use sluice_engine::keys::KeyForVerification;
use sluice_engine::{Engine, Principal};
use subtle::ConstantTimeEq;

use crate::error::AwsError;
use crate::sigv4::{self, RequestParts, SigError};

/// Why a request is not authenticated.
#[derive(Debug)]
pub enum AuthFailure {
    Signature(SigError),
    WrongService(String),
    WrongRegion { expected: String, got: String },
    UnknownKey,
    Engine(sluice_engine::Error),
}

/// Verifies the request's signature for `service` and returns the signing principal.
pub async fn verify(
    engine: &Engine,
    request: &RequestParts<'_>,
    service: &str,
) -> Result<Principal, AuthFailure> {
    let auth = sigv4::parse(request).map_err(AuthFailure::Signature)?;
    if auth.service != service {
        return Err(AuthFailure::WrongService(service.to_string()));
    }
    let region = &engine.account().region;
    if &auth.region != region {
        return Err(AuthFailure::WrongRegion { expected: region.clone(), got: auth.region });
    }
    let key = engine
        .key_for_verification(&auth.access_key_id, auth.security_token.as_deref())
        .await
        .map_err(AuthFailure::Engine)?
        .ok_or(AuthFailure::UnknownKey)?;
    check_session_token(&key, auth.security_token.as_deref())?;
    sigv4::verify(request, &auth, &key.secret_access_key, engine.now_millis())
        .map_err(AuthFailure::Signature)?;
    Ok(key.principal)
}

/// Temporary credentials must carry their session token; long-term keys must carry none.
fn check_session_token(key: &KeyForVerification, token: Option<&str>) -> Result<(), AuthFailure> {
    match (&key.session_token_hash, token) {
        (None, None) => Ok(()),
        (Some(expected), Some(token)) => {
            let actual = sigv4::sha256_hex(token.as_bytes());
            if bool::from(actual.as_bytes().ct_eq(expected.as_bytes())) {
                Ok(())
            } else {
                Err(AuthFailure::UnknownKey)
            }
        }
        _ => Err(AuthFailure::UnknownKey),
    }
}

fn json_error(failure: AuthFailure) -> AwsError {
    let invalid = |message: String| AwsError::new(400, "InvalidSignatureException", message);
    match failure {
        AuthFailure::Signature(SigError::Missing) => {
            AwsError::new(400, "MissingAuthenticationTokenException", "Request is missing an AWS SigV4 signature")
        }
        AuthFailure::Signature(SigError::Malformed(why)) => AwsError::new(400, "IncompleteSignatureException", why),
        AuthFailure::Signature(SigError::Skewed(why) | SigError::Expired(why)) => {
            invalid(format!("Signature expired: {why}"))
        }
        AuthFailure::Signature(SigError::Mismatch) => invalid(
            "The request signature does not match the one Sluice computed; check the secret access key and the signing method"
                .into(),
        ),
        AuthFailure::WrongService(service) => {
            invalid(format!("Credential should be scoped to correct service: '{service}'"))
        }
        AuthFailure::WrongRegion { expected, got } => {
            invalid(format!("Credential should be scoped to a valid region: this server is '{expected}', not '{got}'"))
        }
        AuthFailure::UnknownKey => {
            AwsError::new(400, "UnrecognizedClientException", "The security token included in the request is invalid")
        }
        AuthFailure::Engine(err) => err.into(),
    }
}

/// [`verify`] with failures in the AWS JSON error shape.
pub async fn authenticate(
    engine: &Engine,
    request: &RequestParts<'_>,
    service: &str,
) -> Result<Principal, AwsError> {
    verify(engine, request, service).await.map_err(json_error)
}
