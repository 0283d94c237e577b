//! Sluice's domain: action types, pipeline structure and its validation rules, job lifecycle
//! names, Automation runbooks ([`automation`]) and the injectable [`clock::Clock`]. Nothing here
//! does IO.

pub mod action_type;
pub mod automation;
pub mod clock;
pub mod job;
pub mod pipeline;
pub mod query;

/// The account and region the AWS facades present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountContext {
    pub account_id: String,
    pub region: String,
}

impl AccountContext {
    /// `arn:aws:iam::<account>:root`.
    pub fn root_arn(&self) -> String {
        format!("arn:aws:iam::{}:root", self.account_id)
    }

    /// `arn:aws:iam::<account>:user/<name>`.
    pub fn user_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:user/{}", self.account_id, name)
    }

    /// `arn:aws:codepipeline:<region>:<account>:<pipeline>`.
    pub fn pipeline_arn(&self, pipeline: &str) -> String {
        format!("arn:aws:codepipeline:{}:{}:{}", self.region, self.account_id, pipeline)
    }

    /// `arn:aws:codepipeline:<region>:<account>:actiontype:<owner>/<category>/<provider>/<version>`.
    pub fn action_type_arn(&self, id: &action_type::ActionTypeId) -> String {
        format!(
            "arn:aws:codepipeline:{}:{}:actiontype:{}/{}/{}/{}",
            self.region, self.account_id, id.owner, id.category, id.provider, id.version
        )
    }
}
