//! Tabular data: parsing a labelled CSV (bytes read from a commit or a local file) into a
//! numeric table, and the row selection the pipeline needs.
//!
//! Owns the CSV dialect (header row, comma separated, every cell numeric and finite) and its
//! errors, which name the file, the line and the column. It does no I/O itself.

use ndarray::Array2;

/// A fully numeric table, row-major.
#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<String>,
    pub values: Array2<f64>,
}

/// A data error, phrased for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

impl Table {
    /// Parses CSV `bytes`; `name` is the file name used in messages.
    pub fn parse_csv(bytes: &[u8], name: &str) -> Result<Table, DataError> {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(DataError(format!(
                "{name}: the file is empty (expected a header line and data rows)"
            )));
        }
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(bytes);
        let header = rdr
            .byte_headers()
            .map_err(|e| DataError(format!("{name}: line 1: cannot read the header: {e}")))?
            .clone();
        let mut columns = Vec::with_capacity(header.len());
        for (i, h) in header.iter().enumerate() {
            let h = std::str::from_utf8(h).map_err(|_| {
                DataError(format!(
                    "{name}: line 1, column {}: the header is not valid UTF-8",
                    i + 1
                ))
            })?;
            let h = h.trim().trim_start_matches('\u{feff}').to_string();
            if h.is_empty() {
                return Err(DataError(format!(
                    "{name}: line 1, column {}: empty column name",
                    i + 1
                )));
            }
            if columns.contains(&h) {
                return Err(DataError(format!(
                    "{name}: line 1: column {h:?} appears twice in the header"
                )));
            }
            columns.push(h);
        }
        if let [only] = columns.as_slice() {
            if let Some(sep) = [';', '\t', '|'].into_iter().find(|c| only.contains(*c)) {
                return Err(DataError(format!(
                    "{name}: line 1: the header is a single column {}; the file must be comma-separated (it looks separated by {sep:?})",
                    shorten(only)
                )));
            }
        }
        // The body: lines from the first after the header. A body without quotes (and with no
        // carriage return but in CRLF line ends) is plain: its records are its lines and its
        // fields are what lies between commas, so it is split directly; a large one is cut
        // in two at a line break and parsed on two threads. Any other body goes through the
        // csv reader in one piece (a quoted field may hold a comma or a line break).
        let start = (rdr.position().byte() as usize).min(bytes.len());
        let first_line = rdr.position().line().max(2);
        let body = &bytes[start..];
        let mid = (body.len() >= PARALLEL_BYTES)
            .then(|| memchr::memchr(b'\n', &body[body.len() / 2..]))
            .flatten()
            .map(|i| body.len() / 2 + i + 1);
        let at =
            |e: RowError, base: u64| DataError(format!("{name}: line {}{}", base + e.line, e.what));
        let plain = match mid {
            None => parse_plain_rows(body, &columns, body.len()).map_err(|e| at(e, first_line))?,
            Some(mid) => {
                let (head, tail) = body.split_at(mid);
                let (a, b) = std::thread::scope(|s| {
                    let t = s.spawn(|| parse_plain_rows(tail, &columns, tail.len()));
                    let a = parse_plain_rows(head, &columns, body.len());
                    (a, t.join().expect("the parsing thread panicked"))
                });
                match (a, b) {
                    (Err(e), _) => return Err(at(e, first_line)),
                    (Ok(Some(a)), Err(e)) => return Err(at(e, first_line + a.lines)),
                    (Ok(Some(mut a)), Ok(Some(b))) => {
                        a.values.extend_from_slice(&b.values);
                        Some(Plain {
                            values: a.values,
                            rows: a.rows + b.rows,
                            lines: a.lines + b.lines,
                        })
                    }
                    _ => None,
                }
            }
        };
        let (flat, rows) = match plain {
            Some(p) => (p.values, p.rows),
            None => parse_rows(body, first_line, &columns, name)?,
        };
        if rows == 0 {
            return Err(DataError(format!("{name}: no data rows after the header")));
        }
        let values = Array2::from_shape_vec((rows, columns.len()), flat)
            .map_err(|e| DataError(format!("{name}: {e}")))?;
        Ok(Table { columns, values })
    }

    pub fn rows(&self) -> usize {
        self.values.nrows()
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// From this size on, the body of a file without quotes is parsed on two threads.
const PARALLEL_BYTES: usize = 1 << 20;

/// What [`parse_plain_rows`] made of its part of the body.
struct Plain {
    values: Vec<f64>,
    rows: usize,
    /// Line breaks in the part (the next part's first line is this many lines further).
    lines: u64,
}

/// An error at a line counted from 0 at the part's first line; `what` follows "line N".
struct RowError {
    line: u64,
    what: String,
}

/// [`parse_rows`] for a plain part of the body (no quote, and a carriage return only before a
/// line feed): its records are its lines and its fields lie between commas, so the same rows,
/// values and errors come without the csv reader's state machine. `None` when the part is
/// not plain, found at the first line holding a quote or a lone carriage return. `room_for` is the number of bytes whose values the result is sized for.
fn parse_plain_rows(
    part: &[u8],
    columns: &[String],
    room_for: usize,
) -> Result<Option<Plain>, RowError> {
    let width = columns.len();
    // Room for the rows of `room_for` bytes that the first line's length suggests, and a
    // little more (the first part of a body split in two takes the second's values too).
    let first_len = memchr::memchr(b'\n', part).unwrap_or(part.len()) + 1;
    let mut flat: Vec<f64> = Vec::with_capacity((room_for / first_len + 16) * width * 9 / 8);
    let mut rows = 0usize;
    let mut line_no = 0u64;
    let mut rest = part;
    while !rest.is_empty() {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let this_line = line_no;
        line_no += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue; // blank line
        }
        let start = flat.len();
        if !parse_plain_line(line, width, &mut flat) {
            // A quote, or a carriage return that does not end the line: the part is not
            // plain (the fast pass fails on every such line, so none slips through).
            if memchr::memchr2(b'"', b'\r', line).is_some() {
                return Ok(None);
            }
            // Something on this line is off: the careful pass names what.
            flat.truncate(start);
            let fields = memchr::memchr_iter(b',', line).count() + 1;
            if fields != width {
                return Err(RowError {
                    line: this_line,
                    what: format!(": expected {width} fields like the header, found {fields}"),
                });
            }
            for (field, column) in line.split(|&b| b == b',').zip(columns) {
                flat.push(parse_cell(field).map_err(|why| RowError {
                    line: this_line,
                    what: format!(", column {column:?}: {why}"),
                })?);
            }
        }
        rows += 1;
    }
    Ok(Some(Plain {
        values: flat,
        rows,
        // Each line ended by a line break (a last line without one is not counted).
        lines: line_no - u64::from(part.last().is_some_and(|&b| b != b'\n')),
    }))
}

/// The fast pass over one plain line: exactly `width` finite numbers separated by commas,
/// with optional spaces, tabs or form feeds around each, pushed onto `flat`. Returns false (having
/// pushed some values, maybe) when the line is anything else.
#[inline]
fn parse_plain_line(line: &[u8], width: usize, flat: &mut Vec<f64>) -> bool {
    let skip = |pos: &mut usize| {
        // ASCII whitespace but the carriage return, which ends a record in CSV.
        while line
            .get(*pos)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\x0c'))
        {
            *pos += 1;
        }
    };
    let mut pos = 0;
    for c in 0..width {
        skip(&mut pos);
        let Ok((v, n)) = fast_float2::parse_partial::<f64, _>(&line[pos..]) else {
            return false;
        };
        if !v.is_finite() {
            return false;
        }
        flat.push(v);
        pos += n;
        skip(&mut pos);
        if c + 1 < width {
            if line.get(pos) != Some(&b',') {
                return false;
            }
            pos += 1;
        }
    }
    pos == line.len()
}

/// Parses data lines (no header; `first_line` is the file's line number of the first one)
/// into row-major values and a row count.
fn parse_rows(
    body: &[u8],
    first_line: u64,
    columns: &[String],
    name: &str,
) -> Result<(Vec<f64>, usize), DataError> {
    let width = columns.len();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut flat: Vec<f64> = Vec::with_capacity(body.len() / 6);
    let mut rows = 0usize;
    let mut record = csv::ByteRecord::new();
    let file_line = |l: u64| first_line + l.saturating_sub(1);
    loop {
        let more = rdr.read_byte_record(&mut record).map_err(|e| {
            let line = e.position().map(|p| file_line(p.line())).unwrap_or(0);
            DataError(format!("{name}: line {line}: {e}"))
        })?;
        if !more {
            break;
        }
        let line = record
            .position()
            .map(|p| file_line(p.line()))
            .unwrap_or(first_line + rows as u64);
        if record.len() == 1 && record.get(0).is_some_and(|f| f.trim_ascii().is_empty()) {
            continue; // blank line
        }
        if record.as_slice().contains(&b'\n') {
            let c = record.iter().position(|f| f.contains(&b'\n')).unwrap_or(0);
            return Err(DataError(format!(
                "{name}: line {line}, column {}: a quoted value runs over several lines (is a closing quote missing?)",
                columns
                    .get(c)
                    .map(|h| format!("{h:?}"))
                    .unwrap_or_else(|| (c + 1).to_string())
            )));
        }
        if record.len() != width {
            return Err(DataError(format!(
                "{name}: line {line}: expected {width} fields like the header, found {}",
                record.len()
            )));
        }
        for (c, field) in record.iter().enumerate() {
            flat.push(parse_cell(field).map_err(|why| {
                DataError(format!(
                    "{name}: line {line}, column {:?}: {why}",
                    columns[c]
                ))
            })?);
        }
        rows += 1;
    }
    Ok((flat, rows))
}

/// Parses one numeric cell; the error says why in words.
pub fn parse_cell(field: &[u8]) -> Result<f64, String> {
    let t = field.trim_ascii();
    if t.is_empty() {
        return Err("empty value (missing values are not allowed)".into());
    }
    match fast_float2::parse::<f64, _>(t) {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!(
            "{} is not a finite number",
            shorten(&String::from_utf8_lossy(t))
        )),
        Err(_) => match std::str::from_utf8(t) {
            Ok(s) => Err(format!("{} is not a number", shorten(s))),
            Err(_) => Err("the value is not valid UTF-8".to_string()),
        },
    }
}

/// A value quoted for a message, cut to a readable length (a broken file can put megabytes in
/// one field).
fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &s[..cut], s.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_skips_blank_lines() {
        let t = Table::parse_csv(b"a,b\n1,2.5\n\n-3,4e2\n", "x.csv").unwrap();
        assert_eq!(t.columns, vec!["a", "b"]);
        assert_eq!(t.values.shape(), &[2, 2]);
        assert_eq!(t.values[[1, 1]], 400.0);
    }

    #[test]
    fn non_numeric_names_line_and_column() {
        let e = Table::parse_csv(b"a,b\n1,2\n3,abc\n", "x.csv")
            .unwrap_err()
            .0;
        assert_eq!(e, "x.csv: line 3, column \"b\": \"abc\" is not a number");
    }

    #[test]
    fn nan_is_refused() {
        let e = Table::parse_csv(b"a,b\n1,NaN\n", "x.csv").unwrap_err().0;
        assert!(
            e.contains("line 2") && e.contains("not a finite number"),
            "{e}"
        );
    }

    #[test]
    fn other_separators_are_named() {
        let e = Table::parse_csv(b"a;b;y\n1;2;0\n", "x.csv").unwrap_err().0;
        assert_eq!(
            e,
            "x.csv: line 1: the header is a single column \"a;b;y\"; the file must be comma-separated (it looks separated by ';')"
        );
        let e = Table::parse_csv(b"a\tb\n1\t2\n", "x.csv").unwrap_err().0;
        assert!(e.contains("separated by '\\t'"), "{e}");
        // A real one-column file still parses.
        assert_eq!(Table::parse_csv(b"a\n1\n", "x.csv").unwrap().rows(), 1);
    }

    #[test]
    fn unclosed_quote_is_named_not_a_ragged_row() {
        let e = Table::parse_csv(b"a,b,c\n1,2,3\n4,\"5,6\n7,8,9\n", "x.csv")
            .unwrap_err()
            .0;
        assert_eq!(
            e,
            "x.csv: line 3, column \"b\": a quoted value runs over several lines (is a closing quote missing?)"
        );
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(10_000);
        let e = Table::parse_csv(format!("a\n{long}\n").as_bytes(), "x.csv")
            .unwrap_err()
            .0;
        assert!(e.len() < 200, "{e}");
        assert!(e.contains("(10000 bytes) is not a number"), "{e}");
    }

    #[test]
    fn ragged_and_empty() {
        let e = Table::parse_csv(b"a,b\n1\n", "x.csv").unwrap_err().0;
        assert!(e.contains("line 2: expected 2 fields"), "{e}");
        let e = Table::parse_csv(b"a,b\n", "x.csv").unwrap_err().0;
        assert!(e.contains("no data rows"), "{e}");
        let e = Table::parse_csv(b"", "x.csv").unwrap_err().0;
        assert!(e.contains("empty"), "{e}");
    }

    /// A file past `PARALLEL_BYTES` is parsed in two halves; the rows, their order and the
    /// line numbers in errors are those of one pass.
    #[test]
    fn large_files_parse_in_two_halves_like_one() {
        let rows = 80_000;
        let mut text = String::from("a,b\n");
        for i in 0..rows {
            if i == 10 {
                text.push('\n'); // a blank line (line 12) in the first half
            }
            text.push_str(&format!("{i},{}\n", i as f64 * 0.25));
        }
        assert!(text.len() > PARALLEL_BYTES);
        let t = Table::parse_csv(text.as_bytes(), "big.csv").unwrap();
        assert_eq!(t.rows(), rows);
        for (i, r) in t.values.rows().into_iter().enumerate() {
            assert_eq!((r[0], r[1]), (i as f64, i as f64 * 0.25), "row {i}");
        }
        // A quoted value in the second half: the whole body goes through the csv reader.
        let quoted = text.replacen("60000,15000\n", "60000,\"15000\"\n", 1);
        let q = Table::parse_csv(quoted.as_bytes(), "big.csv").unwrap();
        assert_eq!(q.values, t.values);
        // Row 70,000 sits on line 70,003 (the header, the blank line, 1-based lines).
        let bad = text.replacen("70000,17500\n", "70000,x\n", 1);
        let e = Table::parse_csv(bad.as_bytes(), "big.csv").unwrap_err().0;
        assert_eq!(
            e,
            "big.csv: line 70003, column \"b\": \"x\" is not a number"
        );
        let bad = text.replacen("300,75\n", "300\n", 1);
        let e = Table::parse_csv(bad.as_bytes(), "big.csv").unwrap_err().0;
        assert_eq!(
            e,
            "big.csv: line 303: expected 2 fields like the header, found 1"
        );
    }

    /// The plain-body splitter and the csv reader agree, value for value and error for error.
    #[test]
    fn plain_bodies_parse_like_the_csv_reader() {
        let columns = vec!["a".to_string(), "b".to_string()];
        for body in [
            "1,2\n3,4\n",
            "1,2\r\n3,4\r\n",
            " 1 , 2 \n\n   \n3,4",
            "1,2,\n",
            "1\n",
            "1,x\n",
            "1,\n",
            "1,inf\n",
            "1,1e400\n",
            "-0.5,+7.25e-3\n\n",
            ",\n",
            "1,2\n,,\n",
        ] {
            let plain = parse_plain_rows(body.as_bytes(), &columns, body.len())
                .map(|p| {
                    let p = p.expect("a plain body");
                    (p.values, p.rows)
                })
                .map_err(|e| format!("x.csv: line {}{}", 2 + e.line, e.what));
            let csv = parse_rows(body.as_bytes(), 2, &columns, "x.csv").map_err(|e| e.0);
            assert_eq!(plain, csv, "{body:?}");
        }
        // A quote or a lone carriage return anywhere hands the body to the csv reader.
        for body in ["1,\"2\"\n", "1,2\n3,4\r5,6\n", "1\r,2\n", "1,2\n\"3\",4\n"] {
            assert!(
                parse_plain_rows(body.as_bytes(), &columns, body.len()).is_ok_and(|p| p.is_none()),
                "{body:?}"
            );
        }
    }
}
