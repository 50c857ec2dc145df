//! Tables in and out: reading uploaded CSV/XLSX rows (imports), and writing rows as CSV or XLSX
//! as they come from the database (exports), so a large export never sits whole in memory.

use std::io::Cursor;

use axum::{
    body::Body,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use shared::http::{ApiError, ApiResult, FieldError};
use tokio::sync::mpsc;

/// The XLSX media type.
pub(crate) const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// One cell of an exported row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
    Empty,
}

impl Cell {
    fn to_text(&self) -> String {
        match self {
            Cell::Text(text) => text.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Time(time) => time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            Cell::Empty => String::new(),
        }
    }

    /// The cell as CSV text. Text that a spreadsheet would read as a formula (starting with `=`,
    /// `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, OWASP's rule against CSV
    /// injection: a buyer's e-mail never becomes a live formula in a brand's spreadsheet.
    /// Numbers and times are ours and never start that way except for a minus sign.
    fn to_csv(&self) -> String {
        match self {
            Cell::Text(text) if text.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{text}"),
            other => other.to_text(),
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell::Text(text)
    }
}
impl From<i64> for Cell {
    fn from(n: i64) -> Self {
        Cell::Int(n)
    }
}
impl From<i32> for Cell {
    fn from(n: i32) -> Self {
        Cell::Int(n.into())
    }
}
impl From<DateTime<Utc>> for Cell {
    fn from(time: DateTime<Utc>) -> Self {
        Cell::Time(time)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(value: Option<T>) -> Self {
        value.map_or(Cell::Empty, Into::into)
    }
}

/// The rows of an uploaded table (CSV or the first sheet of an XLSX), as text.
pub(crate) fn read_rows(content_type: &str, bytes: &[u8]) -> ApiResult<Vec<Vec<String>>> {
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media.as_str() {
        "text/csv" | "application/csv" => read_csv(bytes),
        XLSX => read_xlsx(bytes),
        _ => Err(ApiError::UnsupportedMediaType(format!("send text/csv or {XLSX}"))),
    }
}

fn read_csv(bytes: &[u8]) -> ApiResult<Vec<Vec<String>>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            ApiError::Validation(vec![FieldError::new(format!("rows[{}]", index + 1), format!("cannot be read: {e}"))])
        })?;
        rows.push(record.iter().map(str::to_owned).collect());
    }
    Ok(rows)
}

/// The most cells the used area of an imported sheet may span, empty ones included (4 Mi: a
/// million rows of four columns). A few bytes can declare a cell at `XFD1048576`: the area is
/// checked as cells are read, before anything is allocated for it.
const MAX_XLSX_CELLS: u64 = 1 << 22;

fn read_xlsx(bytes: &[u8]) -> ApiResult<Vec<Vec<String>>> {
    let unreadable =
        |e: String| ApiError::Validation(vec![FieldError::new("body", format!("is not a readable XLSX file: {e}"))]);
    // calamine 0.38 reads a cell reference such as `r="AAAAAAAA1"` with unchecked arithmetic: a
    // panic where overflow checks are on (debug builds, tests), a wrong position otherwise
    // (tafia/calamine#694). Such a file is refused either way.
    std::panic::catch_unwind(|| xlsx_cells(bytes))
        .unwrap_or_else(|_| Err("a cell reference is out of range".into()))
        .map_err(unreadable)
}

/// The first sheet's used area, row by row, as `Range::rows` would give it, but without building
/// calamine's dense `Range` (one cell at `XFD1048576` made that 550 GB and aborted the process).
fn xlsx_cells(bytes: &[u8]) -> Result<Vec<Vec<String>>, String> {
    use calamine::{Data, DataRef, Reader, Xlsx, XlsxError};
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let name = workbook.sheet_names().into_iter().next().ok_or("it has no sheet")?;
    let mut reader = match workbook.worksheet_cells_reader(&name) {
        Ok(reader) => reader,
        Err(XlsxError::NotAWorksheet(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut cells = Vec::new();
    let (mut first, mut last) = ((u32::MAX, u32::MAX), (0, 0));
    let too_large = || format!("its cells span more than {MAX_XLSX_CELLS} cells");
    while let Some(cell) = reader.next_cell().map_err(|e| e.to_string())? {
        if *cell.get_value() == DataRef::Empty {
            continue;
        }
        let (row, col) = cell.get_position();
        first = (first.0.min(row), first.1.min(col));
        last = (last.0.max(row), last.1.max(col));
        let span = (u64::from(last.0 - first.0) + 1) * (u64::from(last.1 - first.1) + 1);
        if span > MAX_XLSX_CELLS || cells.len() as u64 >= MAX_XLSX_CELLS {
            return Err(too_large());
        }
        cells.push(((row, col), Data::from(cell.get_value().clone()).to_string()));
    }
    if cells.is_empty() {
        return Ok(Vec::new());
    }
    let width = (last.1 - first.1) as usize + 1;
    let mut rows = vec![vec![String::new(); width]; (last.0 - first.0) as usize + 1];
    for ((row, col), text) in cells {
        rows[(row - first.0) as usize][(col - first.1) as usize] = text;
    }
    Ok(rows)
}

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Xlsx,
}

/// Rows arriving from a producer task; an `Err` ends the export early.
pub(crate) type Rows = mpsc::Receiver<anyhow::Result<Vec<Cell>>>;

/// The export as a download named `<name>.<ext>`: CSV streamed row by row; XLSX written in
/// constant memory to a temporary file, then streamed.
pub(crate) async fn respond(
    format: Format,
    name: &str,
    columns: &'static [&'static str],
    rows: Rows,
) -> ApiResult<Response> {
    let (body, media, ext) = match format {
        Format::Csv => (csv_body(columns, rows), "text/csv; charset=utf-8", "csv"),
        Format::Xlsx => (xlsx_body(columns, rows).await?, XLSX, "xlsx"),
    };
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}.{ext}\""))
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(media)), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

fn csv_body(columns: &'static [&'static str], rows: Rows) -> Body {
    fn line(cells: impl IntoIterator<Item = String>) -> std::io::Result<bytes::Bytes> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(cells)?;
        writer.into_inner().map(bytes::Bytes::from).map_err(|e| std::io::Error::other(e.to_string()))
    }
    let header = futures_util::stream::once(async move { line(columns.iter().map(|c| (*c).to_owned())) });
    let body = futures_util::stream::unfold(rows, |mut rows| async move {
        let next = rows.recv().await?;
        let chunk = next.map_err(std::io::Error::other).and_then(|cells| line(cells.iter().map(Cell::to_csv)));
        Some((chunk, rows))
    });
    Body::from_stream(futures_util::StreamExt::chain(header, body))
}

async fn xlsx_body(columns: &'static [&'static str], mut rows: Rows) -> ApiResult<Body> {
    let path = std::env::temp_dir().join(format!("brandmint-export-{}.xlsx", uuid::Uuid::new_v4()));
    let written = path.clone();
    let result = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        use rust_xlsxwriter::{Format, Workbook};
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet_with_constant_memory()?;
        let bold = Format::new().set_bold();
        let time = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
        for (col, name) in (0u16..).zip(columns) {
            sheet.write_string_with_format(0, col, *name, &bold)?;
        }
        let mut row_number = 1u32;
        while let Some(cells) = rows.blocking_recv() {
            for (col, cell) in (0u16..).zip(cells?) {
                match cell {
                    Cell::Text(text) => drop(sheet.write_string(row_number, col, text)?),
                    #[allow(clippy::cast_precision_loss)] // minor units and ids stay far below 2^53
                    Cell::Int(n) => drop(sheet.write_number(row_number, col, n as f64)?),
                    Cell::Time(at) => drop(sheet.write_datetime_with_format(row_number, col, at.naive_utc(), &time)?),
                    Cell::Empty => {}
                }
            }
            row_number += 1;
        }
        workbook.save(&written)?;
        Ok(())
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    if let Err(e) = result {
        drop(tokio::fs::remove_file(&path).await);
        return Err(ApiError::Internal(e));
    }
    let file = tokio::fs::File::open(&path).await.map_err(|e| ApiError::Internal(e.into()))?;
    // Unlinked now; the open handle keeps the bytes until the download ends.
    drop(tokio::fs::remove_file(&path).await);
    Ok(Body::from_stream(tokio_util::io::ReaderStream::new(file)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_rows_are_read_as_text_and_a_broken_row_is_named() {
        let rows = super::read_rows("text/csv; charset=utf-8", b"code\nA1\n\"B,2\"\n").unwrap();
        assert_eq!(rows, vec![vec!["code"], vec!["A1"], vec!["B,2"]]);
        assert!(super::read_rows("text/csv", b"A1\n\xff\xfe\n").is_err());
        assert!(super::read_rows("application/pdf", b"%PDF").is_err());
        assert!(super::read_rows(super::XLSX, b"not a zip").is_err());
    }
}

/// Fuzz targets: an import is whatever bytes a brand uploads, under whatever `Content-Type`.
/// Reading never panics, and a table written by the usual tools reads back exactly. 256 cases
/// each (64 for those writing an XLSX file per case), or `PROPTEST_CASES`.
#[cfg(test)]
mod fuzz {
    #![allow(clippy::unwrap_used)]

    use proptest::{prelude::*, sample::Index};

    use super::{XLSX, read_rows};

    /// A cell as spreadsheets and exports make them: quotes, separators, line breaks, a BOM,
    /// formula prefixes, any Unicode.
    fn cell() -> impl Strategy<Value = String> {
        prop_oneof![
            2 => "[A-Za-z0-9 ,;\"'=+@\t\r\n\u{feff}-]{0,24}",
            1 => "[=+@-][A-Za-z0-9(),:;\"]{0,24}",
            1 => "\\PC{0,16}",
        ]
    }

    /// Rows of cells, one of them now and then huge (up to 200 kB of quotes).
    fn table() -> impl Strategy<Value = Vec<Vec<String>>> {
        let huge = proptest::option::weighted(0.2, (1usize..100_000, any::<Index>(), any::<Index>()));
        (prop::collection::vec(prop::collection::vec(cell(), 1..6), 1..20), huge).prop_map(|(mut rows, huge)| {
            if let Some((size, row, col)) = huge {
                let n = rows.len();
                let row = &mut rows[row.index(n)];
                let at = col.index(row.len());
                row[at] = "x\"".repeat(size);
            }
            rows
        })
    }

    fn csv(rows: &[Vec<String>], crlf: bool) -> Vec<u8> {
        let terminator = if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') };
        let mut writer = csv::WriterBuilder::new().flexible(true).terminator(terminator).from_writer(Vec::new());
        for row in rows {
            writer.write_record(row).unwrap();
        }
        writer.into_inner().unwrap()
    }

    fn xlsx(rows: &[Vec<String>]) -> Vec<u8> {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        for (r, row) in (0u32..).zip(rows) {
            for (c, cell) in (0u16..).zip(row) {
                sheet.write_string(r, c, cell).unwrap();
            }
        }
        workbook.save_to_buffer().unwrap()
    }

    fn content_type() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("text/csv".to_owned()),
            Just("TEXT/CSV; charset=utf-8".to_owned()),
            Just("application/csv".to_owned()),
            Just(XLSX.to_owned()),
            Just(format!("{XLSX}; x=y")),
            ".{0,60}",
        ]
    }

    /// CSV-shaped text from the characters that matter to a CSV reader.
    fn csv_text() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "[a,;\"\n\r =+@\t-]{0,400}".prop_map(String::into_bytes),
            "(\u{feff})?([a\",\n\r]|\\PC){0,200}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..1024),
        ]
    }

    /// `bytes`, an XLSX file, with its first sheet's XML edited.
    fn edit_sheet(bytes: &[u8], edit: impl Fn(String) -> String) -> Vec<u8> {
        use std::io::{Read, Write};
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).unwrap();
            let name = entry.name().unwrap().into_owned();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            if name == "xl/worksheets/sheet1.xml" {
                content = edit(String::from_utf8(content).unwrap()).into_bytes();
            }
            let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            out.start_file(name, options).unwrap();
            out.write_all(&content).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    #[test]
    fn xlsx_imports_spanning_the_whole_grid_or_beyond_it_are_refused() {
        // Found by the targets below: a cell reference overflowing u32 panicked in calamine.
        let file = xlsx(&[vec!["A".to_owned()], vec!["B".to_owned()]]);
        assert_eq!(read_rows(XLSX, &file).unwrap(), [["A"], ["B"]]);
        for far in ["AAAAAAAAA2", "A99999999999", "XFD1048576"] {
            let crafted = edit_sheet(&file, |xml| xml.replace("r=\"A2\"", &format!("r=\"{far}\"")));
            assert!(read_rows(XLSX, &crafted).is_err(), "{far}");
        }
        // Found reading calamine: two cells of a valid sheet, in its corners, made it build a
        // 550 GB range and abort the process.
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "A").unwrap();
        sheet.write_string(1_048_575, 16_383, "Z").unwrap();
        let corners = workbook.save_to_buffer().unwrap();
        assert!(corners.len() < 10_000);
        assert!(read_rows(XLSX, &corners).is_err());
        // A million rows of one column is a large import, not an attack.
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "A").unwrap();
        sheet.write_string(1_048_575, 0, "Z").unwrap();
        let rows = read_rows(XLSX, &workbook.save_to_buffer().unwrap()).unwrap();
        assert_eq!(
            (rows.len(), rows[0].as_slice(), rows[1_048_575].as_slice()),
            (1_048_576, &["A".to_owned()][..], &["Z".to_owned()][..])
        );
    }

    proptest! {
        #[test]
        fn imports_never_panic_on_any_bytes_under_any_content_type(
            content_type in content_type(), bytes in prop_oneof![csv_text(), prop::collection::vec(any::<u8>(), 0..4096)],
        ) {
            // Err is fine (unsupported type, unreadable row); a panic is not.
            let _ = read_rows(&content_type, &bytes);
        }

        #[test]
        fn csv_imports_never_panic_and_read_every_row_written_by_a_csv_writer(
            rows in table(), bom in any::<bool>(), crlf in any::<bool>(), noise in csv_text(),
        ) {
            let mut bytes = csv(&rows, crlf);
            let mut expected = rows;
            if bom {
                bytes.splice(0..0, *b"\xef\xbb\xbf");
            } else if bytes.starts_with(b"\xef\xbb\xbf") {
                // A BOM starting the file is not data: an unquoted first cell starting with one loses it.
                expected[0][0] = expected[0][0].replacen('\u{feff}', "", 1);
                if expected[0] == [""] {
                    // The first line was only a BOM: an empty line, skipped.
                    expected.remove(0);
                }
            }
            prop_assert_eq!(read_rows("text/csv", &bytes).unwrap(), expected);
            bytes.extend_from_slice(&noise);
            let _ = read_rows("text/csv", &bytes);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

        #[test]
        fn xlsx_imports_read_back_what_a_spreadsheet_wrote(
            rows in prop::collection::vec(prop::collection::vec("[ -~]{1,20}|[=+@-][A-Z0-9()]{1,8}|\\PC{1,8}", 3..=3), 1..12),
        ) {
            prop_assert_eq!(read_rows(XLSX, &xlsx(&rows)).unwrap(), rows);
        }

        #[test]
        fn xlsx_imports_never_panic_on_damaged_files(
            rows in prop::collection::vec(prop::collection::vec("[ -~]{1,20}", 1..4), 1..8),
            edits in prop::collection::vec((any::<Index>(), any::<u8>()), 0..8),
            cut in proptest::option::of(any::<Index>()),
        ) {
            let mut bytes = xlsx(&rows);
            for (at, byte) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len()));
            }
            let _ = read_rows(XLSX, &bytes);
        }
    }

    /// `default` cases unless `PROPTEST_CASES` says how many.
    fn cases(default: u32) -> u32 {
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(default)
    }
}
