//! What the review data says: override rates, confident mistakes, the audit
//! estimate of auto precision, and whether reviewers really review.
use crate::db::gold::GoldAnswer;
use crate::db::stats::ReviewRow;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn rate(num: usize, den: usize) -> Value {
    if den == 0 {
        Value::Null
    } else {
        json!(num as f64 / den as f64)
    }
}

fn median(mut v: Vec<i64>) -> Option<i64> {
    v.sort_unstable();
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2),
    }
}

/// Override rate by model version and by the model's proposed class.
pub fn overrides(rows: &[ReviewRow]) -> Value {
    let mut by_version: BTreeMap<i32, (usize, usize)> = BTreeMap::new();
    let mut by_class: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in rows {
        let over = (r.source == "override") as usize;
        if let Some(v) = r.pred_version {
            let e = by_version.entry(v).or_default();
            e.0 += over;
            e.1 += 1;
        }
        if let Some(c) = &r.pred_label {
            let e = by_class.entry(c.clone()).or_default();
            e.0 += over;
            e.1 += 1;
        }
    }
    json!({
        "by_version": by_version.iter().map(|(v, (o, n))| json!({"version": v, "reviewed": n, "overridden": o, "rate": rate(*o, *n)})).collect::<Vec<_>>(),
        "by_class": by_class.iter().map(|(c, (o, n))| json!({"label": c, "reviewed": n, "overridden": o, "rate": rate(*o, *n)})).collect::<Vec<_>>(),
    })
}

/// Overrides of predictions the model was at least `auto` sure of, newest first.
pub fn confident_and_wrong(rows: &[ReviewRow], auto: f64) -> Value {
    json!(rows
        .iter()
        .rev()
        .filter(|r| r.source == "override" && r.pred_confidence.unwrap_or(0.0) >= auto)
        .take(50)
        .map(|r| json!({
            "item_id": r.item_id, "external_id": r.external_id,
            "predicted": r.pred_label, "confidence": r.pred_confidence,
            "model_version": r.pred_version, "human": r.label, "reviewer": r.annotator,
        }))
        .collect::<Vec<_>>())
}

/// The unbiased estimate of auto precision from blind audits of auto cases.
pub fn audit(rows: &[ReviewRow], target: Option<f64>) -> Value {
    let audited: Vec<&ReviewRow> = rows.iter().filter(|r| r.audit).collect();
    let agree = audited
        .iter()
        .filter(|r| r.pred_label.as_deref() == Some(r.label.as_str()))
        .count();
    let precision = (!audited.is_empty()).then(|| agree as f64 / audited.len() as f64);
    let alert = match (precision, target) {
        (Some(p), Some(t)) if audited.len() >= 10 && p < t => Some(format!(
            "audited auto precision {:.1} % is below the target {:.1} % ({} audits)",
            p * 100.0,
            t * 100.0,
            audited.len()
        )),
        _ => None,
    };
    json!({"audited": audited.len(), "agreed": agree, "precision": precision, "target": target, "alert": alert})
}

/// What a reviewer's answers to gold items show.
#[derive(Default)]
struct GoldAcc {
    answered: usize,
    correct: usize,
    /// Gold items shown with a deliberately wrong suggestion …
    wrong_shown: usize,
    /// … and how many of those the reviewer accepted.
    wrong_accepted: usize,
    wrong_accepted_ms: Vec<i64>,
}

fn gold_by_reviewer(gold: &[GoldAnswer]) -> BTreeMap<&str, GoldAcc> {
    let mut by: BTreeMap<&str, GoldAcc> = BTreeMap::new();
    for g in gold {
        let a = by.entry(g.annotator.as_str()).or_default();
        a.answered += 1;
        a.correct += (g.label == g.answer) as usize;
        if g.suggestion.as_deref().is_some_and(|s| s != g.answer) {
            a.wrong_shown += 1;
            if g.suggestion.as_deref() == Some(g.label.as_str()) {
                a.wrong_accepted += 1;
                a.wrong_accepted_ms.extend(g.duration_ms);
            }
        }
    }
    by
}

/// Project-wide: how reviewers do on gold items.
pub fn gold_summary(items: u64, gold: &[GoldAnswer]) -> Value {
    let correct = gold.iter().filter(|g| g.label == g.answer).count();
    let wrong: Vec<&GoldAnswer> = gold
        .iter()
        .filter(|g| g.suggestion.as_deref().is_some_and(|s| s != g.answer))
        .collect();
    let accepted = wrong
        .iter()
        .filter(|g| g.suggestion.as_deref() == Some(g.label.as_str()))
        .count();
    json!({
        "items": items,
        "answers": gold.len(),
        "accuracy": rate(correct, gold.len()),
        "wrong_suggestions_shown": wrong.len(),
        "wrong_suggestions_accepted": accepted,
    })
}

/// Per reviewer: agreement with the model when it was shown and when it was
/// not (the gap measures anchoring), agreement with gold answers, speed, and
/// a rubber-stamp flag with its reasons.
pub fn reviewers(rows: &[ReviewRow], gold: &[GoldAnswer]) -> Value {
    #[derive(Default)]
    struct Acc {
        n: usize,
        shown: usize,
        shown_agree: usize,
        blind: usize,
        blind_agree: usize,
        durations: Vec<i64>,
    }
    let mut by: BTreeMap<&str, Acc> = BTreeMap::new();
    let mut golds = gold_by_reviewer(gold);
    for name in golds.keys() {
        by.entry(name).or_default();
    }
    for r in rows {
        let a = by.entry(r.annotator.as_str()).or_default();
        a.n += 1;
        let agree = r.pred_label.as_deref() == Some(r.label.as_str());
        if r.blind {
            a.blind += 1;
            a.blind_agree += agree as usize;
        } else {
            a.shown += 1;
            a.shown_agree += agree as usize;
        }
        if let Some(d) = r.duration_ms {
            a.durations.push(d);
        }
    }
    json!(by
        .into_iter()
        .map(|(name, a)| {
            let shown_rate = (a.shown > 0).then(|| a.shown_agree as f64 / a.shown as f64);
            let blind_rate = (a.blind > 0).then(|| a.blind_agree as f64 / a.blind as f64);
            let med = median(a.durations);
            // Fast, near-total agreement when the answer is shown, and
            // clearly less when it is not: approving, not reviewing.
            let anchoring = match (shown_rate, blind_rate) {
                (Some(s), Some(b)) => Some(s - b),
                _ => None,
            };
            let g = golds.remove(name).unwrap_or_default();
            let mut reasons: Vec<String> = vec![];
            if a.shown >= 20
                && shown_rate.unwrap_or(0.0) >= 0.97
                && med.is_some_and(|m| m < 2000)
                && anchoring.is_none_or(|g| g > 0.1)
            {
                reasons.push(format!(
                    "agrees with the model {:.0} % of the time in a median {:.1} s",
                    shown_rate.unwrap_or(0.0) * 100.0,
                    med.unwrap_or(0) as f64 / 1000.0
                ));
            }
            // Accepting deliberately wrong suggestions is the direct evidence.
            if g.wrong_shown >= 3 && 2 * g.wrong_accepted >= g.wrong_shown {
                let fast = median(g.wrong_accepted_ms.clone());
                reasons.push(format!(
                    "accepted {} of {} deliberately wrong suggestions on gold items{}",
                    g.wrong_accepted,
                    g.wrong_shown,
                    fast.map(|m| format!(" (median {:.1} s)", m as f64 / 1000.0))
                        .unwrap_or_default()
                ));
            }
            json!({
                "reviewer": name, "reviews": a.n,
                "agree_with_model_rate": shown_rate, "blind_agreement_rate": blind_rate,
                "anchoring_gap": anchoring, "median_duration_ms": med,
                "gold": {
                    "answered": g.answered, "correct": g.correct,
                    "accuracy": rate(g.correct, g.answered),
                    "wrong_suggestions_shown": g.wrong_shown,
                    "wrong_suggestions_accepted": g.wrong_accepted,
                },
                "rubber_stamp_suspected": !reasons.is_empty(),
                "rubber_stamp_reasons": reasons,
            })
        })
        .collect::<Vec<_>>())
}

/// Agreement between annotators on items labelled by `m` (≥ 2) people:
/// observed agreement, Fleiss' kappa, and Cohen's kappa when the same two
/// people labelled every such item.
pub fn agreement(rows: &[(i64, String, String)], m: usize) -> Value {
    let m = m.max(2);
    let mut by_item: BTreeMap<i64, Vec<(&str, &str)>> = BTreeMap::new();
    for (item, who, label) in rows {
        by_item.entry(*item).or_default().push((who, label));
    }
    let items: Vec<&[(&str, &str)]> = by_item
        .values()
        .filter(|v| v.len() >= m)
        .map(|v| &v[..m])
        .collect();
    if items.is_empty() {
        return json!({"items": 0, "raters_per_item": m, "observed": null, "fleiss_kappa": null, "cohen_kappa": null});
    }
    let cats: Vec<&str> = {
        let mut c: Vec<&str> = items
            .iter()
            .flat_map(|v| v.iter().map(|(_, l)| *l))
            .collect();
        c.sort_unstable();
        c.dedup();
        c
    };
    let n = items.len() as f64;
    let mf = m as f64;
    let mut p_j = vec![0.0; cats.len()];
    let mut p_bar = 0.0;
    for v in &items {
        let mut counts = vec![0.0; cats.len()];
        for (_, l) in v.iter() {
            let j = cats.binary_search(l).expect("category");
            counts[j] += 1.0;
            p_j[j] += 1.0;
        }
        p_bar += (counts.iter().map(|c| c * c).sum::<f64>() - mf) / (mf * (mf - 1.0));
    }
    p_bar /= n;
    let p_e: f64 = p_j.iter().map(|c| (c / (n * mf)).powi(2)).sum();
    let fleiss = if (1.0 - p_e).abs() < 1e-12 {
        None
    } else {
        Some((p_bar - p_e) / (1.0 - p_e))
    };
    let cohen = cohen(&items);
    json!({
        "items": items.len(), "raters_per_item": m, "observed": p_bar,
        "fleiss_kappa": fleiss, "cohen_kappa": cohen,
    })
}

fn cohen(items: &[&[(&str, &str)]]) -> Option<Value> {
    if items.first()?.len() != 2 {
        return None;
    }
    let mut pair: Vec<&str> = vec![items[0][0].0, items[0][1].0];
    pair.sort_unstable();
    let mut a_labels = Vec::new();
    let mut b_labels = Vec::new();
    for v in items {
        let (x, y) = (v[0], v[1]);
        let (a, b) = if x.0 == pair[0] && y.0 == pair[1] {
            (x.1, y.1)
        } else if x.0 == pair[1] && y.0 == pair[0] {
            (y.1, x.1)
        } else {
            return None;
        };
        a_labels.push(a);
        b_labels.push(b);
    }
    let n = a_labels.len() as f64;
    let po = a_labels
        .iter()
        .zip(&b_labels)
        .filter(|(a, b)| a == b)
        .count() as f64
        / n;
    let mut cats: Vec<&str> = a_labels.iter().chain(&b_labels).copied().collect();
    cats.sort_unstable();
    cats.dedup();
    let pe: f64 = cats
        .iter()
        .map(|c| {
            let pa = a_labels.iter().filter(|l| *l == c).count() as f64 / n;
            let pb = b_labels.iter().filter(|l| *l == c).count() as f64 / n;
            pa * pb
        })
        .sum();
    let kappa = if (1.0 - pe).abs() < 1e-12 {
        None
    } else {
        Some((po - pe) / (1.0 - pe))
    };
    Some(json!({"raters": pair, "kappa": kappa}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[(i64, &str, &str)]) -> Vec<(i64, String, String)> {
        v.iter()
            .map(|(i, w, l)| (*i, w.to_string(), l.to_string()))
            .collect()
    }

    #[test]
    fn cohen_by_hand() {
        // a/b agree on 3 of 4: po = 0.75; pa(x)=0.5, pb(x)=0.25 → pe = 0.5·0.25 + 0.5·0.75 = 0.5 → κ = 0.5
        let r = rows(&[
            (1, "a", "x"),
            (1, "b", "x"),
            (2, "a", "x"),
            (2, "b", "y"),
            (3, "a", "y"),
            (3, "b", "y"),
            (4, "a", "y"),
            (4, "b", "y"),
        ]);
        let v = agreement(&r, 2);
        assert_eq!(v["items"], 4);
        assert!((v["cohen_kappa"]["kappa"].as_f64().unwrap() - 0.5).abs() < 1e-12);
        assert!((v["observed"].as_f64().unwrap() - 0.75).abs() < 1e-12);
    }

    #[test]
    fn fleiss_perfect_and_empty() {
        let r = rows(&[
            (1, "a", "x"),
            (1, "b", "x"),
            (1, "c", "x"),
            (2, "a", "y"),
            (2, "c", "y"),
            (2, "b", "y"),
        ]);
        let v = agreement(&r, 3);
        assert!((v["fleiss_kappa"].as_f64().unwrap() - 1.0).abs() < 1e-12);
        assert!(v["cohen_kappa"].is_null());
        assert_eq!(agreement(&[], 2)["items"], 0);
    }
}
