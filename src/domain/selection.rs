//! How an item reached the person who labelled it. Every label records it
//! (`labels.selection`), so estimates of the model's quality know which
//! labels are a uniform sample of the pool and which active learning chose.
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// The diverse head handed out before any model exists.
    ColdStart,
    /// Drawn uniformly from the unlabelled pool (the random share of
    /// `auto`, the `random` strategy): the unbiased stream.
    Random,
    /// Chosen by the model as informative (uncertain, diverse).
    Active,
    /// The import's placeholder order, before any ranking reached the item.
    Unranked,
    /// A routed prediction handed to a reviewer.
    Review,
    /// A blind audit of an auto-accepted prediction.
    Audit,
    /// A gold item (known answer) in a review slot.
    Gold,
    /// Labelled in the import file.
    Import,
    /// Labelled without a lease of the queue (picked by hand, or corrected).
    Browse,
}

impl Selection {
    pub const ALL: [Selection; 9] = [
        Selection::ColdStart,
        Selection::Random,
        Selection::Active,
        Selection::Unranked,
        Selection::Review,
        Selection::Audit,
        Selection::Gold,
        Selection::Import,
        Selection::Browse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Selection::ColdStart => "cold_start",
            Selection::Random => "random",
            Selection::Active => "active",
            Selection::Unranked => "unranked",
            Selection::Review => "review",
            Selection::Audit => "audit",
            Selection::Gold => "gold",
            Selection::Import => "import",
            Selection::Browse => "browse",
        }
    }

    pub fn parse(s: &str) -> Option<Selection> {
        Selection::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// A uniform draw from the pool at the time of the pick.
    pub fn is_uniform(self) -> bool {
        self == Selection::Random
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Selection::ALL {
            assert_eq!(Selection::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(Selection::parse("Random"), None);
        assert!(Selection::Random.is_uniform() && !Selection::Active.is_uniform());
    }
}
