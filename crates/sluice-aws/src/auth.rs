//! Who sent a request: SigV4 verification against Sluice's access keys.

use sluice_engine::{Engine, Principal};

use crate::error::AwsError;
use crate::sigv4::{self, RequestParts, SigError};

fn signature_error(err: SigError) -> AwsError {
    match err {
        SigError::Missing => AwsError::new(400, "MissingAuthenticationTokenException", "Request is missing an AWS SigV4 signature"),
        SigError::Malformed(why) => AwsError::new(400, "IncompleteSignatureException", why),
        SigError::Skewed(why) | SigError::Expired(why) => {
            AwsError::new(400, "InvalidSignatureException", format!("Signature expired: {why}"))
        }
        SigError::Mismatch => AwsError::new(
            400,
            "InvalidSignatureException",
            "The request signature does not match the one Sluice computed; check the secret access key and the signing method",
        ),
    }
}

fn unrecognized() -> AwsError {
    AwsError::new(400, "UnrecognizedClientException", "The security token included in the request is invalid")
}

/// Verifies the request's signature for `service` and returns the signing principal.
pub async fn authenticate(
    engine: &Engine,
    request: &RequestParts<'_>,
    service: &str,
) -> Result<Principal, AwsError> {
    let auth = sigv4::parse(request).map_err(signature_error)?;
    if auth.service != service {
        return Err(AwsError::new(
            400,
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: '{service}'"),
        ));
    }
    let region = &engine.account().region;
    if &auth.region != region {
        return Err(AwsError::new(
            400,
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to a valid region: this server is '{region}', not '{}'",
                auth.region
            ),
        ));
    }
    let key = engine.key_for_verification(&auth.access_key_id).await?.ok_or_else(unrecognized)?;
    if auth.security_token.is_some() {
        // No temporary credentials are issued for these keys, so a session token cannot be theirs.
        return Err(unrecognized());
    }
    sigv4::verify(request, &auth, &key.secret_access_key, engine.now_millis()).map_err(signature_error)?;
    Ok(key.principal)
}
