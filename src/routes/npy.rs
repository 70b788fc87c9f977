//! NumPy `.npy` bodies (format versions 1–3), for batch prediction without
//! JSON: a numeric project's features come in as one 2-D float array, the
//! predictions go out as one structured array (`np.load` reads both).
//! Only what that needs: float arrays in, one record layout out.

use crate::domain::Route;
use ndarray::{Array2, ArrayView2, CowArray, Ix2};

pub const MEDIA_TYPE: &str = "application/x-npy";

const MAGIC: &[u8] = b"\x93NUMPY";

/// Whether a `Content-Type` or `Accept` header value names `.npy`.
pub fn names_npy(header: &str) -> bool {
    header.split(',').any(|part| {
        part.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(MEDIA_TYPE))
    })
}

/// Parses a body holding a 2-D array of `<f8`, `>f8`, `<f4` or `>f4`, in C
/// or Fortran order, into an items × features matrix of finite numbers, of
/// 1 to `max_rows` items (checked before the data is read). Little-endian
/// float64 data aligned in the body (NumPy pads its header to that) is read
/// in place; any other is converted.
pub fn read_matrix(body: &[u8], max_rows: usize) -> Result<CowArray<'_, f64, Ix2>, String> {
    let (header, data) = split(body)?;
    let h = Header::parse(header)?;
    let (big_endian, width) = match h.descr.as_str() {
        "<f8" => (false, 8),
        ">f8" => (true, 8),
        "<f4" => (false, 4),
        ">f4" => (true, 4),
        d => {
            return Err(format!(
                "the array's dtype is {d:?}: send float64 or float32 (e.g. x.astype('float64'))"
            ))
        }
    };
    let &[rows, cols] = h.shape.as_slice() else {
        return Err(format!(
            "the array has shape {:?}: send a 2-D array, items × features",
            h.shape
        ));
    };
    if rows == 0 || rows > max_rows {
        return Err(format!(
            "the array must hold 1–{max_rows} items, not {rows}"
        ));
    }
    let expected = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(width))
        .ok_or("the array's shape is too large")?;
    if data.len() != expected {
        return Err(format!(
            "the array's data holds {} bytes; shape {rows} × {cols} of {} needs {expected}",
            data.len(),
            h.descr
        ));
    }
    let in_place: Option<&[f64]> = (cfg!(target_endian = "little") && width == 8 && !big_endian)
        .then(|| bytemuck::try_cast_slice(data).ok())
        .flatten();
    let converted: Vec<f64> = match (width, big_endian) {
        _ if in_place.is_some() => Vec::new(),
        (8, false) => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect(),
        (8, true) => data
            .chunks_exact(8)
            .map(|b| f64::from_be_bytes(b.try_into().expect("8 bytes")))
            .collect(),
        (_, false) => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64)
            .collect(),
        (_, true) => data
            .chunks_exact(4)
            .map(|b| f32::from_be_bytes(b.try_into().expect("4 bytes")) as f64)
            .collect(),
    };
    let values: &[f64] = in_place.unwrap_or(&converted);
    // One branch-free pass first; the position only when something is off.
    let all_finite = values.iter().fold(true, |ok, v| ok & v.is_finite());
    if let Some(i) = (!all_finite)
        .then(|| values.iter().position(|v| !v.is_finite()))
        .flatten()
    {
        let (r, c) = if h.fortran_order {
            (i % rows.max(1), i / rows.max(1))
        } else {
            (i / cols.max(1), i % cols.max(1))
        };
        return Err(format!(
            "item {r}, feature {c} is not a finite number (no NaN or infinity)"
        ));
    }
    let dim = if h.fortran_order {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let m: CowArray<'_, f64, Ix2> = match in_place {
        Some(v) => ArrayView2::from_shape(dim, v).map(CowArray::from),
        None => Array2::from_shape_vec(dim, converted).map(CowArray::from),
    }
    .map_err(|e| format!("the array's shape: {e}"))?;
    Ok(if h.fortran_order {
        m.reversed_axes()
    } else {
        m
    })
}

/// Magic, version and header length; the header text and the data after it.
fn split(body: &[u8]) -> Result<(&str, &[u8]), String> {
    if body.len() < 10 || &body[..6] != MAGIC {
        return Err("the body is not a .npy file (it must start with \\x93NUMPY)".into());
    }
    let (len, start): (usize, usize) = match body[6] {
        1 => (u16::from_le_bytes([body[8], body[9]]) as usize, 10),
        2 | 3 if body.len() >= 12 => (
            u32::from_le_bytes([body[8], body[9], body[10], body[11]]) as usize,
            12,
        ),
        v => {
            return Err(format!(
                ".npy format version {v} is not supported (1–3 are)"
            ))
        }
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= body.len())
        .ok_or("the .npy header runs past the end of the body")?;
    let header =
        std::str::from_utf8(&body[start..end]).map_err(|_| "the .npy header is not text")?;
    Ok((header, &body[end..]))
}

/// The header's dictionary: `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`.
#[derive(Debug, PartialEq)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

impl Header {
    fn parse(text: &str) -> Result<Header, String> {
        let bad = |what: &str| format!("the .npy header is malformed ({what}): {}", text.trim());
        let mut p = Cursor(text.trim());
        p.eat('{').ok_or_else(|| bad("no '{'"))?;
        let (mut descr, mut fortran_order, mut shape) = (None, None, None);
        loop {
            if p.eat('}').is_some() {
                break;
            }
            let key = p.string().ok_or_else(|| bad("a key"))?;
            p.eat(':').ok_or_else(|| bad("no ':'"))?;
            match key {
                "descr" => {
                    descr = Some(p.string().ok_or_else(|| {
                        "the array's dtype is structured: send a plain float64 or float32 array"
                            .to_string()
                    })?)
                }
                "fortran_order" => fortran_order = Some(p.boolean().ok_or_else(|| bad(key))?),
                "shape" => shape = Some(p.tuple().ok_or_else(|| bad(key))?),
                _ => return Err(bad("an unknown key")),
            }
            if p.eat(',').is_none() {
                p.eat('}').ok_or_else(|| bad("no '}'"))?;
                break;
            }
        }
        match (descr, fortran_order, shape) {
            (Some(d), Some(f), Some(s)) => Ok(Header {
                descr: d.to_string(),
                fortran_order: f,
                shape: s,
            }),
            _ => Err(bad("descr, fortran_order and shape are all needed")),
        }
    }
}

struct Cursor<'a>(&'a str);

impl<'a> Cursor<'a> {
    fn eat(&mut self, c: char) -> Option<()> {
        self.0 = self.0.trim_start();
        self.0 = self.0.strip_prefix(c)?;
        Some(())
    }
    fn string(&mut self) -> Option<&'a str> {
        self.0 = self.0.trim_start();
        let q = self.0.chars().next().filter(|&q| q == '\'' || q == '"')?;
        let rest = &self.0[1..];
        let end = rest.find(q)?;
        self.0 = &rest[end + 1..];
        Some(&rest[..end])
    }
    fn boolean(&mut self) -> Option<bool> {
        self.0 = self.0.trim_start();
        for (word, v) in [("True", true), ("False", false)] {
            if let Some(rest) = self.0.strip_prefix(word) {
                self.0 = rest;
                return Some(v);
            }
        }
        None
    }
    fn tuple(&mut self) -> Option<Vec<usize>> {
        self.eat('(')?;
        let mut out = Vec::new();
        loop {
            if self.eat(')').is_some() {
                return Some(out);
            }
            self.0 = self.0.trim_start();
            let digits = self.0.bytes().take_while(u8::is_ascii_digit).count();
            out.push(self.0[..digits].parse().ok()?);
            self.0 = &self.0[digits..];
            if self.eat(',').is_none() {
                self.eat(')')?;
                return Some(out);
            }
        }
    }
}

/// The predictions as a structured array, one record per item:
/// `label` (`<U…`), `confidence` (`<f8`), `route` (`<U8`) and
/// `probabilities` (`<f8`, one per project label, in the project's order).
/// `best[i]` indexes `labels`.
pub fn write_predictions(
    labels: &[String],
    proba: ArrayView2<f64>,
    best: &[usize],
    routes: &[Route],
) -> Vec<u8> {
    let label_chars = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(1)
        .max(1);
    let k = proba.ncols();
    let descr = format!(
        "[('label', '<U{label_chars}'), ('confidence', '<f8'), ('route', '<U8'), \
         ('probabilities', '<f8', ({k},))]"
    );
    let header = format!(
        "{{'descr': {descr}, 'fortran_order': False, 'shape': ({},), }}",
        proba.nrows()
    );
    let utf32 = |s: &str, width: usize| -> Vec<u8> {
        let mut out: Vec<u8> = s.chars().flat_map(|c| (c as u32).to_le_bytes()).collect();
        out.resize(width * 4, 0);
        out
    };
    let label_cells: Vec<Vec<u8>> = labels.iter().map(|l| utf32(l, label_chars)).collect();
    let route_cells: Vec<Vec<u8>> = Route::ALL.iter().map(|r| utf32(r.as_str(), 8)).collect();
    let record = label_chars * 4 + 8 + 32 + 8 * k;
    let mut out = with_header(&header, record * proba.nrows());
    for ((p, &b), &r) in proba.rows().into_iter().zip(best).zip(routes) {
        out.extend_from_slice(&label_cells[b]);
        out.extend_from_slice(&p[b].to_le_bytes());
        out.extend_from_slice(&route_cells[r as usize]);
        for v in p {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Magic, version, header padded with spaces and a newline so the data
/// starts at a multiple of 64 bytes; room reserved for `data_len` more.
fn with_header(header: &str, data_len: usize) -> Vec<u8> {
    let (version, prefix) = if header.len() + 11 < u16::MAX as usize {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let padded = (prefix + header.len() + 1).div_ceil(64) * 64 - prefix;
    let mut out = Vec::with_capacity(prefix + padded + data_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(padded as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(padded as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.resize(prefix + padded - 1, b' ');
    out.push(b'\n');
    out
}

/// A 2-D float64 array as `.npy` (C order).
#[cfg(test)]
fn write_matrix(x: ArrayView2<f64>) -> Vec<u8> {
    let header = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}), }}",
        x.nrows(),
        x.ncols()
    );
    let mut out = with_header(&header, 8 * x.len());
    for v in x.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn matrix_round_trip_and_layouts() {
        let x = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]];
        let b = write_matrix(x.view());
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(b[10 + header_len - 1], b'\n');
        let m = read_matrix(&b, 10).unwrap();
        assert_eq!(m, x);
        // Aligned little-endian float64 is read in place; a body at an odd
        // address is converted, to the same matrix.
        if b[10 + header_len..].as_ptr().align_offset(8) == 0 {
            assert!(m.is_view(), "aligned <f8 data is read in place");
        }
        let mut odd = vec![0u8];
        odd.extend_from_slice(&b);
        let m = read_matrix(&odd[1..], 10).unwrap();
        assert!(!m.is_view(), "misaligned data is converted");
        assert_eq!(m, x);
        let mut fortran = with_header(
            "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
            0,
        );
        for v in x.t().iter() {
            fortran.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(read_matrix(&fortran, 10).unwrap(), x);

        // What numpy writes for float32, Fortran order and big-endian data.
        let mut f32_fortran = with_header(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
            0,
        );
        for v in [1.0f32, 4.0, 2.0, 5.0, 3.0, 6.5] {
            f32_fortran.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(read_matrix(&f32_fortran, 10).unwrap(), x);
        let mut be = with_header(
            "{'descr': '>f8', 'fortran_order': False, 'shape': (2, 3)}",
            0,
        );
        for v in x.iter() {
            be.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(read_matrix(&be, 10).unwrap(), x);
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        let x = array![[1.0, f64::NAN]];
        let err = read_matrix(&write_matrix(x.view()), 10).unwrap_err();
        assert!(err.contains("item 0, feature 1"), "{err}");
        assert!(read_matrix(b"{\"items\": []}", 10)
            .unwrap_err()
            .contains(".npy"));
        let mut short = write_matrix(array![[1.0, 2.0]].view());
        short.pop();
        assert!(read_matrix(&short, 10).unwrap_err().contains("needs 16"));
        for (header, needle) in [
            (
                "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2), }",
                "float64",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
                "2-D",
            ),
            (
                "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }",
                "structured",
            ),
            ("{'descr': '<f8', 'shape': (1, 2), }", "all needed"),
            ("not a dict", "malformed"),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (11, 2), }",
                "1–10 items, not 11",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 2), }",
                "1–10 items, not 0",
            ),
        ] {
            let mut b = with_header(header, 0);
            b.extend_from_slice(&[0u8; 16]);
            let err = read_matrix(&b, 10).unwrap_err();
            assert!(err.contains(needle), "{header}: {err}");
        }
    }

    #[test]
    fn predictions_are_a_structured_array() {
        let labels = vec!["ham".to_string(), "spät".to_string()];
        let p = array![[0.9, 0.1], [0.2, 0.8]];
        let b = write_predictions(&labels, p.view(), &[0, 1], &[Route::Auto, Route::Escalate]);
        let header_len = u16::from_le_bytes([b[8], b[9]]) as usize;
        let header = std::str::from_utf8(&b[10..10 + header_len]).unwrap();
        assert!(header.starts_with(
            "{'descr': [('label', '<U4'), ('confidence', '<f8'), ('route', '<U8'), \
             ('probabilities', '<f8', (2,))], 'fortran_order': False, 'shape': (2,), }"
        ));
        let data = &b[10 + header_len..];
        let record = 16 + 8 + 32 + 16;
        assert_eq!(data.len(), 2 * record);
        let r1 = &data[record..];
        let chars: String = r1[..16]
            .chunks(4)
            .map(|c| char::from_u32(u32::from_le_bytes(c.try_into().unwrap())).unwrap())
            .collect();
        assert_eq!(chars, "spät");
        assert_eq!(f64::from_le_bytes(r1[16..24].try_into().unwrap()), 0.8);
        assert_eq!(
            &r1[24..24 + 32][..4 * 8],
            "escalate"
                .chars()
                .flat_map(|c| (c as u32).to_le_bytes())
                .collect::<Vec<_>>()
                .as_slice()
        );
        assert_eq!(f64::from_le_bytes(r1[56..64].try_into().unwrap()), 0.2);
    }

    #[test]
    fn media_type_in_headers() {
        assert!(names_npy("application/x-npy"));
        assert!(names_npy("application/json, application/x-npy;q=0.9"));
        assert!(!names_npy("application/json"));
        assert!(!names_npy("*/*"));
    }
}
