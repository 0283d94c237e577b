//! SSM Automation documents: creation rules (sluice-core's runbook checks), versions, the default
//! version, deletion, and filtered listing with sealed paging tokens.
//!
//! A version's content is stored as the caller sent it, with its format and SHA-256; other
//! formats are produced on read. Only `Automation` documents are served.

use sha2::{Digest, Sha256};
use sluice_core::automation::document::{Document, DocumentFormat};
use sluice_store::documents::{
    AddVersionOutcome, DeleteVersionOutcome, DocumentQuery, NewDocument, NewDocumentVersion,
};
pub use sluice_store::documents::{DocumentRow, DocumentVersionRow};
use sluice_store::events::NewEvent;

use crate::{tags, Engine, Error, Principal, Result};

/// The only document type Sluice serves.
pub const AUTOMATION: &str = "Automation";

/// Name prefixes AWS keeps for its own documents.
const RESERVED_PREFIXES: &[&str] = &["aws", "amazon", "amzn"];

/// Which version a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    Default,
    Latest,
    Number(i64),
}

impl VersionRef {
    /// `$DEFAULT`, `$LATEST` or a positive number.
    pub fn parse(text: &str) -> Result<VersionRef> {
        match text {
            "$DEFAULT" => Ok(VersionRef::Default),
            "$LATEST" => Ok(VersionRef::Latest),
            number => {
                number.parse::<i64>().ok().filter(|n| *n > 0).map(VersionRef::Number).ok_or_else(|| {
                    Error::InvalidDocumentVersion(format!("Document version {number:?} is not valid"))
                })
            }
        }
    }
}

/// A document and one of its versions.
#[derive(Debug, Clone)]
pub struct DocumentView {
    pub document: DocumentRow,
    pub version: DocumentVersionRow,
}

impl DocumentView {
    /// The stored format of this version.
    pub fn format(&self) -> Result<DocumentFormat> {
        format_of(&self.version.format)
    }

    /// The runbook this version holds (it passed every rule when it was stored).
    pub fn runbook(&self) -> Result<Document> {
        Document::parse(&self.version.content, self.format()?)
            .map_err(|e| Error::Internal(format!("stored document no longer parses: {e}")))
    }
}

/// What CreateDocument asks for.
#[derive(Debug, Clone)]
pub struct NewRunbook {
    pub name: String,
    pub content: String,
    pub format: DocumentFormat,
    pub document_type: String,
    pub version_name: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// What UpdateDocument asks for.
#[derive(Debug, Clone)]
pub struct RunbookUpdate {
    pub name: String,
    pub content: String,
    pub format: DocumentFormat,
    pub version: Option<VersionRef>,
    pub version_name: Option<String>,
}

fn format_of(stored: &str) -> Result<DocumentFormat> {
    DocumentFormat::from_name(stored)
        .ok_or_else(|| Error::Internal(format!("unknown stored format {stored}")))
}

fn sha256_hex(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

fn not_found(name: &str) -> Error {
    Error::InvalidDocument(format!("Document with name {name} does not exist."))
}

fn no_version(name: &str, version: &str) -> Error {
    Error::InvalidDocumentVersion(format!("Document {name} has no version {version}."))
}

fn check_content(content: &str, format: DocumentFormat) -> Result<Document> {
    Document::parse(content, format).map_err(|e| Error::InvalidDocumentContent(e.to_string()))
}

fn document_event<'a>(
    actor: &'a Principal,
    kind: &'a str,
    name: &'a str,
    detail: &'a str,
    at: i64,
) -> NewEvent<'a> {
    NewEvent { execution_id: None, job_id: None, actor: &actor.arn, kind, subject: name, detail, at }
}

/// ListDocuments filters turned into a store query; `None` when no document can match.
fn query_of(
    filters: &[(String, Vec<String>)],
    account_id: &str,
    tag_arn_prefix: String,
) -> Result<Option<DocumentQuery>> {
    let mut query = DocumentQuery { tag_arn_prefix, ..Default::default() };
    let mut matches_nothing = false;
    for (key, values) in filters {
        match key.as_str() {
            "Name" => query.name_prefixes.push(values.clone()),
            "DocumentType" => query.types.push(values.clone()),
            "Owner" => {
                let ours = |v: &String| matches!(v.as_str(), "Self" | "Private" | "All") || v == account_id;
                matches_nothing |= !values.iter().any(ours);
            }
            // Sluice records neither platform types nor target types.
            "PlatformTypes" | "TargetType" => matches_nothing = true,
            tag if tag.starts_with("tag:") && tag.len() > 4 => {
                query.tags.push((tag[4..].to_string(), values.clone()));
            }
            other => {
                return Err(Error::InvalidFilterKey(format!(
                    "Filter key {other} is not supported; use Name, DocumentType, Owner, PlatformTypes, \
                     TargetType or tag:<key>"
                )))
            }
        }
    }
    Ok((!matches_nothing).then_some(query))
}

/// A stable fingerprint of the filters, so a token only continues the listing it came from.
fn filters_scope(filters: &[(String, Vec<String>)]) -> String {
    let mut hasher = Sha256::new();
    for (key, values) in filters {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        for value in values {
            hasher.update(value.as_bytes());
            hasher.update([1]);
        }
        hasher.update([2]);
    }
    format!("documents:{}", hex::encode(hasher.finalize()))
}

impl Engine {
    /// The document name in `name_or_arn` (a name, or an ARN of this account's documents).
    pub fn document_name<'a>(&self, name_or_arn: &'a str) -> &'a str {
        let prefix = self.document_arn("");
        name_or_arn.strip_prefix(prefix.as_str()).unwrap_or(name_or_arn)
    }

    /// `arn:aws:ssm:<region>:<account>:document/<name>`.
    pub fn document_arn(&self, name: &str) -> String {
        format!("arn:aws:ssm:{}:{}:document/{name}", self.account.region, self.account.account_id)
    }

    /// Creates version 1 of an Automation document.
    pub async fn create_document(&self, actor: &Principal, new: NewRunbook) -> Result<DocumentView> {
        if new.document_type != AUTOMATION {
            return Err(Error::Validation(format!(
                "DocumentType {} is not supported: Sluice serves Automation documents only",
                new.document_type
            )));
        }
        let lower = new.name.to_ascii_lowercase();
        if RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
            return Err(Error::Validation(format!(
                "Document name {} is not allowed: names beginning with aws, amazon or amzn are reserved",
                new.name
            )));
        }
        tags::check(&new.tags)?;
        check_content(&new.content, new.format)?;
        let hash = sha256_hex(&new.content);
        let first = NewDocumentVersion {
            version_name: new.version_name.as_deref(),
            content: &new.content,
            format: new.format.name(),
            hash: &hash,
        };
        let arn = self.document_arn(&new.name);
        let document = NewDocument {
            name: &new.name,
            document_type: AUTOMATION,
            owner: &self.account.account_id,
            arn: &arn,
        };
        let event = document_event(actor, "CreateDocument", &new.name, "{\"version\":1}", self.now_millis());
        match self.store.create_document(&document, &first, &new.tags, &event).await {
            Err(sluice_store::Error::Conflict) => {
                return Err(Error::DocumentAlreadyExists("Document with same name already exists.".into()))
            }
            other => other?,
        }
        self.document(&new.name, VersionRef::Number(1), None).await
    }

    /// Stores the next version of a document; the default version stays as it is.
    pub async fn update_document(&self, actor: &Principal, update: RunbookUpdate) -> Result<DocumentView> {
        let current = self.document(&update.name, VersionRef::Latest, None).await?;
        let latest = current.document.latest_version;
        match update.version {
            None | Some(VersionRef::Latest) => {}
            Some(VersionRef::Number(n)) if n == latest => {}
            Some(_) => {
                return Err(Error::InvalidDocumentVersion(format!(
                    "The document version must be $LATEST or {latest}, the latest version of {}",
                    update.name
                )))
            }
        }
        check_content(&update.content, update.format)?;
        let hash = sha256_hex(&update.content);
        if hash == current.version.hash {
            return Err(Error::DuplicateDocumentContent(
                "The content of the document matches the latest version of the document.".into(),
            ));
        }
        if let Some(version_name) = &update.version_name {
            if self.store.document_version_named(&update.name, version_name).await?.is_some() {
                return Err(Error::DuplicateDocumentVersionName(format!(
                    "Document {} already has a version named {version_name}",
                    update.name
                )));
            }
        }
        let next = NewDocumentVersion {
            version_name: update.version_name.as_deref(),
            content: &update.content,
            format: update.format.name(),
            hash: &hash,
        };
        let detail = format!("{{\"version\":{}}}", latest + 1);
        let event = document_event(actor, "UpdateDocument", &update.name, &detail, self.now_millis());
        match self.store.add_document_version(&update.name, latest, &next, &event).await? {
            AddVersionOutcome::Added { version } => {
                self.document(&update.name, VersionRef::Number(version), None).await
            }
            AddVersionOutcome::Stale => Err(Error::Conflict(format!(
                "Document {} changed while it was being updated; try again",
                update.name
            ))),
        }
    }

    /// A version of a document, by reference and, when given, by version name (both must agree).
    pub async fn document(
        &self,
        name: &str,
        version: VersionRef,
        version_name: Option<&str>,
    ) -> Result<DocumentView> {
        let document = self.store.document(name).await?.ok_or_else(|| not_found(name))?;
        let stored = match (version_name, version) {
            (Some(version_name), _) => self
                .store
                .document_version_named(name, version_name)
                .await?
                .ok_or_else(|| no_version(name, version_name))?,
            (None, version) => {
                let number = match version {
                    VersionRef::Default => document.default_version,
                    VersionRef::Latest => document.latest_version,
                    VersionRef::Number(n) => n,
                };
                self.store
                    .document_version(name, number)
                    .await?
                    .ok_or_else(|| no_version(name, &number.to_string()))?
            }
        };
        if let (Some(_), VersionRef::Number(n)) = (version_name, version) {
            if stored.version != n {
                return Err(Error::InvalidDocumentVersion(format!(
                    "Version name and document version {n} of {name} name different versions"
                )));
            }
        }
        Ok(DocumentView { document, version: stored })
    }

    /// Makes `version` the default version of a document.
    pub async fn set_default_document_version(
        &self,
        actor: &Principal,
        name: &str,
        version: i64,
    ) -> Result<DocumentRow> {
        self.store.document(name).await?.ok_or_else(|| not_found(name))?;
        let detail = format!("{{\"version\":{version}}}");
        let event = document_event(actor, "UpdateDocumentDefaultVersion", name, &detail, self.now_millis());
        if !self.store.set_default_document_version(name, version, &event).await? {
            return Err(no_version(name, &version.to_string()));
        }
        self.store.document(name).await?.ok_or_else(|| not_found(name))
    }

    /// Deletes a whole document, or (with `version`) one version that is not the default.
    pub async fn delete_document(
        &self,
        actor: &Principal,
        name: &str,
        version: Option<VersionRef>,
        version_name: Option<&str>,
    ) -> Result<()> {
        if version.is_none() && version_name.is_none() {
            let event = document_event(actor, "DeleteDocument", name, "{}", self.now_millis());
            if !self.store.delete_document(name, &self.document_arn(name), &event).await? {
                return Err(not_found(name));
            }
            return Ok(());
        }
        let view = self.document(name, version.unwrap_or(VersionRef::Latest), version_name).await?;
        let number = view.version.version;
        if number == view.document.default_version {
            return Err(Error::InvalidDocumentOperation(format!(
                "Version {number} is the default version of {name}; make another version the default first"
            )));
        }
        let detail = format!("{{\"version\":{number}}}");
        let event = document_event(actor, "DeleteDocumentVersion", name, &detail, self.now_millis());
        match self.store.delete_document_version(name, number, &event).await? {
            DeleteVersionOutcome::Deleted => Ok(()),
            DeleteVersionOutcome::NoSuchVersion => Err(no_version(name, &number.to_string())),
            DeleteVersionOutcome::IsDefault => Err(Error::InvalidDocumentOperation(format!(
                "Version {number} is the default version of {name}"
            ))),
        }
    }

    /// A page of documents by name matching `filters` (key, any of values), and the token for
    /// the next page.
    pub async fn list_documents(
        &self,
        filters: &[(String, Vec<String>)],
        next_token: Option<&str>,
        max_results: usize,
    ) -> Result<(Vec<DocumentRow>, Option<String>)> {
        let scope = filters_scope(filters);
        let after = next_token.map(|t| self.open_token(&scope, t)).transpose()?;
        let Some(query) = query_of(filters, &self.account.account_id, self.document_arn(""))? else {
            return Ok((Vec::new(), None));
        };
        let mut page = self.store.list_documents(&query, after.as_deref(), max_results as i64 + 1).await?;
        let next = if page.len() > max_results {
            page.truncate(max_results);
            page.last().map(|d| self.seal_token(&scope, &d.name))
        } else {
            None
        };
        Ok((page, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_references_parse() {
        assert_eq!(VersionRef::parse("$LATEST").unwrap(), VersionRef::Latest);
        assert_eq!(VersionRef::parse("$DEFAULT").unwrap(), VersionRef::Default);
        assert_eq!(VersionRef::parse("12").unwrap(), VersionRef::Number(12));
        for bad in ["0", "-1", "x", ""] {
            assert!(matches!(VersionRef::parse(bad), Err(Error::InvalidDocumentVersion(_))), "{bad}");
        }
    }

    #[test]
    fn filters_become_queries() {
        let filters = |pairs: &[(&str, &[&str])]| -> Vec<(String, Vec<String>)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect()
        };
        let query = query_of(&filters(&[("Name", &["a", "b"]), ("Owner", &["Self"])]), "1", String::new())
            .unwrap()
            .unwrap();
        assert_eq!(query.name_prefixes, vec![vec!["a".to_string(), "b".to_string()]]);
        assert!(query_of(&filters(&[("Owner", &["Amazon"])]), "1", String::new()).unwrap().is_none());
        assert!(query_of(&filters(&[("Owner", &["1"])]), "1", String::new()).unwrap().is_some());
        assert!(query_of(&filters(&[("PlatformTypes", &["Linux"])]), "1", String::new()).unwrap().is_none());
        let tagged = query_of(&filters(&[("tag:team", &["ops"])]), "1", "arn:".into()).unwrap().unwrap();
        assert_eq!(tagged.tags, vec![("team".to_string(), vec!["ops".to_string()])]);
        assert!(matches!(
            query_of(&filters(&[("Color", &["x"])]), "1", String::new()),
            Err(Error::InvalidFilterKey(_))
        ));
    }

    #[test]
    fn scopes_differ_by_filter() {
        let a = vec![("Name".to_string(), vec!["ab".to_string()])];
        let b = vec![("Name".to_string(), vec!["a".to_string(), "b".to_string()])];
        assert_ne!(filters_scope(&a), filters_scope(&b));
        assert_eq!(filters_scope(&a), filters_scope(&a.clone()));
        assert!(!filters_scope(&a).contains('\n'));
    }
}
