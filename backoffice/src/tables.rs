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

fn read_xlsx(bytes: &[u8]) -> ApiResult<Vec<Vec<String>>> {
    use calamine::{Reader, Xlsx};
    let unreadable =
        |e: String| ApiError::Validation(vec![FieldError::new("body", format!("is not a readable XLSX file: {e}"))]);
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| unreadable(e.to_string()))?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or_else(|| unreadable("it has no sheet".into()))?
        .map_err(|e| unreadable(e.to_string()))?;
    Ok(range.rows().map(|row| row.iter().map(ToString::to_string).collect()).collect())
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
