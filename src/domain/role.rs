use serde::{Deserialize, Serialize};

/// What a token may do. `admin` ⊇ `reviewer` ⊇ `annotator`; `service` is apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Reviewer,
    Annotator,
    Service,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "reviewer" => Ok(Role::Reviewer),
            "annotator" => Ok(Role::Annotator),
            "service" => Ok(Role::Service),
            other => Err(format!(
                "role must be one of admin, reviewer, annotator, service (got {other:?})"
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reviewer => "reviewer",
            Role::Annotator => "annotator",
            Role::Service => "service",
        }
    }
    /// True when a token of this role may act as `needed`.
    pub fn allows(self, needed: Role) -> bool {
        matches!(
            (self, needed),
            (Role::Admin, _)
                | (Role::Reviewer, Role::Reviewer | Role::Annotator)
                | (Role::Annotator, Role::Annotator)
                | (Role::Service, Role::Service)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn hierarchy() {
        assert!(Role::Admin.allows(Role::Service));
        assert!(Role::Reviewer.allows(Role::Annotator));
        assert!(!Role::Annotator.allows(Role::Reviewer));
        assert!(!Role::Service.allows(Role::Annotator));
        assert!(!Role::Annotator.allows(Role::Service));
        assert!(Role::parse("root").is_err());
    }
}
