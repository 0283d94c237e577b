//! Access keys and the principals they stand for. Secrets are sealed before they are stored;
//! SigV4 needs the plain secret to recompute signatures, so keys are encrypted, not hashed.

use rand::distributions::Alphanumeric;
use rand::Rng;
use sluice_store::jobs::JobRow;
use sluice_store::keys::{AccessKeyRow, KeyKind};

use crate::{Engine, Error, Principal, Result};

/// A key the caller may use to sign requests, with its secret in the clear.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// What a facade needs to verify a signature made with a key.
#[derive(Clone)]
pub struct KeyForVerification {
    pub principal: Principal,
    pub secret_access_key: String,
    /// When the key itself stops being valid, if ever.
    pub expires_at: Option<i64>,
    /// SHA-256 (hex) of the session token the request must carry (temporary credentials).
    pub session_token_hash: Option<String>,
}

/// One artifact object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

/// The objects a job's temporary credentials may read and write; nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobScope {
    pub read: Vec<ObjectRef>,
    pub write: Vec<ObjectRef>,
}

impl JobScope {
    fn contains(list: &[ObjectRef], bucket: &str, key: &str) -> bool {
        list.iter().any(|o| o.bucket == bucket && o.key == key)
    }

    pub fn may_read(&self, bucket: &str, key: &str) -> bool {
        Self::contains(&self.read, bucket, key)
    }

    pub fn may_write(&self, bucket: &str, key: &str) -> bool {
        Self::contains(&self.write, bucket, key)
    }

    fn to_value(&self) -> serde_json::Value {
        let list = |objects: &[ObjectRef]| {
            objects.iter().map(|o| serde_json::json!([o.bucket, o.key])).collect::<Vec<_>>()
        };
        serde_json::json!({"read": list(&self.read), "write": list(&self.write)})
    }

    fn from_value(value: &serde_json::Value) -> Option<JobScope> {
        let list = |name: &str| -> Option<Vec<ObjectRef>> {
            value
                .get(name)?
                .as_array()?
                .iter()
                .map(|pair| {
                    Some(ObjectRef {
                        bucket: pair.get(0)?.as_str()?.to_string(),
                        key: pair.get(1)?.as_str()?.to_string(),
                    })
                })
                .collect()
        };
        Some(JobScope { read: list("read")?, write: list("write")? })
    }

    /// The scope of a job key stored before job credentials were derived from their token.
    fn from_json(text: &str) -> Option<JobScope> {
        Self::from_value(&serde_json::from_str(text).ok()?)
    }
}

/// Temporary credentials handed to a job's worker.
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for TemporaryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a job's session token carries, sealed under the master key so that a worker can neither
/// read nor alter it. The credentials are derived from it, so nothing is stored per job: a claim
/// writes no key rows and a finished job needs no revocation (its status ends the grant).
#[derive(Debug, Clone, PartialEq, Eq)]
struct JobGrant {
    access_key_id: String,
    job_id: String,
    nonce: String,
    expires_at: i64,
    scope: JobScope,
}

impl JobGrant {
    fn to_json(&self) -> String {
        serde_json::json!({
            "k": self.access_key_id,
            "j": self.job_id,
            "n": self.nonce,
            "e": self.expires_at,
            "s": self.scope.to_value(),
        })
        .to_string()
    }

    /// Whether the credentials of this grant may be used at `now`: before their expiry, while
    /// their job (of `tenant`) is handed out under the grant's nonce. A job back in the queue,
    /// claimed again (a new nonce) or finished ends every grant made for it.
    fn holds(&self, job: Option<&JobRow>, tenant: &str, now: i64) -> bool {
        self.expires_at > now
            && job.is_some_and(|job| {
                handed_out(job, tenant) && job.nonce.as_deref() == Some(self.nonce.as_str())
            })
    }

    /// The grant a session token carries; None for a token this server did not seal.
    fn open(secrets: &crate::secrets::SecretBox, token: &str) -> Option<JobGrant> {
        let value: serde_json::Value = serde_json::from_str(&secrets.open_token(token)?).ok()?;
        let text = |field: &str| value.get(field)?.as_str().map(str::to_string);
        Some(JobGrant {
            access_key_id: text("k")?,
            job_id: text("j")?,
            nonce: text("n")?,
            expires_at: value.get("e")?.as_i64()?,
            scope: JobScope::from_value(value.get("s")?)?,
        })
    }
}

/// Whether a job of `tenant` is claimed by a worker and not finished.
fn handed_out(job: &JobRow, tenant: &str) -> bool {
    job.status.is_handed_out() && job.tenant == tenant
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// `len` random letters and digits.
pub(crate) fn random_text(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// How long a key looked up from the store is trusted without asking again. Keys cannot be
/// changed today, so this only bounds how long another replica's future revocation could lag.
const KEY_CACHE_MILLIS: i64 = 60_000;

/// Recently verified keys by id, with the time each entry stops being trusted.
#[derive(Default)]
pub struct KeyCache {
    entries: std::sync::RwLock<std::collections::HashMap<String, (KeyForVerification, i64)>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache(..)")
    }
}

impl KeyCache {
    fn get(&self, access_key_id: &str, now: i64) -> Option<KeyForVerification> {
        let entries = self.entries.read().expect("key cache lock");
        let (key, trusted_until) = entries.get(access_key_id)?;
        let key_valid = key.expires_at.is_none_or(|at| at > now);
        (*trusted_until > now && key_valid).then(|| key.clone())
    }

    fn put(&self, access_key_id: &str, key: KeyForVerification, now: i64) {
        let mut entries = self.entries.write().expect("key cache lock");
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(access_key_id.to_string(), (key, now + KEY_CACHE_MILLIS));
    }
}

/// A new random key pair: `AKIA` + 16 upper-case alphanumerics, and a 40-character secret.
pub fn generate_credentials() -> Credentials {
    let mut rng = rand::thread_rng();
    let id: String =
        (0..16).map(|_| rng.sample(Alphanumeric) as char).map(|c| c.to_ascii_uppercase()).collect();
    let secret: String = (0..40).map(|_| rng.sample(Alphanumeric) as char).collect();
    Credentials { access_key_id: format!("AKIA{id}"), secret_access_key: secret }
}

fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

impl Engine {
    /// Stores `credentials` as a root key unless that key id exists. Returns true if stored.
    pub async fn ensure_root_key(&self, credentials: &Credentials) -> Result<bool> {
        if self.store.access_key(&credentials.access_key_id).await?.is_some() {
            return Ok(false);
        }
        let row = self.key_row(credentials, self.account.root_arn(), "root", KeyKind::Root);
        self.store.insert_access_key(&row).await?;
        Ok(true)
    }

    /// Whether any root key exists.
    pub async fn has_root_key(&self) -> Result<bool> {
        Ok(self.store.has_key_of_kind_root().await?)
    }

    /// Creates a key for the IAM-style user `name`. Only the root principal may do this.
    pub async fn create_user_key(&self, caller: &Principal, name: &str) -> Result<Credentials> {
        if !caller.is_root {
            return Err(Error::AccessDenied("Only the root principal may create access keys".into()));
        }
        if !valid_user_name(name) {
            return Err(Error::Validation(format!(
                "Key name {name:?} must be 1 to 64 characters of letters, digits and +=,.@_-"
            )));
        }
        let credentials = generate_credentials();
        let row = self.key_row(&credentials, self.account.user_arn(name), name, KeyKind::User);
        self.store.insert_access_key(&row).await?;
        tracing::info!(access_key_id = %credentials.access_key_id, user = name, "access key created");
        Ok(credentials)
    }

    /// Temporary credentials for the worker of a job claimed under `nonce`: they may read
    /// `scope.read` and write `scope.write` on the artifact endpoint, nothing else, until
    /// `expires_at` and only while the job stays claimed under that nonce (see [`JobGrant`]).
    /// Nothing is stored: the session token carries the grant, sealed.
    pub fn job_credentials(
        &self,
        job_id: &str,
        nonce: &str,
        scope: &JobScope,
        expires_at: i64,
    ) -> TemporaryCredentials {
        let grant = JobGrant {
            access_key_id: format!("ASIA{}", random_text(16).to_ascii_uppercase()),
            job_id: job_id.to_string(),
            nonce: nonce.to_string(),
            expires_at,
            scope: scope.clone(),
        };
        let session_token = self.secrets.seal_token(&grant.to_json());
        TemporaryCredentials {
            secret_access_key: self.job_secret(&session_token),
            access_key_id: grant.access_key_id,
            session_token,
            expires_at,
        }
    }

    /// The secret of a job's credentials: a MAC of its session token, so it need not be stored.
    fn job_secret(&self, session_token: &str) -> String {
        let mut data = b"sluice job secret v1\0".to_vec();
        data.extend_from_slice(session_token.as_bytes());
        hex::encode(&self.secrets.token_mac(&data)[..20])
    }

    /// The principal and plain secret of a key, if it exists and has not expired. Job
    /// credentials are checked against their job every time, so they end with it.
    pub async fn key_for_verification(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
    ) -> Result<Option<KeyForVerification>> {
        let grant = session_token.and_then(|token| Some((JobGrant::open(&self.secrets, token)?, token)));
        if let Some((grant, token)) = grant {
            if grant.access_key_id != access_key_id {
                return Ok(None);
            }
            return self.granted_key(grant, token).await;
        }
        let now = self.now_millis();
        if let Some(key) = self.key_cache.get(access_key_id, now) {
            return Ok(Some(key));
        }
        let Some(row) = self.store.access_key(access_key_id).await? else {
            return Ok(None);
        };
        if row.expires_at.is_some_and(|at| at <= now) {
            return Ok(None);
        }
        if row.kind == KeyKind::Job && !self.stored_job_key_holds(row.job_id.as_deref()).await? {
            return Ok(None);
        }
        let secret = self
            .secrets
            .open(&row.secret_enc)
            .and_then(|plain| String::from_utf8(plain).ok())
            .ok_or_else(|| Error::Internal(format!("key {access_key_id} cannot be decrypted")))?;
        let scope = match (row.kind, row.scope.as_deref()) {
            (KeyKind::Job, Some(text)) => Some(std::sync::Arc::new(
                JobScope::from_json(text)
                    .ok_or_else(|| Error::Internal(format!("scope of key {access_key_id}")))?,
            )),
            (KeyKind::Job, None) => {
                return Err(Error::Internal(format!("job key {access_key_id} has no scope")))
            }
            _ => None,
        };
        let key = KeyForVerification {
            principal: Principal { arn: row.principal_arn, is_root: row.kind == KeyKind::Root, scope },
            secret_access_key: secret,
            expires_at: row.expires_at,
            session_token_hash: row.session_token_hash,
        };
        if row.kind != KeyKind::Job {
            self.key_cache.put(access_key_id, key.clone(), now);
        }
        Ok(Some(key))
    }

    /// The key a job grant stands for, while the grant holds ([`JobGrant::holds`]).
    async fn granted_key(&self, grant: JobGrant, session_token: &str) -> Result<Option<KeyForVerification>> {
        let job = self.store.job(&grant.job_id).await?;
        if !grant.holds(job.as_ref(), &self.account.account_id, self.now_millis()) {
            return Ok(None);
        }
        Ok(Some(KeyForVerification {
            principal: Principal {
                arn: self.job_principal_arn(&grant.job_id),
                is_root: false,
                scope: Some(std::sync::Arc::new(grant.scope)),
            },
            secret_access_key: self.job_secret(session_token),
            expires_at: Some(grant.expires_at),
            session_token_hash: Some(sha256_hex(session_token)),
        }))
    }

    /// Whether the job a stored job key was minted for is still handed out.
    async fn stored_job_key_holds(&self, job_id: Option<&str>) -> Result<bool> {
        let Some(job) = self.store.job(job_id.unwrap_or_default()).await? else { return Ok(false) };
        Ok(handed_out(&job, &self.account.account_id))
    }

    fn job_principal_arn(&self, job_id: &str) -> String {
        format!("arn:aws:sts::{}:assumed-role/sluice-job/{job_id}", self.account.account_id)
    }

    fn key_row(&self, credentials: &Credentials, arn: String, name: &str, kind: KeyKind) -> AccessKeyRow {
        AccessKeyRow {
            access_key_id: credentials.access_key_id.clone(),
            secret_enc: self.secrets.seal(credentials.secret_access_key.as_bytes()),
            principal_arn: arn,
            name: name.to_string(),
            kind,
            expires_at: None,
            created_at: self.now_millis(),
            session_token_hash: None,
            job_id: None,
            scope: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_core::job::JobStatus;

    use super::*;

    #[test]
    fn generated_credentials_have_aws_shape() {
        let a = generate_credentials();
        let b = generate_credentials();
        assert_ne!(a, b);
        assert_eq!(a.access_key_id.len(), 20);
        assert!(a.access_key_id.starts_with("AKIA"));
        assert!(a.access_key_id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert_eq!(a.secret_access_key.len(), 40);
        assert!(!format!("{a:?}").contains(&a.secret_access_key));
    }

    #[test]
    fn job_scopes_round_trip_and_match_exactly() {
        let object = |bucket: &str, key: &str| ObjectRef { bucket: bucket.into(), key: key.into() };
        let scope =
            JobScope { read: vec![object("b", "in/a.zip")], write: vec![object("b", "out/\"x\".zip")] };
        assert_eq!(JobScope::from_value(&scope.to_value()), Some(scope.clone()));
        assert!(scope.may_read("b", "in/a.zip"));
        assert!(!scope.may_read("b", "in/a.zip2") && !scope.may_read("c", "in/a.zip"));
        assert!(!scope.may_write("b", "in/a.zip"));
        assert!(scope.may_write("b", "out/\"x\".zip"));
        assert_eq!(JobScope::from_json("{\"read\":[1]}"), None);
        assert_eq!(
            JobScope::from_json("{\"read\":[[\"b\",\"k\"]],\"write\":[]}"),
            Some(JobScope { read: vec![object("b", "k")], write: vec![] })
        );
    }

    #[test]
    fn job_grants_open_only_under_their_own_key() {
        let secrets = crate::secrets::SecretBox::new(&crate::secrets::SecretBox::generate_key());
        let grant = JobGrant {
            access_key_id: "ASIAEXAMPLE".into(),
            job_id: "job-1".into(),
            nonce: "n-1".into(),
            expires_at: 42,
            scope: JobScope {
                read: vec![],
                write: vec![ObjectRef { bucket: "b".into(), key: "out/x".into() }],
            },
        };
        let token = secrets.seal_token(&grant.to_json());
        assert_eq!(JobGrant::open(&secrets, &token), Some(grant.clone()));
        let other = crate::secrets::SecretBox::new(&crate::secrets::SecretBox::generate_key());
        assert_eq!(JobGrant::open(&other, &token), None, "sealed under another master key");
        assert_eq!(JobGrant::open(&secrets, "not-a-token"), None);
        assert_eq!(JobGrant::open(&secrets, &secrets.seal_token("{\"k\":\"ASIA\"}")), None, "incomplete");
    }

    #[test]
    fn a_grant_holds_while_its_job_is_handed_out_under_its_nonce() {
        let grant = JobGrant {
            access_key_id: "ASIAEXAMPLE".into(),
            job_id: "job-1".into(),
            nonce: "n-1".into(),
            expires_at: 1_000,
            scope: JobScope::default(),
        };
        let job = |status: JobStatus, nonce: Option<&str>, tenant: &str| JobRow {
            id: "job-1".into(),
            queue_key: "q".into(),
            tenant: tenant.into(),
            status,
            nonce: nonce.map(str::to_string),
            lease_until: None,
            attempt: 1,
            continuation_token: None,
            data: "{}".into(),
            execution_id: None,
            step_id: None,
            error: None,
            created_at: 0,
            updated_at: 0,
        };
        let holds = |row: JobRow, now: i64| grant.holds(Some(&row), "111", now);
        assert!(holds(job(JobStatus::Dispatched, Some("n-1"), "111"), 999));
        assert!(holds(job(JobStatus::InProgress, Some("n-1"), "111"), 999));
        assert!(!holds(job(JobStatus::InProgress, Some("n-1"), "111"), 1_000), "expired");
        assert!(!holds(job(JobStatus::Dispatched, Some("n-2"), "111"), 999), "claimed again");
        assert!(!holds(job(JobStatus::Queued, None, "111"), 999), "back in the queue");
        assert!(!holds(job(JobStatus::Succeeded, Some("n-1"), "111"), 999), "finished");
        assert!(!holds(job(JobStatus::Failed, Some("n-1"), "111"), 999), "abandoned");
        assert!(!holds(job(JobStatus::InProgress, Some("n-1"), "222"), 999), "another account's job");
        assert!(!grant.holds(None, "111", 999), "no such job");
    }

    #[test]
    fn user_names_follow_iam_rules() {
        assert!(valid_user_name("ci-bot@team.example"));
        assert!(!valid_user_name(""));
        assert!(!valid_user_name("has space"));
        assert!(!valid_user_name(&"x".repeat(65)));
    }
}
