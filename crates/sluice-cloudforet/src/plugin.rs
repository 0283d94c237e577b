//! The account-collector plugin client: `spaceone.api.identity.plugin.AccountCollector/sync`
//! over gRPC (plaintext HTTP/2), with the request built from JSON through the descriptor set.

use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use serde_json::{json, Map, Value};
use sluice_engine::cloudforet::{CollectedAccount, SyncWork};

use crate::grpc::RawCodec;
use crate::wire;

const SYNC_PATH: &str = "/spaceone.api.identity.plugin.AccountCollector/sync";

/// Calls the plugin's `sync` for `work`; Err is the message the job fails with.
pub async fn sync(work: &SyncWork, timeout: Duration) -> Result<Vec<CollectedAccount>, String> {
    let call = call_sync(work);
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(format!("The plugin did not answer within {} seconds.", timeout.as_secs())),
    }
}

async fn call_sync(work: &SyncWork) -> Result<Vec<CollectedAccount>, String> {
    let pool = wire::pool();
    let request_desc = pool
        .get_message_by_name("spaceone.api.identity.plugin.SyncRequest")
        .ok_or("the plugin contract is missing")?;
    let response_desc = pool
        .get_message_by_name("spaceone.api.identity.plugin.AccountsInfo")
        .ok_or("the plugin contract is missing")?;
    let mut request = json!({
        "options": work.options,
        "secret_data": work.secret_data,
        "domain_id": work.job.domain_id,
    });
    if let Some(schema) = &work.schema_id {
        request["schema_id"] = json!(schema);
    }
    let body = wire::encode(&request_desc, &request).map_err(|err| err.message)?;
    let channel = tonic::transport::Endpoint::from_shared(work.endpoint.clone())
        .map_err(|_| format!("The plugin endpoint is invalid. (endpoint = {})", work.endpoint))?
        .connect()
        .await
        .map_err(|err| {
            format!("The plugin cannot be reached. (endpoint = {}, reason = {err})", work.endpoint)
        })?;
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.map_err(|err| format!("The plugin is not ready. ({err})"))?;
    let answer = client
        .unary(tonic::Request::new(Bytes::from(body)), PathAndQuery::from_static(SYNC_PATH), RawCodec)
        .await
        .map_err(plugin_error)?;
    let accounts = wire::decode(&response_desc, answer.get_ref()).map_err(|err| err.message)?;
    Ok(accounts
        .get("results")
        .and_then(Value::as_array)
        .map(|r| r.iter().map(collected).collect())
        .unwrap_or_default())
}

/// The plugin's own message (what Cloudforet records), or its status code when it sent none.
fn plugin_error(status: tonic::Status) -> String {
    if status.message().is_empty() {
        format!("The plugin failed with {:?}.", status.code())
    } else {
        status.message().to_string()
    }
}

fn collected(result: &Value) -> CollectedAccount {
    let text = |key: &str| result.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let object = |key: &str| result.get(key).and_then(Value::as_object).cloned().unwrap_or_else(Map::new);
    let location = result
        .get("location")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    let field =
                        |key: &str| item.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
                    (field("name"), field("resource_id"))
                })
                .collect()
        })
        .unwrap_or_default();
    CollectedAccount {
        name: text("name"),
        resource_id: text("resource_id"),
        data: object("data"),
        tags: object("tags"),
        secret_schema_id: Some(text("secret_schema_id")).filter(|s| !s.is_empty()),
        location,
    }
}
