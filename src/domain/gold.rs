//! Gold rows: an item with its known answer and, optionally, a suggestion to
//! show instead (a deliberately wrong one tests whether reviewers look).
use super::item::{check_row, ItemInput, ItemRules};
use super::LabelSet;
use crate::db::gold::NewGold;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldInput {
    pub external_id: Option<String>,
    pub text: Option<String>,
    pub features: Option<Vec<f64>>,
    pub meta: Option<serde_json::Value>,
    /// The known answer.
    pub label: String,
    /// The label shown as the model's suggestion; the answer when absent.
    pub suggest: Option<String>,
    /// The confidence shown with it; a value in the review band when absent.
    pub confidence: Option<f64>,
}

/// The body of `POST …/gold`: a list, or `{"items": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum GoldBody {
    List(Vec<GoldInput>),
    Wrapped { items: Vec<GoldInput> },
}

impl GoldBody {
    pub fn into_rows(self) -> Vec<GoldInput> {
        match self {
            GoldBody::List(v) | GoldBody::Wrapped { items: v } => v,
        }
    }
}

pub const MAX_GOLD_ROWS: usize = 10_000;

/// Checks every row (the first bad one rejects the batch, naming it) and
/// fills in the confidence shown from `band` (lower, upper) when absent.
pub fn check_gold(
    rows: Vec<GoldInput>,
    labels: &LabelSet,
    feature_len: Option<usize>,
    band: (f64, f64),
) -> Result<(Vec<NewGold>, Option<usize>), String> {
    if rows.is_empty() || rows.len() > MAX_GOLD_ROWS {
        return Err(format!("send 1–{MAX_GOLD_ROWS} gold items"));
    }
    let rules = ItemRules {
        labels,
        feature_len,
        allow_label: true,
    };
    let mut len = feature_len;
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.into_iter().enumerate() {
        let row = i + 1;
        let err = |e: String| format!("row {row}: {e}");
        if let Some(s) = &r.suggest {
            if labels.index_of(s).is_none() {
                return Err(err(format!(
                    "suggest {} is not one of this project's labels",
                    crate::error::echo(s)
                )));
            }
        }
        if let Some(c) = r.confidence {
            if !(c.is_finite() && (0.0..=1.0).contains(&c)) {
                return Err(err("confidence must be between 0 and 1".into()));
            }
        }
        let item = check_row(
            ItemInput {
                external_id: r.external_id,
                text: r.text,
                features: r.features,
                meta: r.meta,
                label: Some(r.label.clone()),
            },
            &rules,
            &mut len,
        )
        .map_err(err)?;
        let (lo, hi) = band;
        let confidence = r
            .confidence
            .unwrap_or_else(|| lo + (hi - lo) * rand::random::<f64>());
        out.push(NewGold {
            item,
            suggestion: r.suggest.unwrap_or_else(|| r.label.clone()),
            answer: r.label,
            confidence,
        });
    }
    Ok((out, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, suggest: Option<&str>) -> GoldInput {
        GoldInput {
            external_id: Some("g".into()),
            text: Some("hello".into()),
            features: None,
            meta: None,
            label: label.into(),
            suggest: suggest.map(str::to_string),
            confidence: None,
        }
    }

    #[test]
    fn gold_rows_are_checked() {
        let l = LabelSet::parse(&["ham".to_string(), "spam".to_string()]).unwrap();
        let (ok, _) = check_gold(vec![row("ham", Some("spam"))], &l, None, (0.7, 0.92)).unwrap();
        assert_eq!(
            (ok[0].answer.as_str(), ok[0].suggestion.as_str()),
            ("ham", "spam")
        );
        assert!((0.7..0.92).contains(&ok[0].confidence));
        let e = check_gold(
            vec![row("ham", None), row("eggs", None)],
            &l,
            None,
            (0.7, 0.92),
        );
        assert!(e.unwrap_err().starts_with("row 2:"));
        let e = check_gold(vec![row("ham", Some("eggs"))], &l, None, (0.7, 0.92));
        assert!(e.unwrap_err().contains("suggest"));
        assert!(check_gold(vec![], &l, None, (0.7, 0.92)).is_err());
    }
}
