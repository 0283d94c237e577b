//! AWS Systems Manager Automation runbooks, without IO: the document model and its creation rules
//! ([`document`]), runtime parameters ([`parameters`]), `{{ }}` substitution ([`template`]),
//! `aws:branch` choices ([`branch`]), `aws:sleep` times ([`duration`]) and output selectors
//! ([`selector`]).

/// A fieldless enum whose variants have fixed wire names, with `ALL`, `name`, `from_name` and
/// `Display`.
macro_rules! named_enum {
    ($(#[$meta:meta])* pub enum $enum:ident { $($variant:ident = $name:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $enum { $($variant,)+ }

        impl $enum {
            pub const ALL: &'static [$enum] = &[$($enum::$variant,)+];

            pub fn name(self) -> &'static str {
                match self { $($enum::$variant => $name,)+ }
            }

            pub fn from_name(name: &str) -> Option<$enum> {
                $enum::ALL.iter().copied().find(|variant| variant.name() == name)
            }
        }

        impl std::fmt::Display for $enum {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub mod branch;
pub mod document;
pub mod duration;
pub mod parameters;
pub mod selector;
pub mod template;
