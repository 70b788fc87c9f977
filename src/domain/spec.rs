//! Project settings: the request shape, and the checked settings it becomes.
use super::{
    parse_lease_seconds, parse_min_new_labels, parse_target_precision, Cron, LabelSet, ProjectName,
    Strategy, Thresholds,
};
use serde::{Deserialize, Deserializer};

/// `Some(None)` when the field is present and null, `None` when absent.
fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRequest {
    pub auto_threshold: Option<f64>,
    pub review_threshold: Option<f64>,
    #[serde(default, deserialize_with = "double_option")]
    pub target_precision: Option<Option<f64>>,
    /// A list of rules on `meta`; null clears them.
    #[serde(default, deserialize_with = "double_option")]
    pub rules: Option<Option<serde_json::Value>>,
    pub audit_share: Option<f64>,
    pub blind_share: Option<f64>,
    /// Chance that a review slot holds a gold item (known answer).
    pub gold_share: Option<f64>,
}

/// The body of `POST /projects` and `PATCH /projects/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectRequest {
    pub name: Option<String>,
    pub labels: Option<Vec<String>>,
    pub strategy: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub retrain_cron: Option<Option<String>>,
    pub min_new_labels: Option<i64>,
    pub routing: Option<RoutingRequest>,
    pub lease_seconds: Option<i64>,
    /// k labels per item from k different people (1–10).
    pub labels_per_item: Option<i64>,
}

/// A project's settings, every one checked.
#[derive(Debug, Clone)]
pub struct ProjectSpec {
    pub name: ProjectName,
    pub labels: LabelSet,
    pub strategy: Strategy,
    pub retrain_cron: Option<Cron>,
    pub min_new_labels: i32,
    pub thresholds: Thresholds,
    pub target_precision: Option<f64>,
    pub lease_seconds: i32,
    pub rules: Vec<super::Rule>,
    pub audit_share: f64,
    pub blind_share: f64,
    pub gold_share: f64,
    pub labels_per_item: i32,
}

pub const DEFAULT_CRON: &str = "0 * * * * *";

impl ProjectSpec {
    /// Settings for a new project; `name` and `labels` are required.
    pub fn create(r: ProjectRequest) -> Result<ProjectSpec, String> {
        let name = r.name.as_deref().ok_or("name is required")?;
        let labels = r.labels.as_deref().ok_or("labels is required")?;
        let base = ProjectSpec {
            name: ProjectName::parse(name)?,
            labels: LabelSet::parse(labels)?,
            // Never below the better of entropy and random on the shipped sets (BENCHMARKS.md).
            strategy: Strategy::Auto,
            retrain_cron: Some(Cron::parse(DEFAULT_CRON)?),
            min_new_labels: 10,
            thresholds: Thresholds::parse(0.92, 0.70)?,
            target_precision: None,
            lease_seconds: 600,
            rules: vec![],
            audit_share: 0.0,
            blind_share: 0.0,
            gold_share: 0.1,
            labels_per_item: 1,
        };
        base.patch(ProjectRequest {
            name: None,
            labels: None,
            ..r
        })
    }

    /// These settings with a PATCH applied. Labels may only be appended to:
    /// stored labels and models refer to the existing ones.
    pub fn patch(&self, r: ProjectRequest) -> Result<ProjectSpec, String> {
        let mut s = self.clone();
        if let Some(n) = r.name {
            s.name = ProjectName::parse(&n)?;
        }
        if let Some(l) = r.labels {
            let new = LabelSet::parse(&l)?;
            if !new.as_slice().starts_with(self.labels.as_slice()) {
                return Err(
                    "labels: existing labels cannot be removed, renamed or reordered; append new ones"
                        .into(),
                );
            }
            s.labels = new;
        }
        if let Some(st) = r.strategy {
            s.strategy = Strategy::parse(&st)?;
        }
        if let Some(c) = r.retrain_cron {
            s.retrain_cron = c.as_deref().map(Cron::parse).transpose()?;
        }
        if let Some(m) = r.min_new_labels {
            s.min_new_labels = parse_min_new_labels(m)?;
        }
        if let Some(k) = r.labels_per_item {
            if !(1..=10).contains(&k) {
                return Err("labels_per_item must be between 1 and 10".into());
            }
            s.labels_per_item = k as i32;
        }
        if let Some(l) = r.lease_seconds {
            s.lease_seconds = parse_lease_seconds(l)?;
        }
        if let Some(rt) = r.routing {
            s.thresholds = Thresholds::parse(
                rt.auto_threshold.unwrap_or(s.thresholds.auto),
                rt.review_threshold.unwrap_or(s.thresholds.review),
            )?;
            if let Some(tp) = rt.target_precision {
                s.target_precision = parse_target_precision(tp)?;
            }
            if let Some(r) = rt.rules {
                s.rules = match r {
                    Some(v) => super::parse_rules(&v)?,
                    None => vec![],
                };
            }
            if let Some(a) = rt.audit_share {
                s.audit_share = super::parse_share("routing.audit_share", a)?;
            }
            if let Some(b) = rt.blind_share {
                s.blind_share = super::parse_share("routing.blind_share", b)?;
            }
            if let Some(g) = rt.gold_share {
                s.gold_share = super::parse_share("routing.gold_share", g)?;
            }
        }
        Ok(s)
    }
}

impl ProjectSpec {
    pub fn to_fields(&self) -> crate::db::projects::ProjectFields {
        crate::db::projects::ProjectFields {
            name: self.name.as_str().to_string(),
            labels: self.labels.as_slice().to_vec(),
            strategy: self.strategy.as_str().to_string(),
            retrain_cron: self.retrain_cron.as_ref().map(|c| c.as_str().to_string()),
            min_new_labels: self.min_new_labels,
            auto_threshold: self.thresholds.auto,
            review_threshold: self.thresholds.review,
            target_precision: self.target_precision,
            lease_seconds: self.lease_seconds,
            rules: (!self.rules.is_empty()).then(|| serde_json::json!(self.rules)),
            audit_share: self.audit_share,
            blind_share: self.blind_share,
            gold_share: self.gold_share,
            labels_per_item: self.labels_per_item,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: serde_json::Value) -> ProjectRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn create_needs_name_and_labels() {
        assert!(ProjectSpec::create(req(serde_json::json!({"name": "x"}))).is_err());
        let s = ProjectSpec::create(req(serde_json::json!({"name": "x", "labels": ["a", "b"]})))
            .unwrap();
        assert_eq!(s.strategy, Strategy::Auto);
        assert!(s.retrain_cron.is_some());
    }

    #[test]
    fn patch_null_cron_disables_and_labels_append_only() {
        let s = ProjectSpec::create(req(serde_json::json!({"name": "x", "labels": ["a", "b"]})))
            .unwrap();
        let p = s
            .patch(req(serde_json::json!({"retrain_cron": null})))
            .unwrap();
        assert!(p.retrain_cron.is_none());
        assert!(s
            .patch(req(serde_json::json!({"labels": ["a", "b", "c"]})))
            .is_ok());
        assert!(s
            .patch(req(serde_json::json!({"labels": ["b", "a"]})))
            .is_err());
        assert!(s
            .patch(req(
                serde_json::json!({"routing": {"review_threshold": 0.99}})
            ))
            .is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(
            serde_json::from_value::<ProjectRequest>(serde_json::json!({"nmae": "x"})).is_err()
        );
    }
}
