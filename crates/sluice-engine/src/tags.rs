//! Tags on pipelines and action types, with AWS's limits.

use crate::{Engine, Error, Result};

/// The most tags one resource may carry.
pub const MAX_TAGS: usize = 50;

/// Checks tags against AWS's rules: no `aws:` prefix, no duplicate keys, at most [`MAX_TAGS`].
pub fn check(tags: &[(String, String)]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::TooManyTags(format!("A resource can have at most {MAX_TAGS} tags")));
    }
    let mut seen = std::collections::HashSet::new();
    for (key, _) in tags {
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(Error::InvalidTags(format!("Tag key {key:?} uses the reserved prefix aws:")));
        }
        if !seen.insert(key.as_str()) {
            return Err(Error::InvalidTags(format!("Tag key {key:?} is given more than once")));
        }
    }
    Ok(())
}

/// A resource that can carry tags, as named by its ARN.
enum Taggable {
    Pipeline(String),
    ActionType,
}

impl Engine {
    fn parse_resource_arn(&self, arn: &str) -> Option<Taggable> {
        let prefix = format!("arn:aws:codepipeline:{}:{}:", self.account.region, self.account.account_id);
        let rest = arn.strip_prefix(&prefix)?;
        if rest.starts_with("actiontype:") {
            return Some(Taggable::ActionType);
        }
        Some(Taggable::Pipeline(rest.to_string()))
    }

    async fn check_resource_exists(&self, arn: &str) -> Result<()> {
        let missing = || Error::ResourceNotFound(format!("The resource {arn} was not found"));
        let exists = match self.parse_resource_arn(arn).ok_or_else(missing)? {
            Taggable::Pipeline(name) => self.store.pipeline_meta(&name).await?.is_some(),
            Taggable::ActionType => self.action_type_by_arn(arn).await?,
        };
        if exists {
            Ok(())
        } else {
            Err(missing())
        }
    }

    async fn action_type_by_arn(&self, arn: &str) -> Result<bool> {
        for action_type in self.list_action_types(None).await? {
            if self.account.action_type_arn(&action_type.id) == arn {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub async fn tag_resource(&self, arn: &str, tags: Vec<(String, String)>) -> Result<()> {
        check(&tags)?;
        self.check_resource_exists(arn).await?;
        if !self.store.tag_resource(arn, &tags, MAX_TAGS).await? {
            return Err(Error::TooManyTags(format!("A resource can have at most {MAX_TAGS} tags")));
        }
        Ok(())
    }

    pub async fn untag_resource(&self, arn: &str, keys: Vec<String>) -> Result<()> {
        self.check_resource_exists(arn).await?;
        self.store.untag_resource(arn, &keys).await?;
        Ok(())
    }

    /// A page of tags and the token for the next page.
    pub async fn list_tags(
        &self,
        arn: &str,
        next_token: Option<&str>,
        max_results: usize,
    ) -> Result<(Vec<(String, String)>, Option<String>)> {
        self.check_resource_exists(arn).await?;
        let scope = format!("tags:{arn}");
        let after = next_token.map(|t| self.open_token(&scope, t)).transpose()?;
        let mut page = self.store.list_tags(arn, after.as_deref(), max_results as i64 + 1).await?;
        let next = if page.len() > max_results {
            page.truncate(max_results);
            page.last().map(|(key, _)| self.seal_token(&scope, key))
        } else {
            None
        };
        Ok((page, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(keys: &[&str]) -> Vec<(String, String)> {
        keys.iter().map(|k| (k.to_string(), "v".to_string())).collect()
    }

    #[test]
    fn tag_rules() {
        assert!(check(&tags(&["team", "env"])).is_ok());
        assert!(matches!(check(&tags(&["aws:owner"])), Err(Error::InvalidTags(_))));
        assert!(matches!(check(&tags(&["a", "a"])), Err(Error::InvalidTags(_))));
        let many: Vec<String> = (0..51).map(|i| format!("k{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(matches!(check(&tags(&many)), Err(Error::TooManyTags(_))));
    }
}
