use super::spec::ProjectSpec;
use serde::{Deserialize, Serialize};

/// A project name: trimmed, 1–200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > 200 {
            return Err("name must be 1–200 characters".into());
        }
        Ok(ProjectName(t.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The label set of a project: 2–1000 distinct, non-empty names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSet(Vec<String>);

impl LabelSet {
    pub fn parse(labels: &[String]) -> Result<Self, String> {
        if labels.len() < 2 || labels.len() > 1000 {
            return Err("labels must list 2–1000 label names".into());
        }
        let mut seen = std::collections::HashSet::new();
        for l in labels {
            if l.trim().is_empty() || l.chars().count() > 100 {
                return Err("labels: each label must be 1–100 characters".into());
            }
            if l.trim() != l {
                return Err(format!("labels: {l:?} has surrounding whitespace"));
            }
            if !seen.insert(l.as_str()) {
                return Err(format!("labels: {l:?} appears twice"));
            }
        }
        Ok(LabelSet(labels.to_vec()))
    }
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
    pub fn index_of(&self, label: &str) -> Option<usize> {
        self.0.iter().position(|l| l == label)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How the queue orders unlabeled items once a model exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The default: diverse uncertain batches (BADGE) with a random share.
    Auto,
    Entropy,
    Margin,
    LeastConfidence,
    Random,
}

impl Strategy {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Strategy::Auto),
            "entropy" => Ok(Strategy::Entropy),
            "margin" => Ok(Strategy::Margin),
            "least_confidence" => Ok(Strategy::LeastConfidence),
            "random" => Ok(Strategy::Random),
            other => Err(format!(
                "strategy must be one of auto, entropy, margin, least_confidence, random (got {other:?})"
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Auto => "auto",
            Strategy::Entropy => "entropy",
            Strategy::Margin => "margin",
            Strategy::LeastConfidence => "least_confidence",
            Strategy::Random => "random",
        }
    }
    pub fn to_learner(self) -> crate::learner::Strategy {
        match self {
            Strategy::Auto => crate::learner::Strategy::Auto,
            Strategy::Entropy => crate::learner::Strategy::Entropy,
            Strategy::Margin => crate::learner::Strategy::Margin,
            Strategy::LeastConfidence => crate::learner::Strategy::LeastConfidence,
            Strategy::Random => crate::learner::Strategy::Random,
        }
    }
}

/// A six-field cron expression (seconds first) that tokio-cron-scheduler accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron(String);

impl Cron {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.split_whitespace().count() != 6 {
            return Err(format!(
                "retrain_cron must have six fields, seconds first (got {t:?})"
            ));
        }
        // The scheduler's own parser is the judge, so a cron accepted here never
        // fails later when the job is registered.
        tokio_cron_scheduler::Job::new_async(t, |_, _| Box::pin(async {}))
            .map_err(|e| format!("retrain_cron {t:?} is not a valid cron expression: {e}"))?;
        Ok(Cron(t.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Routing thresholds: `auto` ≥ `review`, both in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    pub auto: f64,
    pub review: f64,
}

impl Thresholds {
    pub fn parse(auto: f64, review: f64) -> Result<Self, String> {
        for (name, v) in [
            ("routing.auto_threshold", auto),
            ("routing.review_threshold", review),
        ] {
            if !v.is_finite() || !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be a number in [0, 1]"));
            }
        }
        if review > auto {
            return Err("routing.review_threshold must not exceed routing.auto_threshold".into());
        }
        Ok(Thresholds { auto, review })
    }

    /// The route of a prediction with this confidence.
    pub fn route(&self, confidence: f64) -> Route {
        // An auto threshold of 1 accepts nothing automatically.
        if self.auto < 1.0 && confidence >= self.auto {
            Route::Auto
        } else if confidence >= self.review {
            Route::Review
        } else {
            Route::Escalate
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Auto,
    Review,
    Escalate,
}

impl Route {
    /// Every route, in the order of their counts (`route as usize`).
    pub const ALL: [Route; 3] = [Route::Auto, Route::Review, Route::Escalate];

    pub fn as_str(self) -> &'static str {
        match self {
            Route::Auto => "auto",
            Route::Review => "review",
            Route::Escalate => "escalate",
        }
    }
}

pub fn parse_target_precision(v: Option<f64>) -> Result<Option<f64>, String> {
    match v {
        Some(p) if !p.is_finite() || p <= 0.0 || p >= 1.0 => {
            Err("routing.target_precision must be in (0, 1) or null".into())
        }
        other => Ok(other),
    }
}

pub fn parse_min_new_labels(v: i64) -> Result<i32, String> {
    if !(1..=1_000_000).contains(&v) {
        return Err("min_new_labels must be between 1 and 1000000".into());
    }
    Ok(v as i32)
}

pub fn parse_lease_seconds(v: i64) -> Result<i32, String> {
    if !(1..=86_400).contains(&v) {
        return Err("lease_seconds must be between 1 and 86400".into());
    }
    Ok(v as i32)
}

/// An item's place in the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Unlabeled,
    Labeled,
    Review,
}

impl ItemStatus {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "unlabeled" => Ok(ItemStatus::Unlabeled),
            "labeled" => Ok(ItemStatus::Labeled),
            "review" => Ok(ItemStatus::Review),
            other => Err(format!(
                "status must be one of unlabeled, labeled, review (got {other:?})"
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Unlabeled => "unlabeled",
            ItemStatus::Labeled => "labeled",
            ItemStatus::Review => "review",
        }
    }
}

impl ProjectSpec {
    /// The stored settings of a project, read back into checked form.
    pub fn from_row(p: &crate::db::projects::Project) -> Result<ProjectSpec, String> {
        let labels: Vec<String> =
            serde_json::from_value(p.labels.clone()).map_err(|e| format!("labels: {e}"))?;
        Ok(ProjectSpec {
            name: ProjectName::parse(&p.name)?,
            labels: LabelSet::parse(&labels)?,
            strategy: Strategy::parse(&p.strategy)?,
            retrain_cron: p.retrain_cron.as_deref().map(Cron::parse).transpose()?,
            min_new_labels: p.min_new_labels,
            thresholds: Thresholds::parse(p.auto_threshold, p.review_threshold)?,
            target_precision: p.target_precision,
            lease_seconds: p.lease_seconds,
            rules: match &p.rules {
                Some(v) => super::parse_rules(v)?,
                None => vec![],
            },
            audit_share: p.audit_share,
            blind_share: p.blind_share,
            gold_share: p.gold_share,
            labels_per_item: p.labels_per_item,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_rules() {
        let l = |v: &[&str]| LabelSet::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(l(&["a", "b"]).is_ok());
        assert!(l(&["a"]).is_err());
        assert!(l(&["a", "a"]).is_err());
        assert!(l(&["a", ""]).is_err());
        assert!(l(&["a", " b"]).is_err());
    }

    #[test]
    fn cron_rules() {
        assert!(Cron::parse("*/2 * * * * *").is_ok());
        assert!(Cron::parse("0 */5 * * * *").is_ok());
        assert!(Cron::parse("* * * * *").is_err());
        assert!(Cron::parse("61 * * * * *").is_err());
        assert!(Cron::parse("banana").is_err());
    }

    #[test]
    fn thresholds_rules_and_routes() {
        assert!(Thresholds::parse(0.9, 0.95).is_err());
        assert!(Thresholds::parse(1.2, 0.5).is_err());
        assert!(Thresholds::parse(f64::NAN, 0.5).is_err());
        let t = Thresholds::parse(0.9, 0.7).unwrap();
        assert_eq!(t.route(0.9), Route::Auto);
        assert_eq!(t.route(0.8), Route::Review);
        assert_eq!(t.route(0.69), Route::Escalate);
    }

    #[test]
    fn strategy_round_trip() {
        for s in ["auto", "entropy", "margin", "least_confidence", "random"] {
            assert_eq!(Strategy::parse(s).unwrap().as_str(), s);
        }
        assert!(Strategy::parse("best").is_err());
    }
}
