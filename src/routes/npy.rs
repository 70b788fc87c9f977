//! NumPy `.npy` bodies (format versions 1–3), for batch prediction without
//! JSON: a numeric project's features come in as one 2-D float array, the
//! predictions go out as one structured array (`np.load` reads both).
//! Only what that needs: float arrays in, one record layout out.

use crate::domain::Route;
#[cfg(test)]
use ndarray::Array2;
use ndarray::ArrayView2;

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

/// A 2-D float array's layout, from its header.
#[derive(Clone, Copy, Debug)]
struct Layout {
    rows: usize,
    cols: usize,
    /// Bytes a value: 8 or 4.
    width: usize,
    big_endian: bool,
    fortran_order: bool,
}

impl Layout {
    /// From the header's dictionary: a 2-D array of `<f8`, `>f8`, `<f4` or
    /// `>f4` of 1 to `max_rows` rows.
    fn of(h: &Header, max_rows: usize) -> Result<Layout, String> {
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
        rows.checked_mul(cols)
            .and_then(|n| n.checked_mul(width))
            .ok_or("the array's shape is too large")?;
        Ok(Layout {
            rows,
            cols,
            width,
            big_endian,
            fortran_order: h.fortran_order,
        })
    }

    fn data_len(&self) -> usize {
        self.rows * self.cols * self.width
    }

    /// Whether the data is little-endian float64 already.
    fn le_f64(&self) -> bool {
        self.width == 8 && !self.big_endian
    }

    /// Appends the values in `bytes` (a whole number of them) as
    /// little-endian float64 bytes.
    fn convert(&self, bytes: &[u8], out: &mut Vec<u8>) {
        out.reserve(bytes.len() / self.width * 8);
        let mut put = |v: f64| out.extend_from_slice(&v.to_le_bytes());
        match (self.width, self.big_endian) {
            (8, false) => out.extend_from_slice(bytes),
            (8, true) => bytes
                .chunks_exact(8)
                .for_each(|b| put(f64::from_be_bytes(b.try_into().expect("8 bytes")))),
            (_, false) => bytes
                .chunks_exact(4)
                .for_each(|b| put(f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64)),
            (_, true) => bytes
                .chunks_exact(4)
                .for_each(|b| put(f32::from_be_bytes(b.try_into().expect("4 bytes")) as f64)),
        }
    }
}

/// Rows of a body, handed on in order as they arrive: little-endian
/// float64 values, C order, at any alignment (often the very bytes that
/// came in). Not checked: see [`Block::non_finite`].
pub struct Block<'a> {
    /// All the rows there are (the header's shape).
    pub of: usize,
    /// The index of the first of these.
    pub first: usize,
    pub rows: usize,
    pub cols: usize,
    /// `rows × cols × 8` bytes.
    pub data: &'a [u8],
}

impl Block<'_> {
    /// The error naming the first value of row `r` (of this block) that is
    /// not a finite number, if there is one.
    pub fn non_finite(&self, r: usize) -> Option<String> {
        let row = self.data.get(r * self.cols * 8..(r + 1) * self.cols * 8)?;
        let c = row
            .chunks_exact(8)
            .position(|b| !f64::from_le_bytes(b.try_into().expect("8 bytes")).is_finite())?;
        Some(format!(
            "item {}, feature {c} is not a finite number (no NaN or infinity)",
            self.first + r
        ))
    }
}

/// Data converted at a time (from float32 or big-endian): 128 KiB, at home
/// in a core's L2 cache.
const BLOCK_BYTES: usize = 128 << 10;

/// A `.npy` body read as it arrives (format versions 1–3): a 2-D array of
/// `<f8`, `>f8`, `<f4` or `>f4`, items × features, of 1 to `max_rows`
/// items, of the features expected (checked from the header, before any
/// data). The rows go to a sink in [`Block`]s while the bytes they came
/// from are still in cache, so a large batch is never assembled in memory:
/// little-endian float64 rows straight from the chunk they arrived in,
/// others converted a block at a time. A Fortran-order array (its rows
/// interleaved) is kept whole and handed on at [`MatrixStream::finish`] as
/// one block.
pub struct MatrixStream {
    max_rows: usize,
    /// Features a row must have, if that is known.
    cols: Option<usize>,
    /// The body until its header has been read.
    head: Vec<u8>,
    layout: Option<Layout>,
    /// Data bytes received (counted past the expected length too).
    data_seen: usize,
    /// A row cut by a chunk boundary: its bytes so far (as sent); or all
    /// the data (Fortran order).
    carry: Vec<u8>,
    /// Rows converted to little-endian float64.
    converted: Vec<u8>,
    /// Rows handed on.
    rows_done: usize,
}

impl MatrixStream {
    /// For arrays of 1 to `max_rows` rows of `cols` features (of any number
    /// if `None`).
    pub fn new(max_rows: usize, cols: Option<usize>) -> MatrixStream {
        MatrixStream {
            max_rows,
            cols,
            head: Vec::new(),
            layout: None,
            data_seen: 0,
            carry: Vec::new(),
            converted: Vec::new(),
            rows_done: 0,
        }
    }

    /// Whether the rows are only handed on at the end, all at once (a
    /// Fortran-order array).
    pub fn whole_at_end(&self) -> bool {
        self.layout.is_some_and(|l| l.fortran_order)
    }

    /// Reads the next part of the body; `sink` gets each complete run of
    /// rows.
    pub fn push<E: From<String>>(
        &mut self,
        chunk: &[u8],
        sink: &mut impl FnMut(Block<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.layout.is_some() {
            return self.take(chunk, sink);
        }
        // The header: from the chunk itself when it holds it all.
        let from_chunk = self.head.is_empty();
        let buf: &[u8] = if from_chunk {
            chunk
        } else {
            self.head.extend_from_slice(chunk);
            &self.head
        };
        let Some(end) = header_end(buf)? else {
            if from_chunk {
                self.head.extend_from_slice(chunk);
            }
            return Ok(());
        };
        let h = Header::parse(header_text(buf, end)?)?;
        let layout = Layout::of(&h, self.max_rows)?;
        if let Some(want) = self.cols.filter(|&c| c != layout.cols) {
            return Err(format!("expected {want} features, got {}", layout.cols).into());
        }
        self.layout = Some(layout);
        if layout.fortran_order {
            self.carry.reserve_exact(layout.data_len());
        }
        if from_chunk {
            self.take(&chunk[end..], sink)
        } else {
            let head = std::mem::take(&mut self.head);
            self.take(&head[end..], sink)
        }
    }

    /// Reads data bytes (after the header).
    fn take<E: From<String>>(
        &mut self,
        chunk: &[u8],
        sink: &mut impl FnMut(Block<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let layout = self.layout.expect("read above");
        let expected = layout.data_len();
        let before = self.data_seen;
        self.data_seen += chunk.len();
        // Past the expected end: only counted, for the error at the end.
        let mut data = &chunk[..chunk.len().min(expected.saturating_sub(before))];
        if layout.fortran_order {
            self.carry.extend_from_slice(data);
            return Ok(());
        }
        let row_bytes = layout.cols * layout.width;
        if row_bytes == 0 {
            return Ok(());
        }
        if !self.carry.is_empty() {
            let n = (row_bytes - self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.carry.len() < row_bytes {
                return Ok(());
            }
            let row = std::mem::take(&mut self.carry);
            self.hand_on(&row, sink)?;
            self.carry = row;
            self.carry.clear();
        }
        let whole = data.len() / row_bytes * row_bytes;
        if layout.le_f64() {
            self.hand_on(&data[..whole], sink)?;
        } else {
            let per_block = (BLOCK_BYTES / 8 / layout.cols).max(1) * row_bytes;
            for rows in data[..whole].chunks(per_block) {
                self.hand_on(rows, sink)?;
            }
        }
        self.carry.extend_from_slice(&data[whole..]);
        Ok(())
    }

    /// Hands on whole rows as sent.
    fn hand_on<E: From<String>>(
        &mut self,
        rows: &[u8],
        sink: &mut impl FnMut(Block<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let layout = self.layout.expect("after the header");
        if rows.is_empty() {
            return Ok(());
        }
        let n = rows.len() / (layout.cols * layout.width);
        let data = if layout.le_f64() {
            rows
        } else {
            self.converted.clear();
            layout.convert(rows, &mut self.converted);
            &self.converted
        };
        sink(Block {
            of: layout.rows,
            first: self.rows_done,
            rows: n,
            cols: layout.cols,
            data,
        })?;
        self.rows_done += n;
        Ok(())
    }

    /// The end of the body: the last rows go to the sink; returns items ×
    /// features. Fails if the body was not all there, or held more.
    pub fn finish<E: From<String>>(
        mut self,
        sink: &mut impl FnMut(Block<'_>) -> Result<(), E>,
    ) -> Result<(usize, usize), E> {
        let Some(layout) = self.layout else {
            return Err(match header_end(&self.head) {
                Err(e) => e,
                Ok(_) if self.head.len() < 10 => not_npy(),
                Ok(_) => "the .npy header runs past the end of the body".to_string(),
            }
            .into());
        };
        let expected = layout.data_len();
        if self.data_seen != expected {
            return Err(format!(
                "the array's data holds {} bytes; shape {} × {} of {} needs {expected}",
                self.data_seen,
                layout.rows,
                layout.cols,
                descr(&layout)
            )
            .into());
        }
        let (rows, cols) = (layout.rows, layout.cols);
        if cols == 0 {
            sink(Block {
                of: rows,
                first: 0,
                rows,
                cols,
                data: &[],
            })?;
        } else if layout.fortran_order {
            // Columns one after another: turned into rows.
            let w = layout.width;
            let mut c_order = Vec::with_capacity(rows * cols * w);
            for r in 0..rows {
                for c in 0..cols {
                    let at = (c * rows + r) * w;
                    c_order.extend_from_slice(&self.carry[at..at + w]);
                }
            }
            self.layout = Some(Layout {
                fortran_order: false,
                ..layout
            });
            self.hand_on(&c_order, sink)?;
        }
        Ok((rows, cols))
    }
}

fn not_npy() -> String {
    "the body is not a .npy file (it must start with \\x93NUMPY)".into()
}

fn descr(l: &Layout) -> &'static str {
    match (l.width, l.big_endian) {
        (8, false) => "<f8",
        (8, true) => ">f8",
        (_, false) => "<f4",
        (_, true) => ">f4",
    }
}

/// Parses a whole body as [`MatrixStream`] does, into one matrix, its
/// values checked finite.
#[cfg(test)]
fn read_matrix(body: &[u8], max_rows: usize) -> Result<Array2<f64>, String> {
    let mut out: Option<Array2<f64>> = None;
    let mut sink = |b: Block| -> Result<(), String> {
        if let Some(e) = (0..b.rows).find_map(|r| b.non_finite(r)) {
            return Err(e);
        }
        let m = out.get_or_insert_with(|| Array2::zeros((0, b.cols)));
        assert_eq!(b.first, m.nrows(), "blocks arrive in order");
        let values: Vec<f64> = b
            .data
            .chunks_exact(8)
            .map(|v| f64::from_le_bytes(v.try_into().unwrap()))
            .collect();
        let x = ArrayView2::from_shape((b.rows, b.cols), &values).unwrap();
        m.append(ndarray::Axis(0), x).map_err(|e| e.to_string())
    };
    let mut stream = MatrixStream::new(max_rows, None);
    stream.push(body, &mut sink)?;
    stream.finish(&mut sink)?;
    Ok(out.expect("a block at the end at least"))
}

/// Where the header ends (the data starts), once the body holds it all;
/// `None` while more is needed.
fn header_end(body: &[u8]) -> Result<Option<usize>, String> {
    let magic_len = body.len().min(MAGIC.len());
    if body[..magic_len] != MAGIC[..magic_len] {
        return Err(not_npy());
    }
    if body.len() < 10 {
        return Ok(None);
    }
    let (len, start): (usize, usize) = match body[6] {
        1 => (u16::from_le_bytes([body[8], body[9]]) as usize, 10),
        2 | 3 if body.len() >= 12 => (
            u32::from_le_bytes([body[8], body[9], body[10], body[11]]) as usize,
            12,
        ),
        2 | 3 => return Ok(None),
        v => {
            return Err(format!(
                ".npy format version {v} is not supported (1–3 are)"
            ))
        }
    };
    if len > MAX_HEADER {
        return Err(format!(
            "the .npy header is {len} bytes long; at most {MAX_HEADER} are read"
        ));
    }
    let end = start + len;
    Ok((body.len() >= end).then_some(end))
}

/// Longer headers than NumPy writes for any 2-D array are refused.
const MAX_HEADER: usize = 64 << 10;

fn header_text(body: &[u8], end: usize) -> Result<&str, String> {
    let start = if body[6] == 1 { 10 } else { 12 };
    std::str::from_utf8(&body[start..end]).map_err(|_| "the .npy header is not text".into())
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

/// What an `.npy` answer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NpyOutput {
    /// A structured array, one record per item: `label` (`<U…`),
    /// `confidence` (`<f8`), `route` (`<U8`) and `probabilities` (`<f8`,
    /// one per project label, in the project's order).
    Predictions,
    /// A plain 2-D `<f8` array, items × project labels in the project's
    /// order: what scikit-learn's `predict_proba` returns.
    Probabilities,
}

/// The predictions as an `.npy` array ([`NpyOutput`]), written a block of
/// items at a time.
pub struct PredictionWriter {
    out: Vec<u8>,
    /// Per label and per route, the cells of a record (empty for
    /// [`NpyOutput::Probabilities`]).
    label_cells: Vec<Vec<u8>>,
    route_cells: Vec<Vec<u8>>,
    record: usize,
    k: usize,
}

impl PredictionWriter {
    /// For `rows` items over `labels`.
    pub fn new(labels: &[String], rows: usize, output: NpyOutput) -> PredictionWriter {
        let k = labels.len();
        if output == NpyOutput::Probabilities {
            let header =
                format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {k}), }}");
            return PredictionWriter {
                out: with_header(&header, 8 * k * rows),
                label_cells: Vec::new(),
                route_cells: Vec::new(),
                record: 8 * k,
                k,
            };
        }
        let label_chars = labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(1)
            .max(1);
        let descr = format!(
            "[('label', '<U{label_chars}'), ('confidence', '<f8'), ('route', '<U8'), \
             ('probabilities', '<f8', ({k},))]"
        );
        let header = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': ({rows},), }}");
        let utf32 = |s: &str, width: usize| -> Vec<u8> {
            let mut out: Vec<u8> = s.chars().flat_map(|c| (c as u32).to_le_bytes()).collect();
            out.resize(width * 4, 0);
            out
        };
        let record = label_chars * 4 + 8 + 32 + 8 * k;
        PredictionWriter {
            out: with_header(&header, record * rows),
            label_cells: labels.iter().map(|l| utf32(l, label_chars)).collect(),
            route_cells: Route::ALL.iter().map(|r| utf32(r.as_str(), 8)).collect(),
            record,
            k,
        }
    }

    /// The next items: their probabilities (items × labels), the index of
    /// each one's label, and its route.
    pub fn push(&mut self, proba: ArrayView2<f64>, best: &[usize], routes: &[Route]) {
        assert_eq!(proba.ncols(), self.k, "one probability a label");
        // Appended, not zeroed first and overwritten: `new` reserved the room.
        self.out.reserve(self.record * proba.nrows());
        let out = &mut self.out;
        let put = |out: &mut Vec<u8>, p: &[f64]| {
            if cfg!(target_endian = "little") {
                out.extend_from_slice(bytemuck::cast_slice(p));
            } else {
                p.iter()
                    .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
            }
        };
        if self.label_cells.is_empty() {
            match proba.as_slice() {
                Some(all) => put(out, all),
                None => proba.rows().into_iter().for_each(|p| put(out, &p.to_vec())),
            }
            return;
        }
        for ((p, &b), &r) in proba.rows().into_iter().zip(best).zip(routes) {
            out.extend_from_slice(&self.label_cells[b]);
            out.extend_from_slice(&p[b].to_le_bytes());
            out.extend_from_slice(&self.route_cells[r as usize]);
            match p.as_slice() {
                Some(p) => put(out, p),
                None => put(out, &p.to_vec()),
            }
        }
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// [`PredictionWriter`]'s array of all the items at once; `best[i]`
/// indexes `labels`.
#[cfg(test)]
fn write_predictions(
    labels: &[String],
    proba: ArrayView2<f64>,
    best: &[usize],
    routes: &[Route],
) -> Vec<u8> {
    let mut w = PredictionWriter::new(labels, proba.nrows(), NpyOutput::Predictions);
    w.push(proba, best, routes);
    w.finish()
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
        assert_eq!(read_matrix(&b, 10).unwrap(), x);
        // A body at an odd address reads the same.
        let mut odd = vec![0u8];
        odd.extend_from_slice(&b);
        assert_eq!(read_matrix(&odd[1..], 10).unwrap(), x);
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

    /// Rows, values and the header cut anywhere by the chunks a body
    /// arrives in: the same rows, in order, each once.
    #[test]
    fn a_body_in_pieces_reads_the_same() {
        let x = ndarray::Array2::from_shape_fn((37, 5), |(i, j)| (i * 5 + j) as f64 * 0.5 - 3.0);
        let mut bodies = vec![write_matrix(x.view())];
        for descr in ["<f4", ">f8"] {
            let mut b = with_header(
                &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (37, 5), }}"),
                0,
            );
            for v in x.iter() {
                match descr {
                    "<f4" => b.extend_from_slice(&(*v as f32).to_le_bytes()),
                    _ => b.extend_from_slice(&v.to_be_bytes()),
                }
            }
            bodies.push(b);
        }
        for body in &bodies {
            for size in [1, 3, 7, 8, 13, 40, 64, 100, 1000, body.len()] {
                let mut got: Vec<f64> = Vec::new();
                let mut firsts = Vec::new();
                let mut sink = |b: Block| -> Result<(), String> {
                    assert_eq!((b.of, b.cols), (37, 5));
                    assert_eq!(b.data.len(), b.rows * 5 * 8);
                    firsts.push((b.first, b.rows));
                    got.extend(
                        b.data
                            .chunks_exact(8)
                            .map(|v| f64::from_le_bytes(v.try_into().unwrap())),
                    );
                    Ok(())
                };
                let mut stream = MatrixStream::new(100, None);
                for chunk in body.chunks(size) {
                    stream.push(chunk, &mut sink).unwrap();
                }
                assert_eq!(stream.finish(&mut sink).unwrap(), (37, 5));
                assert_eq!(
                    got,
                    x.iter().copied().collect::<Vec<_>>(),
                    "pieces of {size}"
                );
                let mut next = 0;
                for (first, rows) in firsts {
                    assert_eq!(first, next, "pieces of {size}");
                    next += rows;
                }
                assert_eq!(next, 37);
            }
        }
        // More data than the shape holds, sent in pieces: refused at the end.
        let mut long = bodies[0].clone();
        long.extend_from_slice(&[0; 8]);
        let mut stream = MatrixStream::new(100, None);
        let mut sink = |_: Block| -> Result<(), String> { Ok(()) };
        for chunk in long.chunks(50) {
            stream.push(chunk, &mut sink).unwrap();
        }
        assert!(stream
            .finish(&mut sink)
            .unwrap_err()
            .contains("holds 1488 bytes"));
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
    fn probabilities_alone_are_a_plain_matrix() {
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let p = array![[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]];
        let mut w = PredictionWriter::new(&labels, 4, NpyOutput::Probabilities);
        // Two blocks of two rows make the one array the header announces.
        w.push(p.view(), &[0, 2], &[Route::Review, Route::Auto]);
        w.push(p.view(), &[0, 2], &[Route::Review, Route::Auto]);
        let b = w.finish();
        assert_eq!((b.len() - 8 * 3 * 4) % 64, 0, "data aligned to 64 bytes");
        let back = read_matrix(&b, 10).unwrap();
        assert_eq!(back, ndarray::concatenate![ndarray::Axis(0), p, p]);
    }

    #[test]
    fn media_type_in_headers() {
        assert!(names_npy("application/x-npy"));
        assert!(names_npy("application/json, application/x-npy;q=0.9"));
        assert!(!names_npy("application/json"));
        assert!(!names_npy("*/*"));
    }
}
