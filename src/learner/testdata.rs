//! The shipped data sets, for tests.
use super::Input;
use std::io::{BufRead, BufReader};

pub(crate) struct Set {
    pub texts: Vec<Option<String>>,
    pub feats: Vec<Option<Vec<f64>>>,
    pub labels: Vec<usize>,
}

impl Set {
    pub fn inputs(&self) -> Vec<Input<'_>> {
        self.texts
            .iter()
            .zip(&self.feats)
            .map(|(t, f)| Input {
                text: t.as_deref(),
                features: f.as_deref(),
            })
            .collect()
    }
    pub fn len(&self) -> usize {
        self.labels.len()
    }
}

fn read(path: &str) -> Vec<serde_json::Value> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    BufReader::new(flate2::read::GzDecoder::new(f))
        .lines()
        .map(|l| serde_json::from_str(&l.expect("line")).expect("json"))
        .collect()
}

/// (pool, test, label names) of `data/NAME.{pool,test}.jsonl.gz`; label
/// indices follow the sorted names of the pool's labels.
pub(crate) fn load(name: &str) -> (Set, Set, Vec<String>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
    let pool = read(&format!("{dir}/{name}.pool.jsonl.gz"));
    let test = read(&format!("{dir}/{name}.test.jsonl.gz"));
    let mut names: Vec<String> = pool
        .iter()
        .map(|r| r["label"].as_str().expect("label").to_string())
        .collect();
    names.sort();
    names.dedup();
    let to_set = |rows: Vec<serde_json::Value>| Set {
        texts: rows
            .iter()
            .map(|r| r["text"].as_str().map(str::to_string))
            .collect(),
        feats: rows
            .iter()
            .map(|r| {
                r["features"]
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_f64().expect("number")).collect())
            })
            .collect(),
        labels: rows
            .iter()
            .map(|r| {
                names
                    .binary_search(&r["label"].as_str().expect("label").to_string())
                    .expect("known label")
            })
            .collect(),
    };
    (to_set(pool), to_set(test), names.clone())
}
