//! The wire contract as data: the descriptor set compiled from `proto/` at build time. Every
//! method is found by its gRPC path (`/spaceone.api.identity.v2.Job/list`) or its REST path
//! (`/identity/v2/job/list`), and every message converts between protobuf bytes, proto3 JSON
//! (proto field names, enum names) and the `serde_json::Value` the handlers work on. One
//! handler therefore serves both transports.

use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions,
};
use serde_json::Value;

use crate::error::{CfError, Result};

/// The encoded FileDescriptorSet of Sluice's Cloudforet protos.
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cloudforet.bin"));

/// The package whose services Sluice serves.
pub const IDENTITY_PACKAGE: &str = "spaceone.api.identity.v2";

pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(DESCRIPTOR_SET).expect("the embedded descriptor set decodes"))
}

/// A served method by gRPC path.
pub fn method_by_grpc_path(path: &str) -> Option<MethodDescriptor> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let service = pool().get_service_by_name(service)?;
    if service.package_name() != IDENTITY_PACKAGE {
        return None;
    }
    let found = service.methods().find(|m| m.name() == method);
    found
}

/// A served method by REST path: `/identity/v2/<kebab resource>/<kebab verb>`.
pub fn method_by_rest_path(path: &str) -> Option<MethodDescriptor> {
    let rest = path.strip_prefix("/identity/v2/")?;
    let (resource, verb) = rest.split_once('/')?;
    pool().services().filter(|s| s.package_name() == IDENTITY_PACKAGE).find_map(|service| {
        if kebab(service.name()) != resource {
            return None;
        }
        service.methods().find(|m| m.name().replace('_', "-") == verb)
    })
}

/// `TrustedAccount` → `trusted-account`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn serialize_options() -> SerializeOptions {
    SerializeOptions::new().use_proto_field_name(true).skip_default_fields(true)
}

/// Protobuf bytes of `desc` → JSON.
pub fn decode(desc: &MessageDescriptor, bytes: &[u8]) -> Result<Value> {
    let message = DynamicMessage::decode(desc.clone(), bytes)
        .map_err(|_| CfError::invalid("request", "the message cannot be decoded"))?;
    to_json(&message)
}

/// Request JSON (as a REST caller sends it) → the normalised JSON the handlers see, checked
/// against the message's fields and types.
pub fn normalize(desc: &MessageDescriptor, body: &Value) -> Result<Value> {
    let message = from_json(desc, body).map_err(|reason| CfError::invalid("body", &reason))?;
    to_json(&message)
}

/// JSON → protobuf bytes of `desc` (responses, and the requests Sluice sends plugins). The
/// reason of a failure is not logged: a plugin request carries secret data.
pub fn encode(desc: &MessageDescriptor, value: &Value) -> Result<Vec<u8>> {
    let message = from_json(desc, value).map_err(|_| {
        tracing::error!(message = desc.full_name(), "JSON does not fit its message");
        CfError::internal()
    })?;
    Ok(message.encode_to_vec())
}

/// Handler output JSON → the JSON a REST caller receives (defaults dropped, enums by name).
pub fn respond_json(desc: &MessageDescriptor, value: &Value) -> Result<Value> {
    let message = from_json(desc, value).map_err(|reason| {
        tracing::error!(%reason, message = desc.full_name(), "a response does not fit its message");
        CfError::internal()
    })?;
    to_json(&message)
}

/// Drops the keys of `value` (recursively, through nested messages and lists of them) that
/// `desc` has no field for, so stored extras never break a response.
pub fn fit(desc: &MessageDescriptor, value: &mut Value) {
    if desc.full_name().starts_with("google.protobuf.") {
        return;
    }
    let Value::Object(map) = value else { return };
    map.retain(|key, _| desc.get_field_by_name(key).is_some());
    for (key, item) in map.iter_mut() {
        let Some(field) = desc.get_field_by_name(key) else { continue };
        let prost_reflect::Kind::Message(inner) = field.kind() else { continue };
        if inner.full_name().starts_with("google.protobuf.") || field.is_map() {
            continue;
        }
        match item {
            Value::Array(items) => items.iter_mut().for_each(|item| fit(&inner, item)),
            item => fit(&inner, item),
        }
    }
}

fn from_json(desc: &MessageDescriptor, value: &Value) -> std::result::Result<DynamicMessage, String> {
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    DynamicMessage::deserialize_with_options(desc.clone(), value, &options).map_err(|err| err.to_string())
}

fn to_json(message: &DynamicMessage) -> Result<Value> {
    message.serialize_with_options(serde_json::value::Serializer, &serialize_options()).map_err(|err| {
        tracing::error!(error = %err, "a message cannot be written as JSON");
        CfError::internal()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_found_by_either_path() {
        let by_grpc =
            method_by_grpc_path("/spaceone.api.identity.v2.TrustedAccount/update_secret_data").unwrap();
        let by_rest = method_by_rest_path("/identity/v2/trusted-account/update-secret-data").unwrap();
        assert_eq!(by_grpc.full_name(), by_rest.full_name());
        assert!(method_by_grpc_path("/spaceone.api.identity.plugin.AccountCollector/sync").is_none());
        assert!(method_by_rest_path("/identity/v2/job/nope").is_none());
    }

    #[test]
    fn json_round_trips_through_protobuf() {
        let method = method_by_grpc_path("/spaceone.api.identity.v2.Job/list").unwrap();
        let body = serde_json::json!({
            "query": {"filter": [{"k": "status", "v": "SUCCESS", "o": "eq"}], "page": {"start": 1, "limit": 5}},
            "status": "FAILURE"
        });
        let normalized = normalize(&method.input(), &body).unwrap();
        let bytes = encode(&method.input(), &normalized).unwrap();
        assert_eq!(decode(&method.input(), &bytes).unwrap(), normalized);
        assert_eq!(normalized["query"]["filter"][0]["v"], "SUCCESS");
        assert!(normalize(&method.input(), &serde_json::json!({"nope": 1})).is_err());
        assert!(normalize(&method.input(), &serde_json::json!({"status": 7.5})).is_err());
    }
}
