//! The one HTTP port: `/health`, `/metrics`, the admin API (`/admin/v1/*`, SigV4 signing name
//! `sluice`), the AWS JSON 1.1 facades (any `POST` with `X-Amz-Target`) and Cloudforet (gRPC by
//! content type, REST under `/identity/v2/`). Every response is
//! counted in [`crate::metrics`] under its operation.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use sluice_aws::json_rpc::encode_error;
use sluice_aws::{AwsError, HttpRequest, HttpResponse};

use crate::bootstrap::App;

/// The operation a response answered, for metrics and logs.
#[derive(Debug, Clone)]
struct Operation(String);

/// All routes of the server.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/admin/v1/keys", post(crate::admin::create_key))
        .route("/admin/v1/action-types/third-party", post(crate::admin::register_third_party))
        .route("/admin/v1/automation-jobs/{verb}", post(crate::admin::automation_jobs))
        .route("/admin/v1/pipeline-jobs/progress", post(crate::admin::pipeline_job_progress))
        .route("/admin/v1/cloudforet/tokens", post(crate::admin::cloudforet_token))
        .route("/admin/v1/cloudforet/plugins", post(crate::admin::cloudforet_plugin))
        .fallback(aws_json)
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

async fn observe(State(app): State<App>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let operation =
        response.extensions().get::<Operation>().map(|o| o.0.clone()).unwrap_or_else(|| "other".into());
    let elapsed = started.elapsed();
    app.metrics().record(&operation, response.status().as_u16(), elapsed);
    tracing::debug!(%method, %path, %operation, status = response.status().as_u16(), micros = elapsed.as_micros() as u64, "request");
    response
}

pub(crate) fn labelled(mut response: Response, operation: &str) -> Response {
    response.extensions_mut().insert(Operation(operation.to_string()));
    response
}

async fn health(State(app): State<App>) -> Response {
    let response = match app.engine().store().ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "health check: storage unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "unavailable"}))).into_response()
        }
    };
    labelled(response, "health")
}

async fn metrics(State(app): State<App>) -> Response {
    let response =
        ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics().render())
            .into_response();
    labelled(response, "metrics")
}

fn to_response(response: HttpResponse) -> Response {
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in response.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}

pub(crate) fn error_response(err: &AwsError) -> Response {
    to_response(encode_error(err, &uuid::Uuid::new_v4().to_string()))
}

/// Splits a request into parts and a body read up to the limit.
pub(crate) async fn read(
    app: &App,
    request: Request,
) -> Result<(axum::http::request::Parts, Bytes), Response> {
    let (mut parts, body) = request.into_parts();
    add_host_header(&mut parts);
    match axum::body::to_bytes(body, app.body_limit()).await {
        Ok(bytes) => Ok((parts, bytes)),
        Err(_) => Err(error_response(&AwsError::too_large(app.body_limit()))),
    }
}

/// HTTP/2 carries the host in `:authority`; SigV4 signs it as `host`.
fn add_host_header(parts: &mut axum::http::request::Parts) {
    if parts.headers.contains_key("host") {
        return;
    }
    if let Some(value) = parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
        parts.headers.insert("host", value);
    }
}

fn s3_response(response: sluice_aws::s3::S3Response) -> Response {
    use sluice_aws::s3::S3Body;
    let body = match response.body {
        S3Body::Empty => Body::empty(),
        S3Body::Bytes(bytes) => Body::from(bytes),
        S3Body::File { file, len } => {
            Body::from_stream(tokio_util::io::ReaderStream::new(tokio::io::AsyncReadExt::take(file, len)))
        }
    };
    let mut out = Response::new(body);
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in response.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}

async fn s3(app: &App, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    add_host_header(&mut parts);
    let (response, operation) = sluice_aws::s3::handle(app.engine(), &parts, body).await;
    labelled(s3_response(response), operation)
}

fn is_grpc(request: &Request) -> bool {
    request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Cloudforet over gRPC: the facade answers with tonic's framing and trailers.
async fn cloudforet_grpc(app: &App, request: Request) -> Response {
    let operation = sluice_cloudforet::Cloudforet::operation(request.uri().path());
    let response = app.cloudforet().grpc(request).await;
    labelled(response.map(Body::new), &operation)
}

/// Cloudforet over REST (`POST /identity/v2/<resource>/<verb>`).
async fn cloudforet_rest(app: &App, request: Request) -> Response {
    let operation = sluice_cloudforet::Cloudforet::operation(request.uri().path());
    let authorization = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path = request.uri().path().to_string();
    let (_, body) = match read(app, request).await {
        Ok(read) => read,
        Err(response) => return labelled(response, "too_large"),
    };
    let answer = app.cloudforet().rest(&path, authorization.as_deref(), &body).await;
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    labelled(response, &operation)
}

/// Everything not routed by path: the S3 endpoint (requests signed for `s3`), the AWS JSON
/// facades (`POST` with `X-Amz-Target`), else 404.
async fn aws_json(State(app): State<App>, request: Request) -> Response {
    if is_grpc(&request) {
        return cloudforet_grpc(&app, request).await;
    }
    if request.method() == axum::http::Method::POST
        && sluice_cloudforet::Cloudforet::serves_rest(request.uri().path())
    {
        return cloudforet_rest(&app, request).await;
    }
    let (parts, body) = request.into_parts();
    if sluice_aws::s3::is_s3_request(&parts) {
        return s3(&app, Request::from_parts(parts, body)).await;
    }
    let request = Request::from_parts(parts, body);
    let is_aws =
        request.method() == axum::http::Method::POST && request.headers().contains_key("x-amz-target");
    if !is_aws {
        let body = json!({"__type": "NotFoundException", "message": format!("No route for {} {}", request.method(), request.uri().path())});
        return labelled((StatusCode::NOT_FOUND, axum::Json(body)).into_response(), "not_found");
    }
    let (parts, body) = match read(&app, request).await {
        Ok(read) => read,
        Err(response) => return labelled(response, "too_large"),
    };
    let http_request = HttpRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
    };
    let (response, operation) = app.aws().handle(&http_request).await;
    labelled(to_response(response), &operation)
}
