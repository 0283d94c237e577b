//! Sluice's Cloudforet (SpaceONE) identity v2 facade. The same methods are served over gRPC
//! (`spaceone.api.identity.v2.*`, with server reflection) and REST (`POST
//! /identity/v2/<resource>/<verb>`); both decode into proto3 JSON with the descriptor set in
//! [`wire`] and call one handler per method ([`jobs`], [`identity`], [`synced`]). Tokens are
//! checked in [`auth`]; errors reach the wire through [`error`]. The [`runner`] runs trusted
//! accounts' syncs: it claims sync runs from the engine queue and calls the account-collector
//! plugin over gRPC ([`plugin`]).

pub mod auth;
pub mod error;
pub mod grpc;
pub mod identity;
pub mod jobs;
pub mod plugin;
pub mod rest;
pub mod runner;
pub mod synced;
pub mod wire;

use std::convert::Infallible;

use prost_reflect::MethodDescriptor;
use serde_json::Value;
use sluice_engine::Engine;

use auth::{Caller, Tokens};
use error::{CfError, Result};

pub(crate) type Reflection = tower::util::BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    Infallible,
>;

/// The facade; cheap to clone.
#[derive(Clone)]
pub struct Cloudforet {
    engine: Engine,
    reflection: Reflection,
    reflection_v1: Reflection,
}

impl std::fmt::Debug for Cloudforet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cloudforet(..)")
    }
}

impl Cloudforet {
    pub fn new(engine: Engine) -> Self {
        let (reflection, reflection_v1) = grpc::reflection_services();
        Cloudforet { engine, reflection, reflection_v1 }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A token for `caller`, valid for `ttl_seconds` from now.
    pub fn mint_token(&self, caller: &Caller, ttl_seconds: i64) -> String {
        let now = self.engine.now_millis() / 1000;
        let mac = |data: &[u8]| self.engine.token_mac(data);
        Tokens { mac: &mac }.mint(caller, now, now + ttl_seconds)
    }

    fn caller(&self, token: Option<&str>) -> Result<Caller> {
        let token =
            token.filter(|t| !t.is_empty()).ok_or_else(|| CfError::authentication("token is missing"))?;
        let mac = |data: &[u8]| self.engine.token_mac(data);
        Tokens { mac: &mac }.verify(token, self.engine.now_millis() / 1000)
    }

    /// Runs one method for the bearer of `token` with its input as proto3 JSON.
    pub async fn call(&self, method: &MethodDescriptor, token: Option<&str>, input: Value) -> Result<Value> {
        let caller = self.caller(token)?;
        let service = method.parent_service();
        let mut output = match (service.name(), method.name()) {
            ("Job", verb) => jobs::call(self, &caller, verb, input).await,
            ("Provider", verb) => identity::provider(self, &caller, verb, input).await,
            ("TrustedAccount", verb) => identity::trusted_account(self, &caller, verb, input).await,
            (resource, verb) => synced::call(self, &caller, resource, verb, input).await,
        }?;
        wire::fit(&method.output(), &mut output);
        Ok(output)
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for epoch milliseconds, as Cloudforet writes times.
pub fn timestamp(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A required string field of the input.
pub(crate) fn required<'a>(input: &'a Value, key: &str) -> Result<&'a str> {
    input.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| CfError::required(key))
}

/// An optional string field of the input (absent or empty is None).
pub(crate) fn optional<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}
