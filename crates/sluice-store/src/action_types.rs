//! Custom and third-party action types. Deleted types keep their row (marked `deleted_at`) so
//! that a deleted id cannot be declared again, except identically, which restores it, as AWS
//! documents.

use serde_json::{json, Map, Value};
use sluice_core::action_type::{
    ActionType, ActionTypeId, ActionTypeSettings, ArtifactBounds, ConfigProperty, Owner,
};

use crate::sql::{self, On, Row};

use crate::{events, to_u32, Backend, Error, Result, Store, Tx};

const COLUMNS: &str = "category, owner, provider, version, settings, properties, \
                       input_min, input_max, output_min, output_max, deleted_at";

/// A stored action type and whether it was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredActionType {
    pub action_type: ActionType,
    pub deleted: bool,
}

/// The credentials of a third-party action type's job workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThirdPartyClient {
    pub client_id: String,
    /// The client token, sealed by the engine.
    pub client_token_enc: Vec<u8>,
}

impl Store {
    /// Stores a new action type; `Error::Conflict` if the id exists (deleted or not).
    pub async fn insert_action_type(
        &self,
        action_type: &ActionType,
        event: &events::NewEvent<'_>,
    ) -> Result<()> {
        self.insert_action_type_with_client(action_type, None, event).await
    }

    /// The client of a third-party action type, if it has one.
    pub async fn third_party_client(&self, id: &ActionTypeId) -> Result<Option<ThirdPartyClient>> {
        let row = sql::query(
            "SELECT client_id, client_token_enc FROM action_types
             WHERE category = $1 AND owner = $2 AND provider = $3 AND version = $4
               AND client_id IS NOT NULL AND deleted_at IS NULL",
        )
        .bind_id(id)
        .fetch_optional(self.reads())
        .await?;
        row.map(|row| Ok(ThirdPartyClient { client_id: row.try_get(0)?, client_token_enc: row.try_get(1)? }))
            .transpose()
    }

    /// Stores a new action type with an optional third-party client; `Error::Conflict` if the id
    /// (or the client id) exists.
    pub async fn insert_action_type_with_client(
        &self,
        action_type: &ActionType,
        client: Option<&ThirdPartyClient>,
        event: &events::NewEvent<'_>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let id = &action_type.id;
        sql::query(
            "INSERT INTO action_types (category, owner, provider, version, settings, properties,
                 input_min, input_max, output_min, output_max, created_at, client_id, client_token_enc)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind_id(id)
        .bind(settings_json(&action_type.settings).to_string())
        .bind(properties_json(&action_type.properties).to_string())
        .bind(i64::from(action_type.input.min))
        .bind(i64::from(action_type.input.max))
        .bind(i64::from(action_type.output.min))
        .bind(i64::from(action_type.output.max))
        .bind(event.at)
        .bind(client.map(|c| c.client_id.as_str()))
        .bind(client.map(|c| c.client_token_enc.as_slice()))
        .execute(&mut tx)
        .await?;
        events::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The action type with this id, deleted or not.
    pub async fn action_type(&self, id: &ActionTypeId) -> Result<Option<StoredActionType>> {
        action_type_on(self.reads(), id).await
    }

    /// Live (not deleted) action types, optionally of one owner, in id order.
    pub async fn list_action_types(&self, owner: Option<Owner>) -> Result<Vec<ActionType>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM action_types
             WHERE deleted_at IS NULL AND ($1 IS NULL OR owner = $1)
             ORDER BY category, owner, provider, version"
        );
        let rows = sql::query(&sql).bind(owner.map(Owner::as_str)).fetch_all(self.reads()).await?;
        rows.iter().map(|row| decode(row).map(|s| s.action_type)).collect()
    }

    /// Makes a deleted action type live again when `action_type` is exactly its declaration
    /// (AWS restores a deleted custom action declared again identically); false otherwise.
    pub async fn restore_action_type(
        &self,
        action_type: &ActionType,
        event: &events::NewEvent<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let stored = action_type_in(&mut tx, &action_type.id).await?;
        if !stored.is_some_and(|s| s.deleted && s.action_type == *action_type) {
            return Ok(false);
        }
        sql::query(
            "UPDATE action_types SET deleted_at = NULL
             WHERE category = $1 AND owner = $2 AND provider = $3 AND version = $4",
        )
        .bind_id(&action_type.id)
        .execute(&mut tx)
        .await?;
        events::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a live action type deleted; false if there was none.
    pub async fn delete_action_type(&self, id: &ActionTypeId, event: &events::NewEvent<'_>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sql::query(
            "UPDATE action_types SET deleted_at = $5
             WHERE category = $1 AND owner = $2 AND provider = $3 AND version = $4
               AND deleted_at IS NULL",
        )
        .bind_id(id)
        .bind(event.at)
        .execute(&mut tx)
        .await?;
        if done == 0 {
            return Ok(false);
        }
        events::append(&mut tx, event).await?;
        if self.backend() == Backend::Postgres {
            // Other server processes forget the type when this commits (see `Store::announcements`).
            sql::query("SELECT pg_notify($1, $2)")
                .bind(DELETED_CHANNEL)
                .bind(id.to_string())
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// The PostgreSQL channel that carries the ids (`Category/Owner/Provider/Version`) of deleted
/// action types, so that every server process stops treating them as live.
pub const DELETED_CHANNEL: &str = "sluice_action_types_deleted";

/// Binds an action type id's four parts as the next four parameters.
trait BindId<'q> {
    fn bind_id(self, id: &'q ActionTypeId) -> Self;
}

impl<'q> BindId<'q> for sql::Query<'_> {
    fn bind_id(self, id: &'q ActionTypeId) -> Self {
        self.bind(id.category.as_str()).bind(id.owner.as_str()).bind(&id.provider).bind(&id.version)
    }
}

fn settings_json(settings: &ActionTypeSettings) -> Value {
    json!({
        "thirdPartyConfigurationUrl": settings.third_party_configuration_url,
        "entityUrlTemplate": settings.entity_url_template,
        "executionUrlTemplate": settings.execution_url_template,
        "revisionUrlTemplate": settings.revision_url_template,
    })
}

fn properties_json(properties: &[ConfigProperty]) -> Value {
    properties
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "required": p.required,
                "key": p.key,
                "secret": p.secret,
                "queryable": p.queryable,
                "description": p.description,
                "type": p.kind.map(|k| k.as_str()),
            })
        })
        .collect()
}

fn decode(row: &Row) -> Result<StoredActionType> {
    let parse_enum = |column: usize| -> Result<String> { row.try_get::<String>(column) };
    let id = ActionTypeId {
        category: parse_enum(0)?.parse().map_err(Error::Corrupt)?,
        owner: parse_enum(1)?.parse().map_err(Error::Corrupt)?,
        provider: row.try_get(2)?,
        version: row.try_get(3)?,
    };
    let settings: Value = parse_json(&row.try_get::<String>(4)?)?;
    let properties: Value = parse_json(&row.try_get::<String>(5)?)?;
    let bounds = |min: usize, max: usize| -> Result<ArtifactBounds> {
        Ok(ArtifactBounds {
            min: to_u32(row.try_get(min)?, "artifact minimum")?,
            max: to_u32(row.try_get(max)?, "artifact maximum")?,
        })
    };
    Ok(StoredActionType {
        action_type: ActionType {
            id,
            settings: decode_settings(&settings),
            properties: decode_properties(&properties)?,
            input: bounds(6, 7)?,
            output: bounds(8, 9)?,
        },
        deleted: row.try_get::<Option<i64>>(10)?.is_some(),
    })
}

fn parse_json(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(e.to_string()))
}

fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_string)
}

fn decode_settings(value: &Value) -> ActionTypeSettings {
    let empty = Map::new();
    let object = value.as_object().unwrap_or(&empty);
    ActionTypeSettings {
        third_party_configuration_url: text(object, "thirdPartyConfigurationUrl"),
        entity_url_template: text(object, "entityUrlTemplate"),
        execution_url_template: text(object, "executionUrlTemplate"),
        revision_url_template: text(object, "revisionUrlTemplate"),
    }
}

fn decode_properties(value: &Value) -> Result<Vec<ConfigProperty>> {
    let items = value.as_array().ok_or_else(|| Error::Corrupt("properties".into()))?;
    items
        .iter()
        .map(|item| {
            let object = item.as_object().ok_or_else(|| Error::Corrupt("property".into()))?;
            let flag = |key: &str| object.get(key).and_then(Value::as_bool).unwrap_or(false);
            Ok(ConfigProperty {
                name: text(object, "name").ok_or_else(|| Error::Corrupt("property name".into()))?,
                required: flag("required"),
                key: flag("key"),
                secret: flag("secret"),
                queryable: flag("queryable"),
                description: text(object, "description"),
                kind: text(object, "type").map(|k| k.parse()).transpose().map_err(Error::Corrupt)?,
            })
        })
        .collect()
}

/// The action type with this id, deleted or not, read inside a transition.
pub async fn action_type_in(tx: &mut Tx<'_>, id: &ActionTypeId) -> Result<Option<StoredActionType>> {
    action_type_on(tx, id).await
}

async fn action_type_on<'a, 'c: 'a>(
    on: impl Into<On<'a, 'c>>,
    id: &ActionTypeId,
) -> Result<Option<StoredActionType>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM action_types
         WHERE category = $1 AND owner = $2 AND provider = $3 AND version = $4"
    );
    let row = sql::query(&sql).bind_id(id).fetch_optional(on).await?;
    row.as_ref().map(decode).transpose()
}
