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
        let width = columns.len();
        let mut flat: Vec<f64> = Vec::with_capacity(bytes.len() / 6);
        let mut rows = 0usize;
        let mut record = csv::ByteRecord::new();
        loop {
            let more = rdr.read_byte_record(&mut record).map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                DataError(format!("{name}: line {line}: {e}"))
            })?;
            if !more {
                break;
            }
            let line = record
                .position()
                .map(|p| p.line())
                .unwrap_or(rows as u64 + 2);
            if record.len() == 1 && record.get(0).is_some_and(|f| f.trim_ascii().is_empty()) {
                continue; // blank line
            }
            if let Some(c) = record.iter().position(|f| f.contains(&b'\n')) {
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
        if rows == 0 {
            return Err(DataError(format!("{name}: no data rows after the header")));
        }
        let values = Array2::from_shape_vec((rows, width), flat)
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

/// Parses one numeric cell; the error says why in words.
pub fn parse_cell(field: &[u8]) -> Result<f64, String> {
    let s = std::str::from_utf8(field).map_err(|_| "the value is not valid UTF-8".to_string())?;
    let t = s.trim();
    if t.is_empty() {
        return Err("empty value (missing values are not allowed)".into());
    }
    let v: f64 = t
        .parse()
        .map_err(|_| format!("{} is not a number", shorten(t)))?;
    if !v.is_finite() {
        return Err(format!("{} is not a finite number", shorten(t)));
    }
    Ok(v)
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
}
