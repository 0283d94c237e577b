//! Action types: the built-in AWS ones and those users declare (custom now, third-party later).

use sluice_core::action_type::{builtin_action_types, ActionType, ActionTypeId, Owner};
use sluice_store::action_types::ThirdPartyClient;
use sluice_store::events::NewEvent;

use crate::{tags, Engine, Error, Principal, Result};

/// What a third-party action type's job workers authenticate with.
#[derive(Clone, PartialEq, Eq)]
pub struct ThirdPartyCredentials {
    pub client_id: String,
    pub client_token: String,
}

impl std::fmt::Debug for ThirdPartyCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThirdPartyCredentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

fn event<'a>(actor: &'a Principal, kind: &'a str, subject: &'a str, at: i64) -> NewEvent<'a> {
    NewEvent { execution_id: None, job_id: None, actor: &actor.arn, kind, subject, detail: "{}", at }
}

impl Engine {
    /// Declares a custom action type, with optional tags.
    pub async fn create_custom_action_type(
        &self,
        actor: &Principal,
        action_type: ActionType,
        tag_list: Vec<(String, String)>,
    ) -> Result<ActionType> {
        if action_type.id.owner != Owner::Custom {
            return Err(Error::Validation("A custom action type must have owner Custom".into()));
        }
        action_type.check_declaration().map_err(Error::Validation)?;
        tags::check(&tag_list)?;
        let subject = action_type.id.to_string();
        let create = event(actor, "CreateCustomActionType", &subject, self.now_millis());
        match self.store.insert_action_type(&action_type, &create).await {
            Err(sluice_store::Error::Conflict) => {
                return Err(Error::ActionTypeExists(format!(
                    "Action type {subject} already exists or was deleted; declare it with a version never used before"
                )))
            }
            other => other?,
        }
        if !tag_list.is_empty() {
            let arn = self.account.action_type_arn(&action_type.id);
            self.store.tag_resource(&arn, &tag_list, tags::MAX_TAGS).await?;
        }
        Ok(action_type)
    }

    /// Registers a third-party action type and returns it with the client credentials its job
    /// workers present (PollForThirdPartyJobs and the other third-party job calls). Root only.
    pub async fn register_third_party_action_type(
        &self,
        actor: &Principal,
        action_type: ActionType,
    ) -> Result<(ActionType, ThirdPartyCredentials)> {
        if !actor.is_root {
            return Err(Error::AccessDenied("Only the root principal may register action types".into()));
        }
        if action_type.id.owner != Owner::ThirdParty {
            return Err(Error::Validation("A third-party action type must have owner ThirdParty".into()));
        }
        action_type.check_declaration().map_err(Error::Validation)?;
        let credentials = ThirdPartyCredentials {
            client_id: uuid::Uuid::new_v4().to_string(),
            client_token: crate::keys::random_text(48),
        };
        let client = ThirdPartyClient {
            client_id: credentials.client_id.clone(),
            client_token_enc: self.secrets.seal(credentials.client_token.as_bytes()),
        };
        let subject = action_type.id.to_string();
        let register = event(actor, "RegisterThirdPartyActionType", &subject, self.now_millis());
        match self.store.insert_action_type_with_client(&action_type, Some(&client), &register).await {
            Err(sluice_store::Error::Conflict) => {
                return Err(Error::ActionTypeExists(format!(
                    "Action type {subject} already exists or was deleted; register it with a version never used before"
                )))
            }
            other => other?,
        }
        Ok((action_type, credentials))
    }

    /// Marks a custom action type deleted (pipelines that use it keep their declaration).
    /// Returns false if there was no live type with that id.
    pub async fn delete_custom_action_type(&self, actor: &Principal, id: &ActionTypeId) -> Result<bool> {
        let subject = id.to_string();
        let delete = event(actor, "DeleteCustomActionType", &subject, self.now_millis());
        Ok(self.store.delete_action_type(id, &delete).await?)
    }

    /// Every live action type, built-in ones first, optionally of one owner.
    pub async fn list_action_types(&self, owner: Option<Owner>) -> Result<Vec<ActionType>> {
        let builtins = builtin_action_types().into_iter().filter(|t| owner.is_none_or(|o| t.id.owner == o));
        let stored = self.store.list_action_types(owner).await?;
        Ok(builtins.chain(stored).collect())
    }

    /// A live action type by id, built-in or stored.
    pub async fn action_type(&self, id: &ActionTypeId) -> Result<Option<ActionType>> {
        if let Some(builtin) = builtin_action_types().into_iter().find(|t| &t.id == id) {
            return Ok(Some(builtin));
        }
        let stored = self.store.action_type(id).await?;
        Ok(stored.filter(|s| !s.deleted).map(|s| s.action_type))
    }

    /// The queryable property of the action type a poll names, which decides the queue it
    /// polls. A deleted type still has one: its jobs queued before the deletion stay on their
    /// queue and can still be polled. Types never change, so a live type is taken from memory
    /// once seen ([`Self::action_type_in`]) and a poll reads nothing.
    pub async fn polled_queryable_property(&self, id: &ActionTypeId) -> Result<Option<String>> {
        let found = match self.builtin_or_known_action_type(id) {
            Some(found) => Some(found),
            None => self.store.action_type(id).await?.map(|stored| {
                if !stored.deleted {
                    self.remember_action_type(&stored.action_type);
                }
                stored.action_type
            }),
        };
        Ok(found.and_then(|t| t.queryable_property().map(|p| p.name.clone())))
    }

    /// An action type for queueing a job, read inside a transition's transaction. A declared
    /// type never changes (a new version is a new type), so a type once seen live is kept in
    /// memory and later jobs read nothing; a deletion afterwards does not change how its jobs
    /// are queued.
    pub(crate) async fn action_type_in(
        &self,
        tx: &mut sluice_store::Tx<'_>,
        id: &ActionTypeId,
    ) -> Result<Option<ActionType>> {
        if let Some(found) = self.builtin_or_known_action_type(id) {
            return Ok(Some(found));
        }
        let stored = sluice_store::action_types::action_type_in(tx, id).await?;
        let found = stored.filter(|s| !s.deleted).map(|s| s.action_type);
        if let Some(found) = &found {
            self.remember_action_type(found);
        }
        Ok(found)
    }
}

impl Engine {
    /// A built-in type, or a stored one this server has seen live; None means read the store.
    fn builtin_or_known_action_type(&self, id: &ActionTypeId) -> Option<ActionType> {
        builtin_action_types()
            .into_iter()
            .find(|t| &t.id == id)
            .or_else(|| self.seen_action_types.lock().expect("action type cache").get(id).cloned())
    }

    fn remember_action_type(&self, action_type: &ActionType) {
        let mut seen = self.seen_action_types.lock().expect("action type cache");
        seen.insert(action_type.id.clone(), action_type.clone());
    }
}
