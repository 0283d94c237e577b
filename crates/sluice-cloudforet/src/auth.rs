//! Cloudforet tokens: JWTs (HS256) signed with a key derived from Sluice's master key, carrying
//! `did` (domain), `wid` (workspace), `rol` (role) and `exp`. A request's domain and workspace
//! come only from its token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::error::{CfError, Result};

/// A Cloudforet role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    DomainAdmin,
    WorkspaceOwner,
    WorkspaceMember,
    SystemToken,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "DOMAIN_ADMIN" => Role::DomainAdmin,
            "WORKSPACE_OWNER" => Role::WorkspaceOwner,
            "WORKSPACE_MEMBER" => Role::WorkspaceMember,
            "SYSTEM_TOKEN" => Role::SystemToken,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::DomainAdmin => "DOMAIN_ADMIN",
            Role::WorkspaceOwner => "WORKSPACE_OWNER",
            Role::WorkspaceMember => "WORKSPACE_MEMBER",
            Role::SystemToken => "SYSTEM_TOKEN",
        }
    }

    /// Workspace roles act inside one workspace.
    pub fn is_workspace(self) -> bool {
        matches!(self, Role::WorkspaceOwner | Role::WorkspaceMember)
    }
}

/// Who is calling, from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub domain_id: String,
    pub workspace_id: Option<String>,
    pub role: Role,
}

impl Caller {
    /// Refuses the call unless the caller has one of `roles` (a system token may do anything a
    /// domain admin may).
    pub fn require(&self, roles: &[Role]) -> Result<()> {
        let role = if self.role == Role::SystemToken { Role::DomainAdmin } else { self.role };
        if roles.contains(&role) {
            Ok(())
        } else {
            Err(CfError::permission_denied())
        }
    }

    /// The workspace a workspace role is bound to (None for domain roles).
    pub fn own_workspace(&self) -> Option<&str> {
        if self.role.is_workspace() {
            self.workspace_id.as_deref()
        } else {
            None
        }
    }

    pub fn actor(&self) -> String {
        format!("cloudforet:{}:{}", self.domain_id, self.role.as_str())
    }
}

/// Signs and checks tokens with a MAC function (the engine's token key).
pub struct Tokens<'a> {
    pub mac: &'a dyn Fn(&[u8]) -> [u8; 32],
}

impl Tokens<'_> {
    /// A token for `caller`, valid until `expires_at` (epoch seconds).
    pub fn mint(&self, caller: &Caller, issued_at: i64, expires_at: i64) -> String {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string());
        let mut claims = json!({
            "iss": "sluice", "typ": "ACCESS_TOKEN", "ver": "2.0",
            "did": caller.domain_id, "rol": caller.role.as_str(),
            "iat": issued_at, "exp": expires_at,
        });
        if let Some(workspace) = &caller.workspace_id {
            claims["wid"] = json!(workspace);
        }
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let signature = URL_SAFE_NO_PAD.encode((self.mac)(signed.as_bytes()));
        format!("{signed}.{signature}")
    }

    /// The caller of a token that this server signed and that has not expired at `now` (epoch
    /// seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Caller> {
        let mut parts = token.trim().split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CfError::authentication("token format is invalid"));
        };
        let expected = (self.mac)(format!("{header}.{payload}").as_bytes());
        let given = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
        if !bool::from(given.ct_eq(&expected)) {
            return Err(CfError::authentication("token signature is invalid"));
        }
        let claims: Value = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| CfError::authentication("token claims are invalid"))?;
        if claims.get("exp").and_then(Value::as_i64).is_none_or(|exp| exp <= now) {
            return Err(CfError::authentication("token is expired"));
        }
        caller_from(&claims)
    }
}

fn caller_from(claims: &Value) -> Result<Caller> {
    let text = |key: &str| claims.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    let role = text("rol").and_then(Role::parse).ok_or_else(|| CfError::authentication("role is invalid"))?;
    let domain_id = text("did").ok_or_else(|| CfError::authentication("domain is missing"))?.to_string();
    let workspace_id = text("wid").map(str::to_string);
    if role.is_workspace() && workspace_id.is_none() {
        return Err(CfError::authentication("a workspace role needs a workspace"));
    }
    Ok(Caller { domain_id, workspace_id, role })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in data.iter().enumerate() {
            out[i % 32] ^= b.wrapping_mul(31).wrapping_add(i as u8);
        }
        out
    }

    fn other_mac(data: &[u8]) -> [u8; 32] {
        let mut out = mac(data);
        out[0] ^= 1;
        out
    }

    fn member() -> Caller {
        Caller {
            domain_id: "domain-a".into(),
            workspace_id: Some("ws-1".into()),
            role: Role::WorkspaceMember,
        }
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let tokens = Tokens { mac: &mac };
        let token = tokens.mint(&member(), 100, 200);
        assert_eq!(tokens.verify(&token, 199).unwrap(), member());
        assert_eq!(tokens.verify(&token, 200).unwrap_err().code, "ERROR_AUTHENTICATE_FAILURE");
    }

    #[test]
    fn another_key_or_a_changed_claim_is_refused() {
        let token = Tokens { mac: &mac }.mint(&member(), 100, 200);
        assert!(Tokens { mac: &other_mac }.verify(&token, 150).is_err());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"did":"domain-b","rol":"DOMAIN_ADMIN","exp":999}"#);
        let forged = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert!(Tokens { mac: &mac }.verify(&forged, 150).is_err());
        assert!(Tokens { mac: &mac }.verify("not-a-token", 150).is_err());
    }

    #[test]
    fn roles_gate_calls() {
        let caller = member();
        assert!(caller.require(&[Role::DomainAdmin, Role::WorkspaceOwner]).is_err());
        assert!(caller.require(&[Role::WorkspaceMember]).is_ok());
        let system = Caller { role: Role::SystemToken, workspace_id: None, ..member() };
        assert!(system.require(&[Role::DomainAdmin]).is_ok());
    }
}
