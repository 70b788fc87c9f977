//! Featurization: text → TF-IDF with a stored IDF vector, numbers → standard
//! scores. Output rows are sparse; the trained dimension is chosen later.
use super::{Input, LearnerError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A sparse matrix in compressed-row form; row `i` is
/// `indices[indptr[i]..indptr[i + 1]]` with the matching `values`, columns ascending.
#[derive(Clone, Debug, Default)]
pub(crate) struct Csr {
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f64>,
}

impl Csr {
    pub fn new() -> Self {
        Csr {
            indptr: vec![0],
            ..Default::default()
        }
    }
    pub fn n_rows(&self) -> usize {
        self.indptr.len() - 1
    }
    pub fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }
    /// The given rows, in the given order.
    pub fn select_rows(&self, rows: &[usize]) -> Csr {
        let mut m = Csr::new();
        for &i in rows {
            let (idx, val) = self.row(i);
            m.indices.extend_from_slice(idx);
            m.values.extend_from_slice(val);
            m.indptr.push(m.indices.len());
        }
        m
    }
    fn push_row(&mut self, row: &[(u32, f64)]) {
        for &(c, v) in row {
            self.indices.push(c);
            self.values.push(v);
        }
        self.indptr.push(self.indices.len());
    }
}

/// Lowercase alphanumeric tokens of at least two characters.
pub(crate) fn tokenize(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| t.chars().nth(1).is_some())
        .map(str::to_lowercase)
}

/// Vocabulary and IDF fitted once on a corpus and applied unchanged afterwards
/// (unlike linfa's vectorizer, which recomputes IDF per batch).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "TextRepr", into = "TextRepr")]
pub(crate) struct TextFeaturizer {
    terms: Vec<String>,
    idf: Vec<f64>,
    index: HashMap<String, u32>,
}

#[derive(Serialize, Deserialize)]
struct TextRepr {
    terms: Vec<String>,
    idf: Vec<f64>,
}

impl From<TextRepr> for TextFeaturizer {
    fn from(r: TextRepr) -> Self {
        let index = r
            .terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        TextFeaturizer {
            terms: r.terms,
            idf: r.idf,
            index,
        }
    }
}

impl From<TextFeaturizer> for TextRepr {
    fn from(t: TextFeaturizer) -> Self {
        TextRepr {
            terms: t.terms,
            idf: t.idf,
        }
    }
}

impl TextFeaturizer {
    /// Smooth IDF (`ln((1 + n) / (1 + df)) + 1`, as scikit-learn), terms seen in
    /// at least two documents when that leaves any, at most `max_vocab` terms
    /// (the most frequent by document frequency).
    fn fit<'a>(docs: impl Iterator<Item = &'a str>, max_vocab: usize) -> Self {
        let mut df: HashMap<String, u32> = HashMap::new();
        let mut n_docs = 0usize;
        let mut seen: Vec<String> = Vec::new();
        for d in docs {
            n_docs += 1;
            seen.clear();
            seen.extend(tokenize(d));
            seen.sort_unstable();
            seen.dedup();
            for t in seen.drain(..) {
                *df.entry(t).or_insert(0) += 1;
            }
        }
        let min_df = if df.values().any(|&c| c >= 2) { 2 } else { 1 };
        let mut kept: Vec<(String, u32)> = df.into_iter().filter(|(_, c)| *c >= min_df).collect();
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        kept.truncate(max_vocab.max(1));
        kept.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let n = n_docs as f64;
        let idf = kept
            .iter()
            .map(|(_, c)| ((1.0 + n) / (1.0 + *c as f64)).ln() + 1.0)
            .collect();
        let terms = kept.into_iter().map(|(t, _)| t).collect();
        TextRepr { terms, idf }.into()
    }

    pub fn dim(&self) -> usize {
        self.terms.len()
    }

    /// Sublinear TF (`1 + ln tf`) × IDF, L2-normalised; appended to `out`.
    fn transform_into(&self, text: &str, out: &mut Vec<(u32, f64)>) {
        let mut ids: Vec<u32> = tokenize(text)
            .filter_map(|t| self.index.get(&t).copied())
            .collect();
        ids.sort_unstable();
        let start = out.len();
        let mut i = 0;
        while i < ids.len() {
            let mut j = i + 1;
            while j < ids.len() && ids[j] == ids[i] {
                j += 1;
            }
            let tf = (j - i) as f64;
            out.push((ids[i], (1.0 + tf.ln()) * self.idf[ids[i] as usize]));
            i = j;
        }
        let norm = out[start..].iter().map(|e| e.1 * e.1).sum::<f64>().sqrt();
        if norm > 0.0 {
            for e in &mut out[start..] {
                e.1 /= norm;
            }
        }
    }
}

/// Standard scores with the population std of the fitting data (std 0 → 1).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Scaler {
    means: Vec<f64>,
    stds: Vec<f64>,
}

impl Scaler {
    fn fit(rows: &[&[f64]]) -> Self {
        let d = rows[0].len();
        let n = rows.len() as f64;
        let mut means = vec![0.0; d];
        for r in rows {
            for (m, v) in means.iter_mut().zip(r.iter()) {
                *m += v;
            }
        }
        means.iter_mut().for_each(|m| *m /= n);
        let mut vars = vec![0.0; d];
        for r in rows {
            for ((s, v), m) in vars.iter_mut().zip(r.iter()).zip(&means) {
                *s += (v - m) * (v - m);
            }
        }
        let stds = vars
            .into_iter()
            .map(|s| {
                let sd = (s / n).sqrt();
                if sd > 1e-12 {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Scaler { means, stds }
    }
    pub fn dim(&self) -> usize {
        self.means.len()
    }
    pub fn means(&self) -> &[f64] {
        &self.means
    }
    pub fn stds(&self) -> &[f64] {
        &self.stds
    }
}

/// The whole featurizer: text columns first, then numeric columns.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Featurizer {
    pub text: Option<TextFeaturizer>,
    pub numeric: Option<Scaler>,
}

fn check_features(f: &[f64], expected: Option<usize>) -> Result<(), LearnerError> {
    if let Some(d) = expected {
        if f.len() != d {
            return Err(LearnerError::BadInput(format!(
                "expected {d} features, got {}",
                f.len()
            )));
        }
    }
    if f.iter().any(|v| !v.is_finite()) {
        return Err(LearnerError::BadInput(
            "features must be finite numbers (no NaN or infinity)".into(),
        ));
    }
    Ok(())
}

impl Featurizer {
    /// Fits on every item given (labeled and pool alike: no label is used).
    pub fn fit<'a, I>(items: I, max_vocab: usize) -> Result<Self, LearnerError>
    where
        I: Iterator<Item = &'a Input<'a>> + Clone,
    {
        let mut n_features: Option<usize> = None;
        let mut rows: Vec<&[f64]> = Vec::new();
        let mut any_text = false;
        let mut n_items = 0usize;
        for it in items.clone() {
            n_items += 1;
            if it.text.is_none() && it.features.is_none() {
                return Err(LearnerError::BadInput(
                    "an item has neither text nor features".into(),
                ));
            }
            any_text |= it.text.is_some();
            if let Some(f) = it.features {
                check_features(f, n_features)?;
                n_features = Some(f.len());
                rows.push(f);
            }
        }
        if n_items == 0 {
            return Err(LearnerError::BadInput("no items to learn from".into()));
        }
        let text = any_text.then(|| TextFeaturizer::fit(items.filter_map(|i| i.text), max_vocab));
        let numeric = (!rows.is_empty() && n_features != Some(0)).then(|| Scaler::fit(&rows));
        Ok(Featurizer { text, numeric })
    }

    pub fn text_dim(&self) -> usize {
        self.text.as_ref().map_or(0, TextFeaturizer::dim)
    }

    pub fn dim(&self) -> usize {
        self.text_dim() + self.numeric.as_ref().map_or(0, Scaler::dim)
    }

    /// One sparse row. A missing text counts as empty; missing or malformed
    /// features are an error when the model uses features.
    pub fn transform_row(&self, it: &Input, out: &mut Vec<(u32, f64)>) -> Result<(), LearnerError> {
        if let Some(t) = &self.text {
            t.transform_into(it.text.unwrap_or(""), out);
        }
        if let Some(s) = &self.numeric {
            let f = it.features.ok_or_else(|| {
                LearnerError::BadInput("item has no features but the model needs them".into())
            })?;
            check_features(f, Some(s.dim()))?;
            let off = self.text_dim() as u32;
            for (j, ((v, m), sd)) in f.iter().zip(&s.means).zip(&s.stds).enumerate() {
                let z = (v - m) / sd;
                if z != 0.0 {
                    out.push((off + j as u32, z));
                }
            }
        }
        Ok(())
    }

    pub fn transform(&self, items: &[Input]) -> Result<Csr, LearnerError> {
        let mut m = Csr::new();
        let mut row = Vec::new();
        for it in items {
            row.clear();
            self.transform_row(it, &mut row)?;
            m.push_row(&row);
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txt(t: &str) -> Input<'_> {
        Input {
            text: Some(t),
            features: None,
        }
    }

    #[test]
    fn tokenizer_lowercases_and_drops_short_tokens() {
        let t: Vec<String> = tokenize("Hello, a WORLD! x1 42 é").collect();
        assert_eq!(t, vec!["hello", "world", "x1", "42"]);
    }

    #[test]
    fn tfidf_uses_stored_idf_and_l2_norm() {
        let docs = [
            "apple banana",
            "apple cherry",
            "banana banana apple",
            "kiwi",
        ];
        let items: Vec<Input> = docs.iter().map(|d| txt(d)).collect();
        let f = Featurizer::fit(items.iter(), 100).unwrap();
        // kiwi and cherry occur once: dropped by min_df = 2.
        assert_eq!(f.text.as_ref().unwrap().terms, vec!["apple", "banana"]);
        let one = f.transform(&items[2..3]).unwrap();
        let all = f.transform(&items).unwrap();
        assert_eq!(one.row(0), all.row(2), "a row must not depend on its batch");
        let (idx, val) = one.row(0);
        assert_eq!(idx, &[0, 1]);
        let idf_apple = (5.0f64 / 4.0).ln() + 1.0;
        let idf_banana = (5.0f64 / 3.0).ln() + 1.0;
        let (a, b) = (idf_apple, (1.0 + 2f64.ln()) * idf_banana);
        let n = (a * a + b * b).sqrt();
        assert!((val[0] - a / n).abs() < 1e-12 && (val[1] - b / n).abs() < 1e-12);
    }

    #[test]
    fn vocabulary_cap_keeps_most_frequent_terms() {
        let docs = ["aa bb cc", "aa bb", "aa cc", "aa bb"];
        let items: Vec<Input> = docs.iter().map(|d| txt(d)).collect();
        let f = Featurizer::fit(items.iter(), 2).unwrap();
        assert_eq!(f.text.as_ref().unwrap().terms, vec!["aa", "bb"]);
    }

    #[test]
    fn numbers_are_standardised_and_validated() {
        let rows = [[1.0, 5.0], [3.0, 5.0]];
        let items: Vec<Input> = rows
            .iter()
            .map(|r| Input {
                text: None,
                features: Some(r),
            })
            .collect();
        let f = Featurizer::fit(items.iter(), 10).unwrap();
        let m = f.transform(&items).unwrap();
        assert_eq!(m.row(0), (&[0u32][..], &[-1.0][..]));
        assert_eq!(m.row(1), (&[0u32][..], &[1.0][..]));
        let bad = [f64::NAN, 1.0];
        let short = [1.0];
        for f_bad in [&bad[..], &short[..]] {
            let it = Input {
                text: None,
                features: Some(f_bad),
            };
            assert!(matches!(f.transform(&[it]), Err(LearnerError::BadInput(_))));
        }
        let mixed = [
            items[0],
            Input {
                text: None,
                features: Some(&short),
            },
        ];
        assert!(matches!(
            Featurizer::fit(mixed.iter(), 10),
            Err(LearnerError::BadInput(_))
        ));
    }
}
