//! The current list as CSV (`GET /orders.csv`, with the list's filters and sort): Japanese
//! headers and JST times, UTF-8 with a BOM so Excel opens it as such, or Shift_JIS (CP932) with
//! `?encoding=sjis`. The rows are streamed from one read transaction (a consistent snapshot) in
//! chunks through a bounded channel, so 100,000 orders take the memory of a few hundred rows.

use super::list::{filter_of, ListQuery};
use super::marketplace_label;
use crate::web::views::jst;
use crate::web::{AppState, WebError, WebResult};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use events::order::Status;
use projections::queries::{self, OrderRow};
use projections::OrderFilter;
use std::sync::Arc;

const HEADERS: [&str; 14] = [
    "注文番号",
    "マーケット",
    "注文日 (JST)",
    "注文者",
    "商品",
    "ステータス",
    "ステータス名",
    "MCF注文ID",
    "配送速度",
    "配送業者",
    "追跡番号",
    "現在の問題",
    "保留",
    "最終更新 (JST)",
];

/// Rows written before a chunk is handed to the response.
const ROWS_PER_CHUNK: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// UTF-8 with a byte-order mark: Excel on Windows reads it as UTF-8.
    Utf8Bom,
    /// Shift_JIS as Windows writes it (CP932); a character it lacks becomes 〓.
    ShiftJis,
}

impl Encoding {
    fn parse(text: &str) -> WebResult<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "utf-8" | "utf8" => Ok(Self::Utf8Bom),
            "sjis" | "shift_jis" | "cp932" => Ok(Self::ShiftJis),
            _ => Err(WebError::BadRequest("文字コードは utf-8 か sjis を指定してください".into())),
        }
    }

    fn charset(self) -> &'static str {
        match self {
            Self::Utf8Bom => "utf-8",
            Self::ShiftJis => "Shift_JIS",
        }
    }

    fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Self::Utf8Bom => text.as_bytes().to_vec(),
            Self::ShiftJis => shift_jis(text),
        }
    }
}

/// `text` in CP932; characters CP932 lacks (some kanji variants, emoji) become 〓, as Japanese
/// software writes them.
fn shift_jis(text: &str) -> Vec<u8> {
    use encoding_rs::EncoderResult;
    let mut encoder = encoding_rs::SHIFT_JIS.new_encoder();
    let mut out = Vec::with_capacity(text.len() * 2);
    let mut rest = text;
    let mut buffer = [0u8; 4096];
    loop {
        let (result, read, written) = encoder.encode_from_utf8_without_replacement(rest, &mut buffer, true);
        out.extend_from_slice(&buffer[..written]);
        rest = &rest[read..];
        match result {
            EncoderResult::InputEmpty => return out,
            EncoderResult::OutputFull => {}
            EncoderResult::Unmappable(_) => out.extend_from_slice(&[0x81, 0xAC]), // 〓
        }
    }
}

/// A cell as a spreadsheet must not run it: text that starts like a formula gets a quote.
fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

fn record(row: &OrderRow) -> [String; 14] {
    let status = row.status.parse::<Status>().ok();
    [
        cell(&row.order_number),
        marketplace_label(&row.marketplace).to_owned(),
        row.ordered_at.as_deref().map(jst).unwrap_or_default(),
        cell(row.buyer_name.as_deref().unwrap_or_default()),
        cell(row.item_summary.as_deref().unwrap_or_default()),
        row.status.clone(),
        status.map(|s| s.label().to_owned()).unwrap_or_default(),
        cell(row.mcf_order_id.as_deref().unwrap_or_default()),
        row.shipping_speed.clone().unwrap_or_default(),
        cell(row.carrier.as_deref().unwrap_or_default()),
        cell(row.tracking_number.as_deref().unwrap_or_default()),
        cell(row.error.as_deref().unwrap_or_default()),
        cell(row.hold.as_deref().unwrap_or_default()),
        jst(&row.updated_at),
    ]
}

/// CSV lines for `records`, encoded.
fn lines<'a>(records: impl IntoIterator<Item = &'a [String; 14]>, encoding: Encoding) -> Result<Vec<u8>, String> {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    for record in records {
        writer.write_record(record.iter()).map_err(|e| e.to_string())?;
    }
    let text = writer.into_inner().map_err(|e| e.to_string())?;
    let text = String::from_utf8(text).map_err(|e| e.to_string())?;
    Ok(encoding.encode(&text))
}

/// Why an export stopped before its end.
#[derive(Debug, thiserror::Error)]
enum Stopped {
    #[error("reading the orders: {0}")]
    Store(#[from] events::StoreError),
    #[error("writing the CSV: {0}")]
    Csv(String),
    #[error("the client went away")]
    ClientGone,
}

/// Walks the filtered orders on a read connection, sending encoded chunks; stops when the
/// client goes away (the channel closes).
fn write_all(
    conn: &rusqlite::Connection,
    filter: &OrderFilter,
    encoding: Encoding,
    chunks: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<usize, Stopped> {
    let mut head = if encoding == Encoding::Utf8Bom { "\u{feff}".as_bytes().to_vec() } else { Vec::new() };
    head.extend(lines([&HEADERS.map(String::from)], encoding).map_err(Stopped::Csv)?);
    let send = |bytes: Vec<u8>| chunks.blocking_send(Ok(Bytes::from(bytes))).map_err(|_| Stopped::ClientGone);
    send(head)?;
    let mut pending: Vec<[String; 14]> = Vec::with_capacity(ROWS_PER_CHUNK);
    let mut written = 0;
    queries::for_each_order(conn, filter, |row| {
        pending.push(record(&row));
        if pending.len() == ROWS_PER_CHUNK {
            let chunk = lines(&pending, encoding).map_err(Stopped::Csv)?;
            written += pending.len();
            pending.clear();
            send(chunk)?;
        }
        Ok::<(), Stopped>(())
    })?;
    written += pending.len();
    send(lines(&pending, encoding).map_err(Stopped::Csv)?)?;
    Ok(written)
}

pub async fn csv(State(state): State<Arc<AppState>>, Query(query): Query<ListQuery>) -> WebResult<Response> {
    let filter = filter_of(&query)?;
    let encoding = Encoding::parse(&query.encoding)?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let db = state.db.clone();
    tokio::spawn(async move {
        let failed = sender.clone();
        let outcome = db.read(move |conn| Ok(write_all(conn, &filter, encoding, &sender))).await;
        match outcome {
            Ok(Ok(rows)) => tracing::info!(rows, charset = encoding.charset(), "orders exported as CSV"),
            Ok(Err(Stopped::ClientGone)) => tracing::info!("the CSV export's client went away"),
            Ok(Err(stopped)) => {
                tracing::warn!(%stopped, "the CSV export stopped");
                let _ = failed.send(Err(std::io::Error::other(stopped.to_string()))).await;
            }
            Err(error) => {
                tracing::error!(error = ?error.message(), "the CSV export could not read the ledger");
                let _ = failed.send(Err(std::io::Error::other("the ledger could not be read"))).await;
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    let name = format!("orders-{}.csv", state.db.now().with_timezone(&events::clock::jst()).format("%Y%m%d-%H%M"));
    Ok((
        [
            (header::CONTENT_TYPE, format!("text/csv; charset={}", encoding.charset())),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_jis_is_cp932_and_what_it_lacks_becomes_geta() {
        assert_eq!(shift_jis("注文"), encoding_rs::SHIFT_JIS.encode("注文").0.to_vec());
        assert_eq!(encoding_rs::SHIFT_JIS.decode(&shift_jis("髙橋 😀")).0, "髙橋 〓");
    }

    #[test]
    fn a_cell_that_looks_like_a_formula_is_quoted_and_commas_survive() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("1234-5678"), "1234-5678");
        let text = lines([&HEADERS.map(|_| "a, \"b\"".to_owned())], Encoding::Utf8Bom).unwrap();
        assert!(String::from_utf8(text).unwrap().starts_with("\"a, \"\"b\"\"\","));
    }
}
