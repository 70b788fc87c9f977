//! Routing rules on an item's `meta`: any rule that matches escalates the
//! prediction to a senior person, whatever the model's confidence.
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "in")]
    In,
}

/// `{"field": "amount", "op": ">=", "value": 50000}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub field: String,
    pub op: Op,
    pub value: Value,
}

pub const MAX_RULES: usize = 100;

impl Rule {
    fn check(&self, i: usize) -> Result<(), String> {
        let at = format!("routing.rules[{i}]");
        if self.field.trim().is_empty() || self.field.len() > 200 {
            return Err(format!("{at}.field must be 1–200 characters"));
        }
        match (self.op, &self.value) {
            (Op::Gt | Op::Ge | Op::Lt | Op::Le, Value::Number(_) | Value::String(_)) => Ok(()),
            (Op::Gt | Op::Ge | Op::Lt | Op::Le, _) => Err(format!(
                "{at}.value must be a number or a string for {:?}",
                self.op
            )),
            (Op::In, Value::Array(a)) if !a.is_empty() => Ok(()),
            (Op::In, _) => Err(format!("{at}.value must be a non-empty list for \"in\"")),
            (Op::Eq | Op::Ne, Value::Array(_) | Value::Object(_)) => Err(format!(
                "{at}.value must be a number, string, boolean or null"
            )),
            (Op::Eq | Op::Ne, _) => Ok(()),
        }
    }

    /// True when the item's meta satisfies this rule. A missing field never
    /// matches (except `!=`), and numbers compare as numbers.
    pub fn matches(&self, meta: Option<&Value>) -> bool {
        let v = meta.and_then(|m| m.get(&self.field));
        let Some(v) = v else {
            return self.op == Op::Ne;
        };
        match self.op {
            Op::Eq => same(v, &self.value),
            Op::Ne => !same(v, &self.value),
            Op::In => self
                .value
                .as_array()
                .is_some_and(|a| a.iter().any(|x| same(v, x))),
            Op::Gt => compare(v, &self.value) == Some(Ordering::Greater),
            Op::Ge => matches!(
                compare(v, &self.value),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            Op::Lt => compare(v, &self.value) == Some(Ordering::Less),
            Op::Le => matches!(
                compare(v, &self.value),
                Some(Ordering::Less | Ordering::Equal)
            ),
        }
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Checks a rule list as sent in a PATCH.
pub fn parse_rules(v: &Value) -> Result<Vec<Rule>, String> {
    let rules: Vec<Rule> = serde_json::from_value(v.clone()).map_err(|e| {
        format!("routing.rules must be a list of {{\"field\", \"op\", \"value\"}}: {e}")
    })?;
    if rules.len() > MAX_RULES {
        return Err(format!("routing.rules holds at most {MAX_RULES} rules"));
    }
    for (i, r) in rules.iter().enumerate() {
        r.check(i)?;
    }
    Ok(rules)
}

pub fn any_matches(rules: &[Rule], meta: Option<&Value>) -> bool {
    rules.iter().any(|r| r.matches(meta))
}

pub fn parse_share(name: &str, v: f64) -> Result<f64, String> {
    if !v.is_finite() || !(0.0..=1.0).contains(&v) {
        return Err(format!("{name} must be a number in [0, 1]"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_parse_and_match() {
        let r = parse_rules(&json!([{"field": "amount", "op": ">=", "value": 50000}])).unwrap();
        assert!(any_matches(&r, Some(&json!({"amount": 50000}))));
        assert!(any_matches(&r, Some(&json!({"amount": 72000.5}))));
        assert!(!any_matches(&r, Some(&json!({"amount": 10}))));
        assert!(!any_matches(&r, Some(&json!({"amount": "lots"}))));
        assert!(!any_matches(&r, None));
        let r =
            parse_rules(&json!([{"field": "country", "op": "in", "value": ["KP", "IR"]}])).unwrap();
        assert!(any_matches(&r, Some(&json!({"country": "IR"}))));
        assert!(!any_matches(&r, Some(&json!({"country": "FR"}))));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            json!({"field": "a"}),
            json!([{"field": "a", "op": "~", "value": 1}]),
            json!([{"field": "a", "op": ">=", "value": [1]}]),
            json!([{"field": "a", "op": "in", "value": 3}]),
            json!([{"field": "", "op": "==", "value": 3}]),
            json!([{"field": "a", "op": "==", "value": 3, "extra": 1}]),
        ] {
            assert!(parse_rules(&bad).is_err(), "{bad}");
        }
        assert!(parse_share("x", 1.5).is_err());
    }
}
