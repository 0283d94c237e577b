//! Action types: custom, third-party and the built-in AWS ones, with their declared
//! configuration properties and artifact bounds.

use std::fmt;
use std::str::FromStr;

/// ActionCategory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Source,
    Build,
    Deploy,
    Test,
    Invoke,
    Approval,
    Compute,
}

/// ActionOwner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    Aws,
    ThirdParty,
    Custom,
}

macro_rules! wire_enum {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($ty))),
                }
            }
        }
    };
}

wire_enum!(Category {
    Source => "Source",
    Build => "Build",
    Deploy => "Deploy",
    Test => "Test",
    Invoke => "Invoke",
    Approval => "Approval",
    Compute => "Compute",
});

wire_enum!(Owner {
    Aws => "AWS",
    ThirdParty => "ThirdParty",
    Custom => "Custom",
});

/// `category/owner/provider/version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionTypeId {
    pub category: Category,
    pub owner: Owner,
    pub provider: String,
    pub version: String,
}

impl fmt::Display for ActionTypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}/{}", self.category, self.owner, self.provider, self.version)
    }
}

/// Minimum and maximum number of artifacts an action of a type takes or makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactBounds {
    pub min: u32,
    pub max: u32,
}

impl ArtifactBounds {
    pub fn contains(self, count: usize) -> bool {
        (self.min as usize..=self.max as usize).contains(&count)
    }
}

/// ActionConfigurationPropertyType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyKind {
    String,
    Number,
    Boolean,
}

wire_enum!(PropertyKind {
    String => "String",
    Number => "Number",
    Boolean => "Boolean",
});

/// One declared configuration property of an action type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProperty {
    pub name: String,
    pub required: bool,
    pub key: bool,
    pub secret: bool,
    pub queryable: bool,
    pub description: Option<String>,
    pub kind: Option<PropertyKind>,
}

/// URLs a console shows for an action type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionTypeSettings {
    pub third_party_configuration_url: Option<String>,
    pub entity_url_template: Option<String>,
    pub execution_url_template: Option<String>,
    pub revision_url_template: Option<String>,
}

/// An action type as the engine knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionType {
    pub id: ActionTypeId,
    pub settings: ActionTypeSettings,
    pub properties: Vec<ConfigProperty>,
    pub input: ArtifactBounds,
    pub output: ArtifactBounds,
}

/// The most configuration properties one action type may declare.
pub const MAX_PROPERTIES: usize = 10;
/// The longest value a queryable property may hold in an action's configuration.
pub const MAX_QUERYABLE_VALUE_LEN: usize = 20;

impl ActionType {
    /// The property workers filter on with `queryParam`, if the type declares one.
    pub fn queryable_property(&self) -> Option<&ConfigProperty> {
        self.properties.iter().find(|p| p.queryable)
    }

    /// Checks the rules AWS applies to a custom or third-party action type declaration.
    pub fn check_declaration(&self) -> Result<(), String> {
        for (name, bounds) in [("input", self.input), ("output", self.output)] {
            if bounds.min > bounds.max {
                return Err(format!(
                    "{name}ArtifactDetails.minimumCount {} is greater than maximumCount {}",
                    bounds.min, bounds.max
                ));
            }
        }
        if self.properties.len() > MAX_PROPERTIES {
            return Err(format!("at most {MAX_PROPERTIES} configuration properties are allowed"));
        }
        let mut seen = std::collections::HashSet::new();
        for property in &self.properties {
            if !seen.insert(property.name.as_str()) {
                return Err(format!("configuration property {:?} is declared twice", property.name));
            }
            if property.queryable && (!property.required || property.secret) {
                return Err(format!(
                    "queryable configuration property {:?} must be required and not secret",
                    property.name
                ));
            }
        }
        if self.properties.iter().filter(|p| p.queryable).count() > 1 {
            return Err("only one configuration property may be queryable".into());
        }
        Ok(())
    }
}

fn builtin_property(name: &str, required: bool, key: bool) -> ConfigProperty {
    ConfigProperty {
        name: name.to_string(),
        required,
        key,
        secret: false,
        queryable: false,
        description: None,
        kind: Some(PropertyKind::String),
    }
}

/// The AWS-owned action types Sluice runs itself.
pub fn builtin_action_types() -> Vec<ActionType> {
    let none = ArtifactBounds { min: 0, max: 0 };
    vec![
        ActionType {
            id: ActionTypeId {
                category: Category::Approval,
                owner: Owner::Aws,
                provider: "Manual".into(),
                version: "1".into(),
            },
            settings: ActionTypeSettings::default(),
            properties: vec![
                builtin_property("NotificationArn", false, false),
                builtin_property("ExternalEntityLink", false, false),
                builtin_property("CustomData", false, false),
            ],
            input: none,
            output: none,
        },
        ActionType {
            id: ActionTypeId {
                category: Category::Source,
                owner: Owner::Aws,
                provider: "S3".into(),
                version: "1".into(),
            },
            settings: ActionTypeSettings::default(),
            properties: vec![
                builtin_property("S3Bucket", true, true),
                builtin_property("S3ObjectKey", true, true),
                builtin_property("PollForSourceChanges", false, false),
                builtin_property("AllowOverrideForS3ObjectKey", false, false),
            ],
            input: none,
            output: ArtifactBounds { min: 1, max: 1 },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(properties: Vec<ConfigProperty>) -> ActionType {
        ActionType {
            id: ActionTypeId {
                category: Category::Build,
                owner: Owner::Custom,
                provider: "Make".into(),
                version: "1".into(),
            },
            settings: ActionTypeSettings::default(),
            properties,
            input: ArtifactBounds { min: 0, max: 1 },
            output: ArtifactBounds { min: 0, max: 1 },
        }
    }

    fn prop(name: &str, required: bool, secret: bool, queryable: bool) -> ConfigProperty {
        ConfigProperty {
            name: name.into(),
            required,
            key: false,
            secret,
            queryable,
            description: None,
            kind: None,
        }
    }

    #[test]
    fn enums_round_trip_their_wire_names() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>(), Ok(*c));
        }
        assert_eq!("AWS".parse::<Owner>(), Ok(Owner::Aws));
        assert!("aws".parse::<Owner>().is_err());
    }

    #[test]
    fn declaration_rules() {
        assert!(custom(vec![prop("A", true, false, true)]).check_declaration().is_ok());
        let err = custom(vec![prop("A", false, false, true)]).check_declaration().unwrap_err();
        assert!(err.contains("must be required"), "{err}");
        let err = custom(vec![prop("A", true, true, true)]).check_declaration().unwrap_err();
        assert!(err.contains("not secret"), "{err}");
        let err = custom(vec![prop("A", true, false, true), prop("B", true, false, true)])
            .check_declaration()
            .unwrap_err();
        assert!(err.contains("only one"), "{err}");
        let err = custom(vec![prop("A", true, false, false), prop("A", false, false, false)])
            .check_declaration()
            .unwrap_err();
        assert!(err.contains("twice"), "{err}");
        let mut bad_bounds = custom(vec![]);
        bad_bounds.input = ArtifactBounds { min: 3, max: 1 };
        assert!(bad_bounds.check_declaration().unwrap_err().contains("minimumCount"));
    }

    #[test]
    fn builtins_include_manual_approval_and_s3_source() {
        let ids: Vec<String> = builtin_action_types().iter().map(|t| t.id.to_string()).collect();
        assert_eq!(ids, ["Approval/AWS/Manual/1", "Source/AWS/S3/1"]);
    }
}
