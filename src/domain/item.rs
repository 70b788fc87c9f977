//! Item input: the three import formats, and the rules every row must meet.
use super::LabelSet;
use crate::db::items::NewItem;
use serde::Deserialize;

/// One item as a client sends it (import or predict).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    pub external_id: Option<String>,
    pub text: Option<String>,
    pub features: Option<Vec<f64>>,
    pub meta: Option<serde_json::Value>,
    pub label: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Ndjson,
    Csv,
}

impl BodyFormat {
    /// From a Content-Type (parameters such as charset ignored).
    pub fn from_content_type(ct: &str) -> Option<BodyFormat> {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(BodyFormat::Json),
            "application/x-ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines" => Some(BodyFormat::Ndjson),
            "text/csv" | "application/csv" => Some(BodyFormat::Csv),
            _ => None,
        }
    }
}

pub const MAX_FEATURES: usize = 100_000;
pub const MAX_TEXT_BYTES: usize = 1 << 20;
pub const MAX_EXTERNAL_ID: usize = 256;

fn row_err(row: usize, msg: impl std::fmt::Display) -> String {
    format!("row {row}: {msg}")
}

/// Parses a request body into rows; errors name the first bad row (1-based).
pub fn parse_body(format: BodyFormat, body: &[u8]) -> Result<Vec<ItemInput>, String> {
    let mut out = Vec::new();
    parse_rows(format, body, |_, r| {
        out.push(r);
        Ok(())
    })?;
    Ok(out)
}

/// Parses a request body row by row, handing each row and its number
/// (1-based; a JSONL row is numbered by its line) to `each` as soon as it is
/// read, so a body can be parsed while it is still arriving; the first
/// error, the parser's, the reader's or `each`'s, stops the parse.
pub fn parse_rows(
    format: BodyFormat,
    mut body: impl std::io::Read,
    mut each: impl FnMut(usize, ItemInput) -> Result<(), String>,
) -> Result<(), String> {
    let read_err = |e: std::io::Error| format!("reading the body: {e}");
    match format {
        BodyFormat::Json => {
            let mut all = Vec::new();
            body.read_to_end(&mut all).map_err(read_err)?;
            let rows: Vec<serde_json::Value> = serde_json::from_slice(&all)
                .map_err(|e| format!("body must be a JSON array of items: {e}"))?;
            drop(all);
            for (i, v) in rows.into_iter().enumerate() {
                each(
                    i + 1,
                    serde_json::from_value(v).map_err(|e| row_err(i + 1, e))?,
                )?;
            }
            Ok(())
        }
        BodyFormat::Ndjson => {
            use std::io::BufRead;
            // Line by line, so invalid UTF-8 is reported with its row.
            let mut body = std::io::BufReader::with_capacity(64 << 10, body);
            let mut line = Vec::new();
            for i in 0.. {
                line.clear();
                if body.read_until(b'\n', &mut line).map_err(read_err)? == 0 {
                    break;
                }
                let l = line.strip_suffix(b"\n").unwrap_or(&line);
                let l = l.strip_suffix(b"\r").unwrap_or(l);
                let l = std::str::from_utf8(l)
                    .map_err(|e| row_err(i + 1, format!("not UTF-8: {e}")))?;
                if l.trim().is_empty() {
                    continue;
                }
                each(
                    i + 1,
                    serde_json::from_str(l).map_err(|e| row_err(i + 1, e))?,
                )?;
            }
            Ok(())
        }
        BodyFormat::Csv => parse_csv(body, each),
    }
}

fn parse_csv(
    body: impl std::io::Read,
    mut each: impl FnMut(usize, ItemInput) -> Result<(), String>,
) -> Result<(), String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::Headers)
        .from_reader(body);
    let headers = rdr
        .headers()
        .map_err(|e| format!("CSV header: {e}"))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (ext, text, label, meta, feats) = (
        col("external_id"),
        col("text"),
        col("label"),
        col("meta"),
        col("features"),
    );
    let named = [ext, text, label, meta, feats];
    let feature_cols: Vec<usize> = (0..headers.len())
        .filter(|i| !named.contains(&Some(*i)))
        .collect();
    if feats.is_some() && !feature_cols.is_empty() {
        return Err(format!(
            "CSV header: unknown column {:?} next to a 'features' column",
            &headers[feature_cols[0]]
        ));
    }
    for (i, rec) in rdr.records().enumerate() {
        let row = i + 1;
        let rec = rec.map_err(|e| row_err(row, e))?;
        let get = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let num = |s: &str, name: &str| -> Result<f64, String> {
            s.trim()
                .parse::<f64>()
                .map_err(|_| row_err(row, format!("{name}: {s:?} is not a number")))
        };
        let features = if let Some(f) = get(feats) {
            Some(
                f.split_whitespace()
                    .map(|s| num(s, "features"))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        } else if !feature_cols.is_empty() {
            Some(
                feature_cols
                    .iter()
                    .map(|&c| num(rec.get(c).unwrap_or(""), &headers[c]))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        } else {
            None
        };
        let meta = match get(meta) {
            Some(m) => Some(
                serde_json::from_str(&m)
                    .map_err(|e| row_err(row, format!("meta is not JSON: {e}")))?,
            ),
            None => None,
        };
        each(
            row,
            ItemInput {
                external_id: get(ext),
                text: get(text),
                features,
                meta,
                label: get(label),
            },
        )?;
    }
    Ok(())
}

/// What rows are checked against.
pub struct ItemRules<'a> {
    pub labels: &'a LabelSet,
    /// The project's feature length, if fixed by an earlier import;
    /// `Some(0)` when the project holds items without features.
    pub feature_len: Option<usize>,
    pub allow_label: bool,
}

/// Checks every row; the first bad one rejects the batch. Returns the rows
/// and the feature length they share (0: they have no features; stored with
/// the project, so later requests need not count its items to know).
pub fn check_rows(
    rows: Vec<ItemInput>,
    rules: &ItemRules<'_>,
) -> Result<(Vec<NewItem>, Option<usize>), String> {
    let mut len = rules.feature_len;
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.into_iter().enumerate() {
        let row = i + 1;
        out.push(check_row(r, rules, &mut len).map_err(|e| row_err(row, e))?);
    }
    Ok((out, len))
}

/// Parses and checks a body, handing the checked rows to `send` in chunks
/// of `chunk` as they are ready, so a consumer can store one chunk while the
/// next is parsed. The first bad row stops it (and `send`'s own error does).
/// Returns the feature length the rows share, as [`check_rows`] does.
pub fn parse_checked(
    format: BodyFormat,
    body: impl std::io::Read,
    rules: &ItemRules<'_>,
    chunk: usize,
    mut send: impl FnMut(Vec<NewItem>) -> Result<(), String>,
) -> Result<Option<usize>, String> {
    let mut len = rules.feature_len;
    let mut rows = Vec::with_capacity(chunk);
    parse_rows(format, body, |row, r| {
        rows.push(check_row(r, rules, &mut len).map_err(|e| row_err(row, e))?);
        if rows.len() >= chunk {
            send(std::mem::replace(&mut rows, Vec::with_capacity(chunk)))?;
        }
        Ok(())
    })?;
    if !rows.is_empty() {
        send(rows)?;
    }
    Ok(len)
}

pub fn check_row(
    r: ItemInput,
    rules: &ItemRules<'_>,
    len: &mut Option<usize>,
) -> Result<NewItem, String> {
    if r.text.is_none() && r.features.is_none() {
        return Err("an item needs text, features, or both".into());
    }
    if let Some(t) = &r.text {
        if t.len() > MAX_TEXT_BYTES {
            return Err(format!("text is longer than {MAX_TEXT_BYTES} bytes"));
        }
    }
    if let Some(f) = &r.features {
        if f.is_empty() || f.len() > MAX_FEATURES {
            return Err(format!("features must have 1–{MAX_FEATURES} numbers"));
        }
        if let Some(j) = f.iter().position(|x| !x.is_finite()) {
            return Err(format!("features[{j}] is not a finite number"));
        }
        match len {
            Some(0) => return Err("features: this project's items have no features".into()),
            Some(n) if *n != f.len() => {
                return Err(format!(
                    "features has {} numbers; this project's items have {n}",
                    f.len()
                ))
            }
            Some(_) => {}
            None => *len = Some(f.len()),
        }
    } else {
        // A model that uses features needs them on every item: a project's
        // items all have features or none has.
        match len {
            Some(n) if *n > 0 => {
                return Err(format!(
                    "features is required: this project's items have {n} numbers"
                ))
            }
            _ => *len = Some(0),
        }
    }
    if let Some(m) = &r.meta {
        if !(m.is_object() || m.is_null()) {
            return Err("meta must be a JSON object".into());
        }
    }
    let external_id = match r.external_id {
        Some(e) if e.trim().is_empty() || e.len() > MAX_EXTERNAL_ID => {
            return Err(format!(
                "external_id must be 1–{MAX_EXTERNAL_ID} bytes and not blank"
            ))
        }
        Some(e) => e,
        None => uuid::Uuid::new_v4().to_string(),
    };
    if let Some(l) = &r.label {
        if !rules.allow_label {
            return Err("label is not accepted here".into());
        }
        if rules.labels.index_of(l).is_none() {
            return Err(format!(
                "label {} is not one of this project's labels",
                crate::error::echo(l)
            ));
        }
    }
    Ok(NewItem {
        external_id,
        text: r.text,
        features: r.features,
        meta: r.meta.filter(|m| !m.is_null()),
        label: r.label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> LabelSet {
        LabelSet::parse(&["ham".into(), "spam".into()]).unwrap()
    }

    #[test]
    fn csv_with_feature_columns() {
        let rows = parse_body(BodyFormat::Csv, b"external_id,a,b,label\nx1,1.5,2,ham\n").unwrap();
        assert_eq!(rows[0].features.as_deref(), Some(&[1.5, 2.0][..]));
        assert_eq!(rows[0].label.as_deref(), Some("ham"));
    }

    #[test]
    fn csv_bad_number_names_row() {
        let e = parse_body(BodyFormat::Csv, b"a,b\n1,2\n3,x\n").unwrap_err();
        assert!(e.starts_with("row 2"), "{e}");
    }

    #[test]
    fn csv_invalid_utf8_is_an_error() {
        assert!(parse_body(BodyFormat::Csv, b"text\n\xff\xfe\n").is_err());
    }

    #[test]
    fn ndjson_rows_are_numbered() {
        let e = parse_body(BodyFormat::Ndjson, b"{\"text\":\"a\"}\n{\"txt\":1}\n").unwrap_err();
        assert!(e.starts_with("row 2"), "{e}");
    }

    #[test]
    fn checked_rows_come_in_chunks_and_errors_name_the_line() {
        let l = labels();
        let rules = ItemRules {
            labels: &l,
            feature_len: None,
            allow_label: true,
        };
        let body: String = (0..7)
            .map(|i| format!("{{\"features\":[{i}]}}\n"))
            .collect();
        let mut sizes = Vec::new();
        let len = parse_checked(BodyFormat::Ndjson, body.as_bytes(), &rules, 3, |rows| {
            sizes.push(rows.len());
            Ok(())
        })
        .unwrap();
        assert_eq!((sizes, len), (vec![3, 3, 1], Some(1)));
        // A blank line keeps the numbering of the lines after it, for the
        // parser's errors and the rules' alike.
        let body = b"{\"features\":[1]}\n\n{\"features\":[1,2]}\n";
        let e = parse_checked(BodyFormat::Ndjson, &body[..], &rules, 3, |_| Ok(())).unwrap_err();
        assert!(e.starts_with("row 3"), "{e}");
        // The consumer's refusal stops the parse.
        let mut calls = 0;
        let e = parse_checked(BodyFormat::Csv, &b"a\n1\n2\n3\n4\n"[..], &rules, 1, |_| {
            calls += 1;
            Err("stopped".into())
        })
        .unwrap_err();
        assert_eq!((e.as_str(), calls), ("stopped", 1));
    }

    #[test]
    fn row_rules() {
        let l = labels();
        let rules = ItemRules {
            labels: &l,
            feature_len: None,
            allow_label: true,
        };
        let ok = ItemInput {
            text: Some("hi".into()),
            ..Default::default()
        };
        let (rows, len) = check_rows(vec![ok.clone()], &rules).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            len,
            Some(0),
            "text-only items: the project stores 0 features"
        );
        let empty = ItemInput::default();
        assert!(check_rows(vec![ok.clone(), empty], &rules)
            .unwrap_err()
            .starts_with("row 2"));
        let bad_label = ItemInput {
            label: Some("eggs".into()),
            ..ok.clone()
        };
        assert!(check_rows(vec![bad_label], &rules).is_err());
        let f1 = ItemInput {
            features: Some(vec![1.0, 2.0]),
            ..Default::default()
        };
        let f2 = ItemInput {
            features: Some(vec![1.0]),
            ..Default::default()
        };
        assert!(check_rows(vec![f1.clone(), f2], &rules).is_err());
        let nan = ItemInput {
            features: Some(vec![f64::NAN]),
            ..Default::default()
        };
        assert!(check_rows(vec![nan], &rules).is_err());
        // Features on every item or on none, in a batch and across batches.
        assert!(check_rows(vec![ok.clone(), f1.clone()], &rules)
            .unwrap_err()
            .starts_with("row 2"));
        assert!(check_rows(vec![f1.clone(), ok.clone()], &rules)
            .unwrap_err()
            .starts_with("row 2"));
        let with_features = ItemRules {
            feature_len: Some(2),
            ..rules
        };
        assert!(check_rows(vec![ok.clone()], &with_features).is_err());
        let text_only = ItemRules {
            feature_len: Some(0),
            ..with_features
        };
        assert!(check_rows(vec![f1.clone()], &text_only).is_err());
        assert_eq!(check_rows(vec![ok], &text_only).unwrap().1, Some(0));
        assert_eq!(check_rows(vec![f1], &rules).unwrap().1, Some(2));
    }
}
