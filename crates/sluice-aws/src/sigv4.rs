//! AWS Signature Version 4: verifying signed requests on the server (Authorization header and presigned query forms) and signing requests for Sluice's own clients.
//!
//! Time is never read from the system clock here: callers pass `now_millis` (milliseconds since the Unix epoch).
//! Verification order: parse (syntax, scope, required headers) → clock checks → signature (constant time) → body hash.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The only signing algorithm SigV4 defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Payload hash used when the body is not part of the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Largest clock difference accepted for the header form (15 minutes).
pub const MAX_SKEW_MILLIS: u64 = 15 * 60 * 1000;
/// Longest lifetime a presigned URL may ask for (7 days).
pub const MAX_PRESIGN_EXPIRES_SECS: u64 = 604_800;

const SCOPE_TERMINATOR: &str = "aws4_request";
const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Everything except the AWS unreserved characters `A-Z a-z 0-9 - . _ ~` is percent-encoded.
const AWS_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What the server saw of a request, as received.
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// Raw path as received, still percent-encoded, e.g. "/" or "/my-bucket/a%20b.txt".
    pub path: &'a str,
    /// Raw query string without '?', as received.
    pub query: Option<&'a str>,
    /// Must contain `host` (for HTTP/2 the server has to add it from the `:authority`).
    pub headers: &'a HeaderMap,
    /// Lowercase hex SHA-256 of the body as received (computed by the server).
    pub payload_sha256: &'a str,
}

/// The parsed Authorization header or presigned query.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    pub access_key_id: String,
    /// Credential scope date, `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Request time, `YYYYMMDDTHHMMSSZ` (converted from the `Date` header when that is what the client used).
    pub amz_date: String,
    /// Lowercase, sorted, without duplicates; always contains `host`.
    pub signed_headers: Vec<String>,
    /// Lowercase hex, 64 characters.
    pub signature: String,
    pub security_token: Option<String>,
    /// `Some` exactly for presigned (query) requests.
    pub presigned_expires: Option<u64>,
}

impl Auth {
    /// True for the presigned (query string) form.
    pub fn is_presigned(&self) -> bool {
        self.presigned_expires.is_some()
    }

    /// `date/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        credential_scope(&self.date, &self.region, &self.service)
    }
}

impl fmt::Debug for Auth {
    // Hand-written so that session tokens never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("access_key_id", &self.access_key_id)
            .field("scope", &self.scope())
            .field("amz_date", &self.amz_date)
            .field("signed_headers", &self.signed_headers)
            .field("signature", &self.signature)
            .field("security_token", &self.security_token.as_ref().map(|_| "<redacted>"))
            .field("presigned_expires", &self.presigned_expires)
            .finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigError {
    /// No Authorization header and no presigned query.
    #[error("request is not signed")]
    Missing,
    /// Unparseable or inconsistent authentication information.
    #[error("malformed authentication: {0}")]
    Malformed(String),
    /// Request time too far from the server's clock.
    #[error("request time too skewed: {0}")]
    Skewed(String),
    /// Presigned URL no longer (or never) valid.
    #[error("presigned request expired: {0}")]
    Expired(String),
    /// The signature (or the declared body hash) does not match.
    #[error("signature does not match")]
    Mismatch,
}

fn malformed(message: impl Into<String>) -> SigError {
    SigError::Malformed(message.into())
}

/// Client credentials and scope for signing.
pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub security_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
    pub now_millis: i64,
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Extracts the SigV4 authentication from the Authorization header or the presigned query.
///
/// # Errors
/// `Missing` when the request carries neither; `Malformed` for anything unparseable or
/// inconsistent (see [`SigError::Malformed`]), including a signed header absent from the request.
pub fn parse(req: &RequestParts<'_>) -> Result<Auth, SigError> {
    let header = req.headers.get(http::header::AUTHORIZATION);
    let presigned = req.query.filter(|query| is_presigned_query(query));
    let auth = match (header, presigned) {
        (Some(_), Some(_)) => Err(malformed("both an Authorization header and a presigned query")),
        (Some(value), None) => parse_header_form(value, req.headers),
        (None, Some(query)) => parse_query_form(query),
        (None, None) => Err(SigError::Missing),
    }?;
    require_signed_headers(req.headers, &auth.signed_headers)?;
    Ok(auth)
}

fn require_signed_headers(headers: &HeaderMap, names: &[String]) -> Result<(), SigError> {
    match names.iter().find(|name| !headers.contains_key(name.as_str())) {
        Some(name) => Err(malformed(format!("signed header {name} is not in the request"))),
        None => Ok(()),
    }
}

fn is_presigned_query(query: &str) -> bool {
    decoded_pairs(query)
        .iter()
        .any(|(key, _)| matches!(key.as_str(), "X-Amz-Algorithm" | "X-Amz-Credential" | "X-Amz-Signature"))
}

/// The three components of an Authorization header after the algorithm.
#[derive(Default)]
struct HeaderFields<'a> {
    credential: Option<&'a str>,
    signed_headers: Option<&'a str>,
    signature: Option<&'a str>,
}

fn parse_header_form(value: &HeaderValue, headers: &HeaderMap) -> Result<Auth, SigError> {
    let text = value.to_str().map_err(|_| malformed("Authorization header is not visible ASCII"))?;
    let (algorithm, rest) = text
        .trim()
        .split_once(|c: char| c.is_ascii_whitespace())
        .ok_or_else(|| malformed("Authorization header has no credentials"))?;
    check_algorithm(algorithm)?;
    let fields = header_fields(rest)?;
    let parts = AuthParts {
        credential: fields.credential.ok_or_else(|| malformed("missing Credential"))?,
        signed_headers: fields.signed_headers.ok_or_else(|| malformed("missing SignedHeaders"))?,
        signature: fields.signature.ok_or_else(|| malformed("missing Signature"))?,
        amz_date: header_amz_date(headers)?,
        security_token: header_text_opt(headers, "x-amz-security-token")?,
        presigned_expires: None,
    };
    build_auth(parts)
}

fn header_fields(rest: &str) -> Result<HeaderFields<'_>, SigError> {
    let mut fields = HeaderFields::default();
    for component in rest.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let (key, value) =
            component.split_once('=').ok_or_else(|| malformed("Authorization component without '='"))?;
        let slot = match key.trim() {
            "Credential" => &mut fields.credential,
            "SignedHeaders" => &mut fields.signed_headers,
            "Signature" => &mut fields.signature,
            _ => continue,
        };
        if slot.replace(value.trim()).is_some() {
            return Err(malformed("repeated Authorization component"));
        }
    }
    Ok(fields)
}

fn header_amz_date(headers: &HeaderMap) -> Result<String, SigError> {
    if let Some(value) = header_text_opt(headers, "x-amz-date")? {
        return Ok(value.trim().to_owned());
    }
    match header_text_opt(headers, "date")? {
        Some(value) => http_date_to_amz_date(&value),
        None => Err(malformed("missing X-Amz-Date")),
    }
}

fn http_date_to_amz_date(value: &str) -> Result<String, SigError> {
    let parsed =
        DateTime::parse_from_rfc2822(value.trim()).map_err(|_| malformed("unparseable Date header"))?;
    Ok(parsed.with_timezone(&Utc).format(AMZ_DATE_FORMAT).to_string())
}

fn header_text_opt(headers: &HeaderMap, name: &str) -> Result<Option<String>, SigError> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map(str::to_owned)
                .map_err(|_| malformed(format!("{name} header is not visible ASCII")))
        })
        .transpose()
}

fn parse_query_form(query: &str) -> Result<Auth, SigError> {
    let pairs = decoded_pairs(query);
    check_algorithm(&required_param(&pairs, "X-Amz-Algorithm")?)?;
    let credential = required_param(&pairs, "X-Amz-Credential")?;
    let signed_headers = required_param(&pairs, "X-Amz-SignedHeaders")?;
    let signature = required_param(&pairs, "X-Amz-Signature")?;
    let expires = parse_expires(&required_param(&pairs, "X-Amz-Expires")?)?;
    let parts = AuthParts {
        credential: &credential,
        signed_headers: &signed_headers,
        signature: &signature,
        amz_date: required_param(&pairs, "X-Amz-Date")?,
        security_token: unique_param(&pairs, "X-Amz-Security-Token")?,
        presigned_expires: Some(expires),
    };
    build_auth(parts)
}

fn unique_param(pairs: &[(String, String)], name: &str) -> Result<Option<String>, SigError> {
    let mut found = pairs.iter().filter(|(key, _)| key == name).map(|(_, v)| v);
    let first = found.next().cloned();
    if found.next().is_some() {
        return Err(malformed(format!("repeated {name}")));
    }
    Ok(first)
}

fn required_param(pairs: &[(String, String)], name: &str) -> Result<String, SigError> {
    unique_param(pairs, name)?.ok_or_else(|| malformed(format!("missing {name}")))
}

fn parse_expires(value: &str) -> Result<u64, SigError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("X-Amz-Expires is not a number"));
    }
    // An absurdly long number is still a number: it is simply too large.
    Ok(value.parse().unwrap_or(u64::MAX))
}

fn check_algorithm(algorithm: &str) -> Result<(), SigError> {
    if algorithm == ALGORITHM {
        Ok(())
    } else {
        Err(malformed("unsupported signing algorithm"))
    }
}

/// Raw pieces common to both forms, before validation.
struct AuthParts<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
    amz_date: String,
    security_token: Option<String>,
    presigned_expires: Option<u64>,
}

fn build_auth(parts: AuthParts<'_>) -> Result<Auth, SigError> {
    let [access_key_id, date, region, service] = parse_credential(parts.credential)?;
    if amz_date_millis(&parts.amz_date).is_none() {
        return Err(malformed("X-Amz-Date is not YYYYMMDDTHHMMSSZ"));
    }
    if !parts.amz_date.starts_with(&date) {
        return Err(malformed("credential scope date differs from X-Amz-Date"));
    }
    Ok(Auth {
        access_key_id,
        date,
        region,
        service,
        amz_date: parts.amz_date,
        signed_headers: parse_signed_headers(parts.signed_headers)?,
        signature: parse_signature(parts.signature)?,
        security_token: parts.security_token,
        presigned_expires: parts.presigned_expires,
    })
}

/// `AKID/YYYYMMDD/region/service/aws4_request` → [key, date, region, service].
fn parse_credential(value: &str) -> Result<[String; 4], SigError> {
    let parts: Vec<&str> = value.split('/').collect();
    let [key, date, region, service, terminator] = parts.as_slice() else {
        return Err(malformed("Credential must be <key>/<date>/<region>/<service>/aws4_request"));
    };
    if *terminator != SCOPE_TERMINATOR {
        return Err(malformed("Credential scope must end in aws4_request"));
    }
    if key.is_empty() || region.is_empty() || service.is_empty() {
        return Err(malformed("Credential has an empty part"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("Credential date is not YYYYMMDD"));
    }
    Ok([key, date, region, service].map(|part| part.to_string()))
}

fn parse_signed_headers(value: &str) -> Result<Vec<String>, SigError> {
    let mut names: Vec<String> = value.split(';').map(|name| name.trim().to_ascii_lowercase()).collect();
    if names.iter().any(String::is_empty) {
        return Err(malformed("empty name in SignedHeaders"));
    }
    names.sort();
    names.dedup();
    if !names.iter().any(|name| name == "host") {
        return Err(malformed("SignedHeaders must include host"));
    }
    Ok(names)
}

fn parse_signature(value: &str) -> Result<String, SigError> {
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(malformed("Signature is not 64 hex digits"))
    }
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

/// Verifies `auth` (already parsed from `req`) with the secret key; the signature is compared in constant time.
///
/// # Errors
/// `Skewed` / `Expired` from the clock checks (done first), `Mismatch` when the signature
/// differs or when a declared hex `x-amz-content-sha256` is not the hash of the received body.
pub fn verify(
    req: &RequestParts<'_>,
    auth: &Auth,
    secret_access_key: &str,
    now_millis: i64,
) -> Result<(), SigError> {
    check_time(auth, now_millis)?;
    let declared = declared_payload_hash(req, auth)?;
    let expected = expected_signature(req, auth, secret_access_key, &declared)?;
    let same: bool = expected.as_bytes().ct_eq(auth.signature.as_bytes()).into();
    if !same {
        return Err(SigError::Mismatch);
    }
    check_body_hash(req, &declared)
}

fn check_time(auth: &Auth, now_millis: i64) -> Result<(), SigError> {
    let signed_at =
        amz_date_millis(&auth.amz_date).ok_or_else(|| malformed("X-Amz-Date is not YYYYMMDDTHHMMSSZ"))?;
    match auth.presigned_expires {
        None => check_skew(signed_at, now_millis),
        Some(expires) => check_expiry(signed_at, expires, now_millis),
    }
}

fn check_skew(signed_at: i64, now_millis: i64) -> Result<(), SigError> {
    if signed_at.abs_diff(now_millis) > MAX_SKEW_MILLIS {
        return Err(SigError::Skewed(format!(
            "request time differs from server time by more than {} seconds",
            MAX_SKEW_MILLIS / 1000
        )));
    }
    Ok(())
}

fn check_expiry(signed_at: i64, expires: u64, now_millis: i64) -> Result<(), SigError> {
    if expires > MAX_PRESIGN_EXPIRES_SECS {
        return Err(SigError::Expired(format!(
            "X-Amz-Expires must be at most {MAX_PRESIGN_EXPIRES_SECS} seconds"
        )));
    }
    // A URL dated in the future is not valid yet (beyond the usual clock allowance).
    if signed_at > now_millis && signed_at.abs_diff(now_millis) > MAX_SKEW_MILLIS {
        return Err(SigError::Skewed("presigned request is not valid yet".into()));
    }
    // `expires` is at most 604800 here, so this cannot overflow.
    let expires_at = signed_at + expires as i64 * 1000;
    if now_millis > expires_at {
        return Err(SigError::Expired("presigned request has expired".into()));
    }
    Ok(())
}

/// The payload hash the client put into its canonical request.
fn declared_payload_hash(req: &RequestParts<'_>, auth: &Auth) -> Result<String, SigError> {
    if let Some(value) = header_text_opt(req.headers, "x-amz-content-sha256")? {
        return Ok(value.trim().to_owned());
    }
    if !auth.is_presigned() {
        return Ok(req.payload_sha256.to_owned());
    }
    let pairs = decoded_pairs(req.query.unwrap_or(""));
    let from_query = unique_param(&pairs, "X-Amz-Content-Sha256")?;
    // UNSIGNED-PAYLOAD is S3's convention; every other service signs the body's hash.
    let default = if auth.service == "s3" { UNSIGNED_PAYLOAD } else { req.payload_sha256 };
    Ok(from_query.unwrap_or_else(|| default.to_owned()))
}

/// A declared hex hash must be the hash of the body actually received.
fn check_body_hash(req: &RequestParts<'_>, declared: &str) -> Result<(), SigError> {
    let is_hash = declared.len() == 64 && declared.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hash && !declared.eq_ignore_ascii_case(req.payload_sha256) {
        return Err(SigError::Mismatch);
    }
    Ok(())
}

fn expected_signature(
    req: &RequestParts<'_>,
    auth: &Auth,
    secret_access_key: &str,
    payload_hash: &str,
) -> Result<String, SigError> {
    let canonical = CanonicalRequest {
        method: req.method,
        uri: canonical_uri(req.path, &auth.service),
        query: canonical_query(req.query, auth.is_presigned()),
        headers: canonical_headers_from_map(req.headers, &auth.signed_headers)?,
        signed_headers: auth.signed_headers.join(";"),
        payload_hash,
    };
    let scope = Scope { date: &auth.date, region: &auth.region, service: &auth.service };
    Ok(sign_canonical(secret_access_key, &auth.amz_date, &scope, &canonical.render()))
}

// ---------------------------------------------------------------------------
// Signing (client side)
// ---------------------------------------------------------------------------

/// Headers to add so that the request is signed (header form): `x-amz-date`,
/// `x-amz-content-sha256` (when `include_content_sha256`), `x-amz-security-token` (when a
/// token is given) and `authorization`. Every header in `headers` is signed; it must include `host`.
pub fn sign_headers(
    params: &SigningParams<'_>,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(String, String)],
    payload_sha256: &str,
    include_content_sha256: bool,
) -> Vec<(String, String)> {
    let amz_date = format_amz_date(params.now_millis);
    let mut added = added_headers(params, &amz_date, payload_sha256, include_content_sha256);
    let mut to_sign: Vec<(String, String)> =
        headers.iter().filter(|(name, _)| !is_generated_header(name)).cloned().collect();
    to_sign.extend(added.iter().cloned());
    let (canonical_headers, signed_headers) = canonical_headers_from_pairs(&to_sign);
    let canonical = CanonicalRequest {
        method,
        uri: canonical_uri(path, params.service),
        query: canonical_query(query, false),
        headers: canonical_headers,
        signed_headers,
        payload_hash: payload_sha256,
    };
    let scope = params_scope(params, &amz_date);
    let signature = sign_canonical(params.secret_access_key, &amz_date, &scope, &canonical.render());
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={signature}",
        params.access_key_id,
        scope.render(),
        canonical.signed_headers,
    );
    added.push(("authorization".to_owned(), authorization));
    added
}

/// The headers `sign_headers` adds before the Authorization header (all of them signed).
fn added_headers(
    params: &SigningParams<'_>,
    amz_date: &str,
    payload_sha256: &str,
    include_content_sha256: bool,
) -> Vec<(String, String)> {
    let mut added = vec![("x-amz-date".to_owned(), amz_date.to_owned())];
    if include_content_sha256 {
        added.push(("x-amz-content-sha256".to_owned(), payload_sha256.to_owned()));
    }
    if let Some(token) = params.security_token {
        added.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    added
}

fn is_generated_header(name: &str) -> bool {
    ["x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "authorization"]
        .iter()
        .any(|generated| name.trim().eq_ignore_ascii_case(generated))
}

/// A presigned query string (no leading '?'): the given query followed by the `X-Amz-*`
/// parameters. Only `host` is signed; the payload is `UNSIGNED-PAYLOAD` for `s3` and the hash
/// of an empty body for every other service.
pub fn presign_query(
    params: &SigningParams<'_>,
    method: &str,
    host: &str,
    path: &str,
    query: Option<&str>,
    expires_secs: u64,
) -> String {
    let amz_date = format_amz_date(params.now_millis);
    let scope = params_scope(params, &amz_date);
    let mut out = String::new();
    if let Some(existing) = query.filter(|q| !q.is_empty()) {
        out.push_str(existing);
        out.push('&');
    }
    out.push_str(&presign_params(params, &scope, &amz_date, expires_secs));
    let empty_hash = sha256_hex(b"");
    let canonical = CanonicalRequest {
        method,
        uri: canonical_uri(path, params.service),
        query: canonical_query(Some(&out), true),
        headers: format!("host:{}\n", trim_all(host)),
        signed_headers: "host".to_owned(),
        payload_hash: if params.service == "s3" { UNSIGNED_PAYLOAD } else { &empty_hash },
    };
    let signature = sign_canonical(params.secret_access_key, &amz_date, &scope, &canonical.render());
    out.push_str("&X-Amz-Signature=");
    out.push_str(&signature);
    out
}

/// The `X-Amz-*` query parameters of a presigned URL, except the signature.
fn presign_params(
    params: &SigningParams<'_>,
    scope: &Scope<'_>,
    amz_date: &str,
    expires_secs: u64,
) -> String {
    let credential = format!("{}/{}", params.access_key_id, scope.render());
    let mut out = format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={amz_date}&X-Amz-Expires={expires_secs}&X-Amz-SignedHeaders=host",
        aws_encode(credential.as_bytes()),
    );
    if let Some(token) = params.security_token {
        out.push_str("&X-Amz-Security-Token=");
        out.push_str(&aws_encode(token.as_bytes()));
    }
    out
}

fn params_scope<'a>(params: &SigningParams<'a>, amz_date: &'a str) -> Scope<'a> {
    Scope { date: amz_date.get(..8).unwrap_or(amz_date), region: params.region, service: params.service }
}

/// `YYYYMMDDTHHMMSSZ` for a time in milliseconds since the epoch (the epoch if out of range).
pub fn format_amz_date(now_millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(now_millis).unwrap_or_default().format(AMZ_DATE_FORMAT).to_string()
}

/// Milliseconds since the epoch for a strict `YYYYMMDDTHHMMSSZ` value.
fn amz_date_millis(value: &str) -> Option<i64> {
    let bytes = value.as_bytes();
    let shape_ok = bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8].iter().chain(&bytes[9..15]).all(u8::is_ascii_digit);
    if !shape_ok {
        return None;
    }
    let number = |from: usize, to: usize| value[from..to].parse::<u32>().ok();
    let date = NaiveDate::from_ymd_opt(number(0, 4)? as i32, number(4, 6)?, number(6, 8)?)?;
    let time = date.and_hms_opt(number(9, 11)?, number(11, 13)?, number(13, 15)?)?;
    Some(time.and_utc().timestamp_millis())
}

// ---------------------------------------------------------------------------
// Canonical request and signature
// ---------------------------------------------------------------------------

struct CanonicalRequest<'a> {
    method: &'a str,
    uri: String,
    query: String,
    /// Each header as `name:value\n`.
    headers: String,
    signed_headers: String,
    payload_hash: &'a str,
}

impl CanonicalRequest<'_> {
    fn render(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method, self.uri, self.query, self.headers, self.signed_headers, self.payload_hash
        )
    }
}

struct Scope<'a> {
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl Scope<'_> {
    fn render(&self) -> String {
        credential_scope(self.date, self.region, self.service)
    }
}

/// `date/region/service/aws4_request`.
pub fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/{SCOPE_TERMINATOR}")
}

fn string_to_sign(amz_date: &str, scope: &Scope<'_>, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{}\n{}", scope.render(), sha256_hex(canonical_request.as_bytes()))
}

fn sign_canonical(secret: &str, amz_date: &str, scope: &Scope<'_>, canonical_request: &str) -> String {
    let key = signing_key(secret, scope.date, scope.region, scope.service);
    let to_sign = string_to_sign(amz_date, scope, canonical_request);
    hex::encode(hmac_sha256(&key, to_sign.as_bytes()))
}

/// The SigV4 signing key: HMAC chain "AWS4"+secret → date → region → service → "aws4_request".
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, SCOPE_TERMINATOR.as_bytes())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

// ---------------------------------------------------------------------------
// Canonicalisation helpers
// ---------------------------------------------------------------------------

/// AWS URI encoding: unreserved characters kept, everything else `%XX` (uppercase).
fn aws_encode(bytes: &[u8]) -> String {
    percent_encode(bytes, AWS_ENCODE_SET).to_string()
}

/// Percent-decoding; `+` stays a literal plus and malformed escapes stay as they are.
fn decode(raw: &str) -> Cow<'_, [u8]> {
    percent_decode_str(raw).into()
}

/// The canonical URI of a raw (percent-encoded) path. S3 encodes once and keeps the path as
/// is; every other service normalises the path and encodes each segment twice.
fn canonical_uri(raw_path: &str, service: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_owned();
    }
    if service == "s3" {
        return encode_path(raw_path, false);
    }
    let normalized = normalize_path(raw_path);
    if normalized.is_empty() {
        return "/".to_owned();
    }
    encode_path(&normalized, true)
}

/// Decodes and re-encodes each `/`-separated segment (so an encoded `%2F` stays inside its segment).
fn encode_path(path: &str, twice: bool) -> String {
    let segments: Vec<String> = path
        .split('/')
        .map(|segment| {
            let once = aws_encode(&decode(segment));
            if twice {
                aws_encode(once.as_bytes())
            } else {
                once
            }
        })
        .collect();
    segments.join("/")
}

/// Removes `.` and `..` segments and empty segments (duplicate slashes), keeping a leading
/// slash, and a trailing one when anything is left.
fn normalize_path(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            other => kept.push(other),
        }
    }
    let lead = if path.starts_with('/') { "/" } else { "" };
    let trail = if path.ends_with('/') && !kept.is_empty() { "/" } else { "" };
    format!("{lead}{}{trail}", kept.join("/"))
}

/// Raw `key=value` pairs, still encoded; empty pieces (`a=1&&b=2`) are skipped.
fn raw_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query.split('&').filter(|pair| !pair.is_empty()).map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

fn decoded_pairs(query: &str) -> Vec<(String, String)> {
    raw_pairs(query)
        .map(|(key, value)| {
            (
                String::from_utf8_lossy(&decode(key)).into_owned(),
                String::from_utf8_lossy(&decode(value)).into_owned(),
            )
        })
        .collect()
}

/// Canonical query: decoded and re-encoded pairs sorted by encoded key then value; for
/// presigned requests `X-Amz-Signature` is left out.
fn canonical_query(query: Option<&str>, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = raw_pairs(query.unwrap_or(""))
        .map(|(key, value)| (aws_encode(&decode(key)), aws_encode(&decode(value))))
        .filter(|(key, _)| !(presigned && key == "X-Amz-Signature"))
        .collect();
    pairs.sort();
    let joined: Vec<String> = pairs.iter().map(|(key, value)| format!("{key}={value}")).collect();
    joined.join("&")
}

/// `name:value\n` for each signed header, read from the request; a missing one is an error.
fn canonical_headers_from_map(headers: &HeaderMap, names: &[String]) -> Result<String, SigError> {
    let mut out = String::new();
    for name in names {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|value| trim_all(&header_text(value.as_bytes())))
            .collect();
        if values.is_empty() {
            return Err(malformed(format!("signed header {name} is not in the request")));
        }
        out.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Ok(out)
}

/// (canonical header block, signed header list) for headers given as pairs (client side).
fn canonical_headers_from_pairs(pairs: &[(String, String)]) -> (String, String) {
    let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in pairs {
        grouped.entry(name.trim().to_ascii_lowercase()).or_default().push(trim_all(value));
    }
    let block: String =
        grouped.iter().map(|(name, values)| format!("{name}:{}\n", values.join(","))).collect();
    let names: Vec<&str> = grouped.keys().map(String::as_str).collect();
    (block, names.join(";"))
}

/// Header bytes as text: UTF-8 when valid, otherwise Latin-1 (what Python's http.client sends).
fn header_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Trims the value and collapses every run of whitespace into one space.
fn trim_all(value: &str) -> String {
    let words: Vec<&str> = value
        .split(|c: char| c.is_ascii_whitespace() || c == '\x0b')
        .filter(|word| !word.is_empty())
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderName;

    const KEY_ID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 20150830T123600Z, the AWS test suite's time.
    const SUITE_NOW: i64 = 1_440_938_160_000;
    /// 20250115T103000Z, the time the botocore vectors were signed at.
    const BOTO_NOW: i64 = 1_736_937_000_000;
    const MINUTE: i64 = 60_000;
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const BOTO_TOKEN: &str = "FQoGZXIvYXdzEXAMPLE+token/=";

    /// A request owned by the test; `parts()` lends it out as the server would see it.
    struct TestRequest {
        method: String,
        path: String,
        query: Option<String>,
        headers: HeaderMap,
        body_sha256: String,
    }

    impl TestRequest {
        fn new(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Self {
            let (path, query) = match target.split_once('?') {
                Some((path, query)) => (path, Some(query.to_owned())),
                None => (target, None),
            };
            let mut request = TestRequest {
                method: method.to_owned(),
                path: path.to_owned(),
                query,
                headers: HeaderMap::new(),
                body_sha256: sha256_hex(body),
            };
            for (name, value) in headers {
                request.add_header(name, value);
            }
            request
        }

        fn add_header(&mut self, name: &str, value: &str) {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            self.headers.append(name, HeaderValue::from_str(value).unwrap());
        }

        fn set_header(&mut self, name: &str, value: &str) {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            self.headers.insert(name, HeaderValue::from_str(value).unwrap());
        }

        fn set_body(&mut self, body: &[u8]) {
            self.body_sha256 = sha256_hex(body);
        }

        fn parts(&self) -> RequestParts<'_> {
            RequestParts {
                method: &self.method,
                path: &self.path,
                query: self.query.as_deref(),
                headers: &self.headers,
                payload_sha256: &self.body_sha256,
            }
        }

        fn auth(&self) -> Result<Auth, SigError> {
            parse(&self.parts())
        }

        fn check(&self, secret: &str, now_millis: i64) -> Result<(), SigError> {
            let parts = self.parts();
            let auth = parse(&parts)?;
            verify(&parts, &auth, secret, now_millis)
        }
    }

    fn params<'a>(service: &'a str, token: Option<&'a str>, now_millis: i64) -> SigningParams<'a> {
        SigningParams {
            access_key_id: KEY_ID,
            secret_access_key: SECRET,
            security_token: token,
            region: "us-east-1",
            service,
            now_millis,
        }
    }

    fn signature_of(authorization: &str) -> &str {
        authorization.rsplit_once("Signature=").unwrap().1
    }

    fn flip_last_char(text: &str) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        let last = chars.last_mut().unwrap();
        *last = if *last == '0' { '1' } else { '0' };
        chars.into_iter().collect()
    }

    // --- AWS SigV4 test suite (aws-sig-v4-test-suite, 20150830T123600Z) -------------

    fn suite_authorization(signed_headers: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed_headers}, Signature={signature}"
        )
    }

    fn suite_request(
        method: &str,
        target: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        signed_headers: &str,
        signature: &str,
    ) -> TestRequest {
        let mut request = TestRequest::new(
            method,
            target,
            &[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")],
            body,
        );
        for (name, value) in extra {
            request.add_header(name, value);
        }
        request.add_header("authorization", &suite_authorization(signed_headers, signature));
        request
    }

    /// Signs a suite request with `sign_headers` and returns the signature.
    fn suite_sign(
        method: &str,
        path: &str,
        query: Option<&str>,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> String {
        let mut headers = vec![("Host".to_owned(), "example.amazonaws.com".to_owned())];
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        let added = sign_headers(
            &params("service", None, SUITE_NOW),
            method,
            path,
            query,
            &headers,
            &sha256_hex(body),
            false,
        );
        assert_eq!(added[0], ("x-amz-date".to_owned(), "20150830T123600Z".to_owned()));
        signature_of(&added.last().unwrap().1).to_owned()
    }

    const GET_VANILLA: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    const GET_QUERY_ORDER_KEY_CASE: &str = "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500";
    const POST_FORM_URLENCODED: &str = "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a";
    const GET_SLASHES: &str = "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84";

    #[test]
    fn suite_get_vanilla() {
        let request = suite_request("GET", "/", &[], b"", "host;x-amz-date", GET_VANILLA);
        assert_eq!(request.check(SECRET, SUITE_NOW), Ok(()));
        assert_eq!(suite_sign("GET", "/", None, &[], b""), GET_VANILLA);
    }

    #[test]
    fn suite_get_vanilla_query_order_key_case() {
        let target = "/?Param2=value2&Param1=value1";
        let request = suite_request("GET", target, &[], b"", "host;x-amz-date", GET_QUERY_ORDER_KEY_CASE);
        assert_eq!(request.check(SECRET, SUITE_NOW), Ok(()));
        let signed = suite_sign("GET", "/", Some("Param2=value2&Param1=value1"), &[], b"");
        assert_eq!(signed, GET_QUERY_ORDER_KEY_CASE);
    }

    #[test]
    fn suite_post_x_www_form_urlencoded() {
        let content_type = [("content-type", "application/x-www-form-urlencoded")];
        let request = suite_request(
            "POST",
            "/",
            &content_type,
            b"Param1=value1",
            "content-type;host;x-amz-date",
            POST_FORM_URLENCODED,
        );
        assert_eq!(request.check(SECRET, SUITE_NOW), Ok(()));
        assert_eq!(suite_sign("POST", "/", None, &content_type, b"Param1=value1"), POST_FORM_URLENCODED);
    }

    #[test]
    fn suite_normalized_paths() {
        // get-slashes ("//example//") and get-slash-dot-slash style paths normalise to "/example/";
        // get-relative-relative ("/example1/example2/../..") normalises to "/" (same as get-vanilla).
        for path in ["//example//", "/example/./", "/example/"] {
            let request = suite_request("GET", path, &[], b"", "host;x-amz-date", GET_SLASHES);
            assert_eq!(request.check(SECRET, SUITE_NOW), Ok(()), "{path}");
        }
        let relative =
            suite_request("GET", "/example1/example2/../..", &[], b"", "host;x-amz-date", GET_VANILLA);
        assert_eq!(relative.check(SECRET, SUITE_NOW), Ok(()));
        // Not normalised for S3: the same vector no longer matches when the scope says s3.
        let as_s3 = suite_authorization("host;x-amz-date", GET_SLASHES).replace("/service/", "/s3/");
        let mut s3 = suite_request("GET", "//example//", &[], b"", "host;x-amz-date", GET_SLASHES);
        s3.set_header("authorization", &as_s3);
        assert_eq!(s3.check(SECRET, SUITE_NOW), Err(SigError::Mismatch));
    }

    // --- Vectors captured from botocore 1.44 (SigV4Auth / S3SigV4Auth / S3SigV4QueryAuth) ---

    const CODEPIPELINE_BODY: &[u8] = br#"{"name": "p"}"#;
    const CODEPIPELINE_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250115/us-east-1/codepipeline/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=d8769f753063301ff4090d7e547d562ac4220bd73f4907f92b367ae56cadffac";

    fn codepipeline_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("host", "127.0.0.1:8750"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "CodePipeline_20150709.GetPipeline"),
        ]
    }

    fn codepipeline_request() -> TestRequest {
        let mut request = TestRequest::new("POST", "/", &codepipeline_headers(), CODEPIPELINE_BODY);
        request.add_header("X-Amz-Date", "20250115T103000Z");
        request.add_header("Authorization", CODEPIPELINE_AUTH);
        request
    }

    #[test]
    fn botocore_codepipeline_post_verifies() {
        let request = codepipeline_request();
        assert_eq!(request.body_sha256, "652dadf0b229729d5ce548c0f54bc9c14ff4f5127080afca8f8cdeb1cb020e14");
        let auth = request.auth().unwrap();
        assert_eq!(auth.access_key_id, KEY_ID);
        assert_eq!(auth.scope(), "20250115/us-east-1/codepipeline/aws4_request");
        assert_eq!(auth.signed_headers, ["content-type", "host", "x-amz-date", "x-amz-target"]);
        assert!(!auth.is_presigned());
        assert_eq!(request.check(SECRET, BOTO_NOW), Ok(()));
    }

    #[test]
    fn sign_headers_reproduces_botocore_authorization() {
        let headers: Vec<(String, String)> =
            codepipeline_headers().iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        let added = sign_headers(
            &params("codepipeline", None, BOTO_NOW),
            "POST",
            "/",
            None,
            &headers,
            &sha256_hex(CODEPIPELINE_BODY),
            false,
        );
        assert_eq!(
            added,
            vec![
                ("x-amz-date".to_owned(), "20250115T103000Z".to_owned()),
                ("authorization".to_owned(), CODEPIPELINE_AUTH.to_owned()),
            ]
        );
    }

    #[test]
    fn botocore_lambda_path_is_double_encoded() {
        let request = TestRequest::new(
            "POST",
            "/2015-03-31/functions/my%3Afn%20x/invocations?Qualifier=v%201",
            &[
                ("host", "127.0.0.1:8750"),
                ("content-type", "application/json"),
                ("x-amz-date", "20250115T103000Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250115/us-east-1/lambda/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=6f6f1657c3d38784c2d82d56251e0fc51ceb05b2b7177d7fbe56305eb8be3c6b"),
            ],
            b"{}",
        );
        assert_eq!(request.check(SECRET, BOTO_NOW), Ok(()));
    }

    fn botocore_s3_put() -> TestRequest {
        TestRequest::new(
            "PUT",
            "/bucket/dir/a%2Bb%20c.txt?x-id=PutObject",
            &[
                ("host", "127.0.0.1:8750"),
                ("content-type", "text/plain"),
                ("x-amz-date", "20250115T103000Z"),
                ("x-amz-security-token", BOTO_TOKEN),
                ("x-amz-content-sha256", "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250115/us-east-1/s3/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=51b9b1b52c680580568ad2e3d553cc4a667aff11a6f5d23a635288655194019b"),
            ],
            b"hello world",
        )
    }

    #[test]
    fn botocore_s3_put_with_session_token() {
        let mut request = botocore_s3_put();
        assert_eq!(request.auth().unwrap().security_token.as_deref(), Some(BOTO_TOKEN));
        assert_eq!(request.check(SECRET, BOTO_NOW), Ok(()));
        // The signature covers the declared hash; the declared hash must match the body.
        request.set_body(b"hello worle");
        assert_eq!(request.check(SECRET, BOTO_NOW), Err(SigError::Mismatch));
        let mut token_changed = botocore_s3_put();
        token_changed.set_header("x-amz-security-token", "FQoGZXIvYXdzEXAMPLE+token/X");
        assert_eq!(token_changed.check(SECRET, BOTO_NOW), Err(SigError::Mismatch));
    }

    #[test]
    fn botocore_client_s3_put_with_reserved_characters_in_key() {
        // botocore S3 client put_object(Key="dir/a b+c~!*'()$&=;:@,?é.txt", Body=b"hi"), path style.
        let request = TestRequest::new(
            "PUT",
            "/bucket/dir/a%20b%2Bc~%21%2A%27%28%29%24%26%3D%3B%3A%40%2C%3F%C3%A9.txt",
            &[
                ("host", "127.0.0.1:8750"),
                ("user-agent", "Botocore/1.44.5"),
                ("expect", "100-continue"),
                ("x-amz-checksum-crc32", "2JMqrA=="),
                ("x-amz-sdk-checksum-algorithm", "CRC32"),
                ("x-amz-date", "20261123T184855Z"),
                ("x-amz-content-sha256", "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-checksum-crc32;x-amz-content-sha256;x-amz-date;x-amz-sdk-checksum-algorithm, Signature=c4859963d222113209905218622df6ae53e1c7462478ac71fd287c97da510eea"),
                ("content-length", "2"),
            ],
            b"hi",
        );
        assert_eq!(request.check(SECRET, 1_795_459_735_000), Ok(()));
    }

    #[test]
    fn botocore_date_header_instead_of_x_amz_date() {
        let request = TestRequest::new(
            "GET",
            "/",
            &[
                ("host", "127.0.0.1:8750"),
                ("date", "Wed, 15 Jan 2025 10:30:00 -0000"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250115/us-east-1/sqs/aws4_request, SignedHeaders=date;host, Signature=bb24142370445ebba25f6292af2f2ce713f363075ff85fc220fc50be3cbfbf71"),
            ],
            b"",
        );
        assert_eq!(request.auth().unwrap().amz_date, "20250115T103000Z");
        assert_eq!(request.check(SECRET, BOTO_NOW), Ok(()));
        assert_eq!(http_date_to_amz_date("Wed, 15 Jan 2025 10:30:00 GMT").unwrap(), "20250115T103000Z");
    }

    const BOTO_PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20250115%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250115T103000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=3c8cd5300c6b2883c82c2412ecb43e478b297f688a938887d0c6f3ddb3ff87cf";

    fn botocore_presigned_get() -> TestRequest {
        let target = format!("/bucket/some%20key.txt?{BOTO_PRESIGNED_QUERY}");
        TestRequest::new("GET", &target, &[("host", "127.0.0.1:8750")], b"")
    }

    #[test]
    fn botocore_s3_presigned_get_verifies() {
        let request = botocore_presigned_get();
        let auth = request.auth().unwrap();
        assert_eq!(auth.presigned_expires, Some(3600));
        assert_eq!(auth.signed_headers, ["host"]);
        assert_eq!(request.check(SECRET, BOTO_NOW), Ok(()));
        assert_eq!(request.check(SECRET, BOTO_NOW + 60 * MINUTE), Ok(()));
        assert!(matches!(request.check(SECRET, BOTO_NOW + 60 * MINUTE + 1), Err(SigError::Expired(_))));
    }

    #[test]
    fn presign_query_reproduces_botocore_url() {
        let query = presign_query(
            &params("s3", None, BOTO_NOW),
            "GET",
            "127.0.0.1:8750",
            "/bucket/some%20key.txt",
            None,
            3600,
        );
        assert_eq!(query, BOTO_PRESIGNED_QUERY);
    }

    #[test]
    fn botocore_s3_presigned_with_token_and_params() {
        let target = "/bucket/a%2Bb.txt?versionId=v%2B1&response-content-type=text%2Fplain&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20250115%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20250115T103000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLE%2Btoken%2F%3D&X-Amz-Signature=ba4cb9ff7ecd09fb392a43b12972309506102669ba4d8bad593f5f07b4bc307b";
        let request = TestRequest::new("GET", target, &[("host", "127.0.0.1:8750")], b"");
        let auth = request.auth().unwrap();
        assert_eq!(auth.region, "eu-west-1");
        assert_eq!(auth.security_token.as_deref(), Some(BOTO_TOKEN));
        assert_eq!(request.check(SECRET, BOTO_NOW + 5 * MINUTE), Ok(()));
        let tampered = TestRequest::new(
            "GET",
            &target.replace("versionId=v%2B1", "versionId=v%2B2"),
            &[("host", "127.0.0.1:8750")],
            b"",
        );
        assert_eq!(tampered.check(SECRET, BOTO_NOW), Err(SigError::Mismatch));
    }

    // --- Tampering and error classes ---------------------------------------------------

    #[test]
    fn tampered_body_header_secret_or_signature_mismatch() {
        let mut body = codepipeline_request();
        body.set_body(br#"{"name": "q"}"#);
        assert_eq!(body.check(SECRET, BOTO_NOW), Err(SigError::Mismatch));

        let mut header = codepipeline_request();
        header.set_header("x-amz-target", "CodePipeline_20150709.DeletePipeline");
        assert_eq!(header.check(SECRET, BOTO_NOW), Err(SigError::Mismatch));

        let request = codepipeline_request();
        let wrong_secret = flip_last_char(SECRET);
        assert_eq!(request.check(&wrong_secret, BOTO_NOW), Err(SigError::Mismatch));

        let mut signature = codepipeline_request();
        signature.set_header("authorization", &flip_last_char(CODEPIPELINE_AUTH));
        assert_eq!(signature.check(SECRET, BOTO_NOW), Err(SigError::Mismatch));

        let mut method = codepipeline_request();
        method.method = "PUT".into();
        assert_eq!(method.check(SECRET, BOTO_NOW), Err(SigError::Mismatch));

        let mut path = codepipeline_request();
        path.path = "/x".into();
        assert_eq!(path.check(SECRET, BOTO_NOW), Err(SigError::Mismatch));

        let mut query = codepipeline_request();
        query.query = Some("a=1".into());
        assert_eq!(query.check(SECRET, BOTO_NOW), Err(SigError::Mismatch));
    }

    #[test]
    fn unsigned_headers_and_whitespace_do_not_matter() {
        let mut request = codepipeline_request();
        request.add_header("user-agent", "anything");
        request.set_header("content-type", "  application/x-amz-json-1.1 ");
        assert_eq!(request.check(SECRET, BOTO_NOW), Ok(()));
    }

    #[test]
    fn clock_skew_limit_is_fifteen_minutes() {
        let request = codepipeline_request();
        assert_eq!(request.check(SECRET, BOTO_NOW + 15 * MINUTE), Ok(()));
        assert_eq!(request.check(SECRET, BOTO_NOW - 15 * MINUTE), Ok(()));
        assert!(matches!(request.check(SECRET, BOTO_NOW + 16 * MINUTE), Err(SigError::Skewed(_))));
        assert!(matches!(request.check(SECRET, BOTO_NOW - 16 * MINUTE), Err(SigError::Skewed(_))));
    }

    #[test]
    fn x_amz_date_sixteen_minutes_off_is_skewed() {
        let signed_at = BOTO_NOW - 16 * MINUTE;
        let headers = vec![("host".to_owned(), "127.0.0.1:8750".to_owned())];
        let added =
            sign_headers(&params("sqs", None, signed_at), "GET", "/", None, &headers, EMPTY_SHA256, false);
        let mut request = TestRequest::new("GET", "/", &[("host", "127.0.0.1:8750")], b"");
        for (name, value) in &added {
            request.add_header(name, value);
        }
        assert_eq!(request.check(SECRET, signed_at), Ok(()));
        assert!(matches!(request.check(SECRET, BOTO_NOW), Err(SigError::Skewed(_))));
    }

    fn presigned_request(service: &str, query: Option<&str>, expires: u64, signed_at: i64) -> TestRequest {
        let path = "/bucket/some%20key.txt";
        let presigned =
            presign_query(&params(service, None, signed_at), "GET", "localhost:8750", path, query, expires);
        TestRequest::new("GET", &format!("{path}?{presigned}"), &[("host", "localhost:8750")], b"")
    }

    #[test]
    fn presigned_expiry_and_limits() {
        let request = presigned_request("s3", None, 300, BOTO_NOW);
        assert_eq!(request.check(SECRET, BOTO_NOW + 5 * MINUTE), Ok(()));
        assert!(matches!(request.check(SECRET, BOTO_NOW + 5 * MINUTE + 1), Err(SigError::Expired(_))));
        // Dated in the future beyond the clock allowance: not valid yet.
        assert!(matches!(request.check(SECRET, BOTO_NOW - 20 * MINUTE), Err(SigError::Skewed(_))));
        let too_long = presigned_request("s3", None, MAX_PRESIGN_EXPIRES_SECS + 1, BOTO_NOW);
        assert!(matches!(too_long.check(SECRET, BOTO_NOW), Err(SigError::Expired(_))));
        let longest = presigned_request("s3", None, MAX_PRESIGN_EXPIRES_SECS, BOTO_NOW);
        assert_eq!(longest.check(SECRET, BOTO_NOW + 6 * 24 * 60 * MINUTE), Ok(()));
    }

    #[test]
    fn missing_auth_is_missing() {
        let plain = TestRequest::new("GET", "/", &[("host", "h")], b"");
        assert_eq!(plain.check(SECRET, BOTO_NOW), Err(SigError::Missing));
        let listing = TestRequest::new("GET", "/bucket?list-type=2&prefix=a", &[("host", "h")], b"");
        assert_eq!(listing.check(SECRET, BOTO_NOW), Err(SigError::Missing));
    }

    #[test]
    fn garbage_authorization_is_malformed() {
        let good_scope = "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
        let good_sig = format!("Signature={GET_VANILLA}");
        let cases = [
            String::new(),
            "garbage".into(),
            "AWS4-HMAC-SHA256".into(),
            "AWS4-HMAC-SHA256 Credential=".into(),
            "Bearer abc.def.ghi".into(),
            "AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=".into(),
            format!("AWS4-HMAC-SHA512 {good_scope}, SignedHeaders=host;x-amz-date, {good_sig}"),
            format!("AWS4-HMAC-SHA256 {good_scope}, SignedHeaders=host;x-amz-date"),
            format!("AWS4-HMAC-SHA256 {good_scope}, {good_sig}"),
            format!("AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, {good_sig}"),
            format!("AWS4-HMAC-SHA256 {good_scope}, SignedHeaders=host;x-amz-date, Signature=zz"),
            format!("AWS4-HMAC-SHA256 {good_scope}, SignedHeaders=host;x-amz-date, {good_sig}, {good_sig}"),
            format!("AWS4-HMAC-SHA256 {good_scope}, SignedHeaders=x-amz-date, {good_sig}"),
            format!("AWS4-HMAC-SHA256 {good_scope}, SignedHeaders=host;;x-amz-date, {good_sig}"),
            format!("AWS4-HMAC-SHA256 {good_scope}, SignedHeaders=host;x-amz-date;x-amz-target, {good_sig}"),
            format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service, SignedHeaders=host;x-amz-date, {good_sig}"),
            format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, SignedHeaders=host;x-amz-date, {good_sig}"),
            format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, {good_sig}"),
            format!("AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, {good_sig}"),
            format!("AWS4-HMAC-SHA256 {good_scope} SignedHeaders=host;x-amz-date {good_sig}"),
        ];
        for case in &cases {
            let mut request = TestRequest::new(
                "GET",
                "/",
                &[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")],
                b"",
            );
            request.add_header("authorization", case);
            let result = request.check(SECRET, SUITE_NOW);
            assert!(matches!(result, Err(SigError::Malformed(_))), "{case:?} gave {result:?}");
        }
    }

    #[test]
    fn bad_dates_are_malformed() {
        let auth = suite_authorization("host;x-amz-date", GET_VANILLA);
        let no_date =
            TestRequest::new("GET", "/", &[("host", "example.amazonaws.com"), ("authorization", &auth)], b"");
        assert!(matches!(no_date.check(SECRET, SUITE_NOW), Err(SigError::Malformed(_))));
        for bad in [
            "2015-08-30T12:36:00Z",
            "20150830T123600",
            "20151330T123600Z",
            "+0150830T123600Z",
            "20150830t123600z",
        ] {
            let mut request = suite_request("GET", "/", &[], b"", "host;x-amz-date", GET_VANILLA);
            request.set_header("x-amz-date", bad);
            assert!(matches!(request.check(SECRET, SUITE_NOW), Err(SigError::Malformed(_))), "{bad}");
        }
        let mut bad_http_date = TestRequest::new("GET", "/", &[("host", "h"), ("date", "yesterday")], b"");
        bad_http_date.add_header("authorization", &auth);
        assert!(matches!(bad_http_date.check(SECRET, SUITE_NOW), Err(SigError::Malformed(_))));
    }

    #[test]
    fn bad_presigned_queries_are_malformed() {
        let good = presigned_request("s3", None, 300, BOTO_NOW);
        let query = good.query.clone().unwrap();
        let cases = [
            query.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
            query.replace("X-Amz-Expires=300", "X-Amz-Expires=abc"),
            query.replace("X-Amz-Expires=300&", ""),
            query.replace("X-Amz-Date=20250115T103000Z&", ""),
            query.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date"),
            query.replace("20250115%2F", "20250116%2F"),
            query.split("&X-Amz-Signature").next().unwrap().to_owned(),
            format!("{query}&X-Amz-Date=20250115T103000Z"),
        ];
        for case in &cases {
            let request = TestRequest::new(
                "GET",
                &format!("/bucket/some%20key.txt?{case}"),
                &[("host", "localhost:8750")],
                b"",
            );
            let result = request.check(SECRET, BOTO_NOW);
            assert!(matches!(result, Err(SigError::Malformed(_))), "{case} gave {result:?}");
        }
        // Both forms at once.
        let mut both = presigned_request("s3", None, 300, BOTO_NOW);
        both.add_header("authorization", CODEPIPELINE_AUTH);
        assert!(matches!(both.check(SECRET, BOTO_NOW), Err(SigError::Malformed(_))));
    }

    // --- Round trips --------------------------------------------------------------------

    fn signed_request(
        signing: &SigningParams<'_>,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        payload: Option<&str>,
        include_content_sha256: bool,
    ) -> TestRequest {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let pairs: Vec<(String, String)> =
            headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        let payload = payload.map(str::to_owned).unwrap_or_else(|| sha256_hex(body));
        let added = sign_headers(signing, method, path, query, &pairs, &payload, include_content_sha256);
        let mut request = TestRequest::new(method, target, headers, body);
        for (name, value) in &added {
            request.add_header(name, value);
        }
        request
    }

    #[test]
    fn round_trip_json_protocol() {
        let signing = params("codepipeline", None, BOTO_NOW);
        let mut request =
            signed_request(&signing, "POST", "/", &codepipeline_headers(), CODEPIPELINE_BODY, None, false);
        assert_eq!(request.check(SECRET, BOTO_NOW + 3 * MINUTE), Ok(()));
        request.set_body(b"{}");
        assert_eq!(request.check(SECRET, BOTO_NOW), Err(SigError::Mismatch));
    }

    #[test]
    fn round_trip_odd_path_and_query() {
        let signing = params("execute-api", Some("tok+en/=="), BOTO_NOW);
        let target = "/stage/a%20b/./c//d%2Fe/../f~g?b=2&a=%7E+x&a=%20&flag&caf%C3%A9=%E2%9C%93";
        let headers = [("host", "api.local"), ("x-custom", "one   two"), ("x-custom", "three")];
        let request = signed_request(&signing, "GET", target, &headers, b"", None, false);
        assert_eq!(request.auth().unwrap().security_token.as_deref(), Some("tok+en/=="));
        assert_eq!(request.check(SECRET, BOTO_NOW), Ok(()));
    }

    #[test]
    fn round_trip_s3_with_content_sha256_and_token() {
        let signing = params("s3", Some(BOTO_TOKEN), BOTO_NOW);
        let target = "/bucket/key%20with%20spaces%2Bplus//x/../y?uploads";
        let headers = [("host", "localhost:8750"), ("content-type", "application/octet-stream")];
        let request = signed_request(&signing, "PUT", target, &headers, b"data", None, true);
        let names: Vec<&str> = request
            .headers
            .keys()
            .map(|n| n.as_str())
            .filter(|n| n.starts_with("x-amz") || *n == "authorization")
            .collect();
        assert_eq!(names, ["x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "authorization"]);
        assert_eq!(request.check(SECRET, BOTO_NOW), Ok(()));
        let mut changed = signed_request(&signing, "PUT", target, &headers, b"data", None, true);
        changed.set_body(b"date");
        assert_eq!(changed.check(SECRET, BOTO_NOW), Err(SigError::Mismatch));
    }

    #[test]
    fn round_trip_s3_unsigned_payload() {
        let signing = params("s3", None, BOTO_NOW);
        let request = signed_request(
            &signing,
            "PUT",
            "/b/k",
            &[("host", "h")],
            b"any body",
            Some(UNSIGNED_PAYLOAD),
            true,
        );
        assert_eq!(request.check(SECRET, BOTO_NOW), Ok(()));
    }

    #[test]
    fn round_trip_presigned() {
        let s3 = presigned_request(
            "s3",
            Some("response-content-disposition=attachment%3B%20a.txt&x-id=GetObject"),
            900,
            BOTO_NOW,
        );
        assert_eq!(s3.check(SECRET, BOTO_NOW + MINUTE), Ok(()));
        let other = presigned_request("rds-db", None, 900, BOTO_NOW);
        assert_eq!(other.check(SECRET, BOTO_NOW + MINUTE), Ok(()));
        let signing = params("s3", Some(BOTO_TOKEN), BOTO_NOW);
        let with_token = presign_query(&signing, "PUT", "h", "/b/k", None, 60);
        let request =
            TestRequest::new("PUT", &format!("/b/k?{with_token}"), &[("host", "h")], b"body is not signed");
        assert_eq!(request.auth().unwrap().security_token.as_deref(), Some(BOTO_TOKEN));
        assert_eq!(request.check(SECRET, BOTO_NOW), Ok(()));
        assert_eq!(request.check(&flip_last_char(SECRET), BOTO_NOW), Err(SigError::Mismatch));
    }

    // --- Canonicalisation units -----------------------------------------------------------

    #[test]
    fn canonical_uri_rules() {
        assert_eq!(canonical_uri("", "service"), "/");
        assert_eq!(canonical_uri("/", "s3"), "/");
        assert_eq!(canonical_uri("/my%3Afn%20x", "lambda"), "/my%253Afn%2520x");
        assert_eq!(canonical_uri("/a/b/../../..", "service"), "/");
        assert_eq!(canonical_uri("/a%20b/./c//d/", "service"), "/a%2520b/c/d/");
        assert_eq!(canonical_uri("/bucket/a%20b//c/../d", "s3"), "/bucket/a%20b//c/../d");
        assert_eq!(canonical_uri("/bucket/a%2fb+c~d", "s3"), "/bucket/a%2Fb%2Bc~d");
        assert_eq!(canonical_uri("/bucket/caf%C3%A9%zz", "s3"), "/bucket/caf%C3%A9%25zz");
    }

    #[test]
    fn canonical_query_rules() {
        assert_eq!(canonical_query(None, false), "");
        assert_eq!(canonical_query(Some("b=2&a=1&a=0&c"), false), "a=0&a=1&b=2&c=");
        assert_eq!(canonical_query(Some("k=a+b&s=a%20b&t=%7e"), false), "k=a%2Bb&s=a%20b&t=~");
        assert_eq!(canonical_query(Some("a=1&&b"), false), "a=1&b=");
        let presigned = "X-Amz-Signature=abc&X-Amz-Date=1";
        assert_eq!(canonical_query(Some(presigned), true), "X-Amz-Date=1");
        assert_eq!(canonical_query(Some(presigned), false), "X-Amz-Date=1&X-Amz-Signature=abc");
    }

    #[test]
    fn header_value_normalisation() {
        assert_eq!(trim_all("  a   b\t c  "), "a b c");
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static(" one  two "));
        headers.append("x-a", HeaderValue::from_static("three"));
        headers.append("x-b", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let names = ["x-a".to_owned(), "x-b".to_owned()];
        assert_eq!(
            canonical_headers_from_map(&headers, &names).unwrap(),
            "x-a:one two,three\nx-b:caf\u{e9}\n"
        );
    }

    #[test]
    fn amz_dates() {
        assert_eq!(format_amz_date(SUITE_NOW), "20150830T123600Z");
        assert_eq!(amz_date_millis("20150830T123600Z"), Some(SUITE_NOW));
        assert_eq!(amz_date_millis("20250115T103000Z"), Some(BOTO_NOW));
        assert_eq!(amz_date_millis("20150230T123600Z"), None);
        assert_eq!(amz_date_millis("2015083OT123600Z"), None);
        assert_eq!(amz_date_millis("20150830T12360ሴ"), None);
    }

    #[test]
    fn debug_output_hides_session_token() {
        let auth = botocore_s3_put().auth().unwrap();
        let shown = format!("{auth:?}");
        assert!(!shown.contains("FQoG"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn signing_key_matches_aws_documentation() {
        // AWS documentation example: secret above, 20150830/us-east-1/iam.
        let key = signing_key(SECRET, "20150830", "us-east-1", "iam");
        assert_eq!(hex::encode(key), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
    }

    // --- Parsing never panics -----------------------------------------------------------

    /// Deterministic pseudo-random numbers (PCG-style LCG).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u32
        }

        fn below(&mut self, n: usize) -> usize {
            self.next() as usize % n
        }
    }

    const FRAGMENTS: &[&str] = &[
        "AWS4-HMAC-SHA256",
        " ",
        ",",
        ", ",
        "=",
        "/",
        ";",
        "&",
        "%",
        "%2F",
        "%zz",
        "%E2%9C",
        "+",
        "é",
        "ሴ",
        "Credential",
        "SignedHeaders",
        "Signature",
        "host",
        "x-amz-date",
        "aws4_request",
        "AKIDEXAMPLE",
        "20150830",
        "20150830T123600Z",
        "us-east-1",
        "s3",
        "service",
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
        "X-Amz-Content-Sha256",
        "604801",
        "18446744073709551616",
        "-1",
        GET_VANILLA,
        "\t",
        "..",
    ];

    fn random_text(rng: &mut Lcg) -> String {
        let mut out = String::new();
        for _ in 0..rng.below(24) {
            if rng.below(4) == 0 {
                out.push(char::from(rng.below(128) as u8));
            } else {
                out.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
            }
        }
        out
    }

    fn random_bytes(rng: &mut Lcg) -> Vec<u8> {
        (0..rng.below(64)).map(|_| rng.next() as u8).collect()
    }

    /// One of a few plausible values, or random text.
    fn pick(rng: &mut Lcg, choices: &[&str]) -> String {
        if rng.below(4) == 0 {
            random_text(rng)
        } else {
            choices[rng.below(choices.len())].to_owned()
        }
    }

    /// An Authorization value: random text, random bytes, or near-valid with random parts.
    fn random_authorization(rng: &mut Lcg) -> Vec<u8> {
        match rng.below(3) {
            0 => random_text(rng).into_bytes(),
            1 => random_bytes(rng),
            _ => format!(
                "{} Credential={}, SignedHeaders={}, Signature={}",
                pick(rng, &[ALGORITHM]),
                pick(
                    rng,
                    &[
                        "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request",
                        "AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request",
                        "AKIDEXAMPLE/20150831/us-east-1/service/aws4_request",
                    ]
                ),
                pick(rng, &["host;x-amz-date", "host", "host;x-amz-date;date"]),
                pick(rng, &[GET_VANILLA, &"0".repeat(64)]),
            )
            .into_bytes(),
        }
    }

    /// A query: random text, or presigned parameters with random values.
    fn random_query(rng: &mut Lcg) -> String {
        if rng.below(4) == 0 {
            return random_text(rng);
        }
        let fields = [
            ("X-Amz-Algorithm", pick(rng, &[ALGORITHM])),
            ("X-Amz-Credential", pick(rng, &["AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fs3%2Faws4_request"])),
            ("X-Amz-Date", pick(rng, &["20150830T123600Z", "20150830T999999Z"])),
            ("X-Amz-Expires", pick(rng, &["300", "604801", "18446744073709551616"])),
            ("X-Amz-SignedHeaders", pick(rng, &["host", "host%3Bx-amz-date"])),
            ("X-Amz-Signature", pick(rng, &[GET_VANILLA])),
        ];
        let kept: Vec<String> = fields
            .iter()
            .filter(|_| rng.below(16) != 0)
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        kept.join("&")
    }

    #[test]
    fn parse_never_panics_on_random_input() {
        let mut rng = Lcg(0x5eed);
        let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
        for round in 0..800 {
            let mut request = TestRequest::new("GET", "/", &[("host", "example.amazonaws.com")], b"");
            if round % 3 != 0 {
                request.add_header("x-amz-date", "20150830T123600Z");
            }
            if round % 2 == 0 {
                if let Ok(value) = HeaderValue::from_bytes(&random_authorization(&mut rng)) {
                    request.headers.insert(http::header::AUTHORIZATION, value);
                }
            }
            if round % 5 == 0 {
                if let Ok(value) = HeaderValue::from_bytes(&random_bytes(&mut rng)) {
                    request.headers.insert(http::header::DATE, value);
                }
            }
            request.query = match round % 4 {
                0 => None,
                2 => Some(random_text(&mut rng)),
                _ => Some(random_query(&mut rng)),
            };
            let outcome = match request.check(SECRET, SUITE_NOW) {
                Ok(()) => "ok",
                Err(SigError::Missing) => "missing",
                Err(SigError::Malformed(_)) => "malformed",
                Err(SigError::Skewed(_)) => "skewed",
                Err(SigError::Expired(_)) => "expired",
                Err(SigError::Mismatch) => "mismatch",
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
        // Reaching this line means nothing panicked; the inputs also reached every stage.
        for outcome in ["missing", "malformed", "expired", "mismatch"] {
            assert!(outcomes.get(outcome).copied().unwrap_or(0) > 0, "{outcomes:?}");
        }
    }

    #[test]
    fn mutated_valid_header_only_verifies_when_equivalent() {
        let original = suite_authorization("host;x-amz-date", GET_VANILLA);
        let canon = |text: &str| -> String {
            text.chars().filter(|c| !c.is_ascii_whitespace()).collect::<String>().to_ascii_lowercase()
        };
        let mut rng = Lcg(42);
        let mut verified = 0;
        for _ in 0..400 {
            let mut bytes = original.clone().into_bytes();
            for _ in 0..=rng.below(3) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            let Ok(value) = HeaderValue::from_bytes(&bytes) else {
                continue;
            };
            let mut request = suite_request("GET", "/", &[], b"", "host;x-amz-date", GET_VANILLA);
            request.headers.insert(http::header::AUTHORIZATION, value);
            // The server looks the secret up by access key id: another id means another secret.
            let Ok(auth) = request.auth() else { continue };
            let secret =
                if auth.access_key_id == KEY_ID { SECRET.to_owned() } else { flip_last_char(SECRET) };
            if verify(&request.parts(), &auth, &secret, SUITE_NOW).is_ok() {
                verified += 1;
                assert_eq!(canon(&String::from_utf8_lossy(&bytes)), canon(&original));
            }
        }
        assert!(verified < 400);
    }
}
