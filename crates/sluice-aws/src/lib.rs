//! The AWS wire layer: SigV4 verification ([`sigv4`], [`auth`]), the AWS JSON 1.1 protocol
//! ([`json_rpc`]), input checking against the service models ([`model`]), AWS error shapes
//! ([`error`]) and the facades: [`codepipeline`], [`ssm`] (Automation documents). Nothing here knows about axum: the server
//! hands in [`json_rpc::HttpRequest`] and writes out [`json_rpc::HttpResponse`].

pub mod auth;
pub mod codepipeline;
pub mod codepipeline_runs;
pub mod error;
pub mod json_rpc;
pub mod model;
pub mod s3;
pub mod sigv4;
pub mod ssm;
pub mod ssm_automation;

pub use error::AwsError;
pub use json_rpc::{AwsJsonService, HttpRequest, HttpResponse};
