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
            // AWS: a deleted custom action is restored by declaring it again identically.
            Err(sluice_store::Error::Conflict) => {
                if !self.store.restore_action_type(&action_type, &create).await? {
                    return Err(Error::ActionTypeExists(format!(
                        "Action type {subject} already exists, or was deleted with another declaration; \
                         declare it with a version never used before, or restore it with its declaration unchanged"
                    )));
                }
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
        let deleted = self.store.delete_action_type(id, &delete).await?;
        if deleted {
            self.forget_action_type(&subject);
        }
        Ok(deleted)
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
    /// polls. A type that was never declared, or was deleted, is ActionTypeNotFound (AWS:
    /// PollForJobs fails once the custom action is marked deleted); jobs queued before the
    /// deletion stay queued. Types never change, so a live type is taken from memory once seen
    /// and a poll reads nothing; a deletion makes every server forget it
    /// ([`Self::relay_announcements`]).
    pub async fn polled_queryable_property(&self, id: &ActionTypeId) -> Result<Option<String>> {
        let live = match self.builtin_or_known_action_type(id) {
            Some(found) => found,
            None => {
                let forgets = self.action_type_forgets();
                let stored = self.store.action_type(id).await?.filter(|s| !s.deleted).ok_or_else(|| {
                    Error::ActionTypeNotFound(format!("Action type {id} does not exist or was deleted"))
                })?;
                self.remember_action_type(&stored.action_type, forgets);
                stored.action_type
            }
        };
        Ok(live.queryable_property().map(|p| p.name.clone()))
    }

    /// An action type for queueing a job, read inside a transition's transaction, deleted or
    /// not: a job queued while its type is deleted goes to the queue its queryable property
    /// names, where polls find it once the type is restored. A declared type never changes (a
    /// new version is a new type), so a type once seen live is kept in memory and later jobs
    /// read nothing; a deletion afterwards does not change how its jobs are queued.
    pub(crate) async fn action_type_in(
        &self,
        tx: &mut sluice_store::Tx<'_>,
        id: &ActionTypeId,
    ) -> Result<Option<ActionType>> {
        if let Some(found) = self.builtin_or_known_action_type(id) {
            return Ok(Some(found));
        }
        let forgets = self.action_type_forgets();
        let Some(stored) = sluice_store::action_types::action_type_in(tx, id).await? else {
            return Ok(None);
        };
        if !stored.deleted {
            self.remember_action_type(&stored.action_type, forgets);
        }
        Ok(Some(stored.action_type))
    }
}

/// Stored action types a server has seen live, by id. A declared type never changes, but it can
/// be deleted: a deletion forgets it, in the process that made it at once and in the others
/// when PostgreSQL relays the deletion; a broken relay connection forgets them all.
#[derive(Debug, Default)]
pub(crate) struct KnownTypes {
    types: std::collections::HashMap<ActionTypeId, ActionType>,
    /// Counts forgets, so that a type read live before a forget is not kept after it.
    forgets: u64,
}

impl Engine {
    /// A built-in type, or a stored one this server has seen live; None means read the store.
    fn builtin_or_known_action_type(&self, id: &ActionTypeId) -> Option<ActionType> {
        builtin_action_types()
            .into_iter()
            .find(|t| &t.id == id)
            .or_else(|| self.seen_action_types.lock().expect("action type cache").types.get(id).cloned())
    }

    /// How many forgets there have been; taken before reading a type from the store.
    fn action_type_forgets(&self) -> u64 {
        self.seen_action_types.lock().expect("action type cache").forgets
    }

    /// Keeps a type read live, unless a forget came since `forgets` was taken.
    fn remember_action_type(&self, action_type: &ActionType, forgets: u64) {
        let mut seen = self.seen_action_types.lock().expect("action type cache");
        if seen.forgets == forgets {
            seen.types.insert(action_type.id.clone(), action_type.clone());
        }
    }

    /// Forgets a deleted type, named as `Category/Owner/Provider/Version`.
    pub(crate) fn forget_action_type(&self, id: &str) {
        let mut seen = self.seen_action_types.lock().expect("action type cache");
        seen.types.retain(|known, _| known.to_string() != id);
        seen.forgets += 1;
    }

    /// Forgets every kept type (deletions may have gone unheard).
    pub(crate) fn forget_action_types(&self) {
        let mut seen = self.seen_action_types.lock().expect("action type cache");
        seen.types.clear();
        seen.forgets += 1;
    }
}
