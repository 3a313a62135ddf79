//! Events as JSON lines, for archives and for other tools.

use crate::ReplayError;
use events::store::StoreError;
use events::EventStore;
use std::io::Write;

#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Only events after this position.
    pub from_position: i64,
    /// Only this stream (exact name), or a category when it ends with `-*` (`order-*`).
    pub stream: Option<String>,
}

impl ExportFilter {
    fn matches(&self, stream: &str) -> bool {
        match self.stream.as_deref() {
            None => true,
            Some(pattern) => match pattern.strip_suffix('*') {
                Some(prefix) => stream.starts_with(prefix),
                None => stream == pattern,
            },
        }
    }
}

/// Writes one JSON object per line; returns how many. A closed pipe (`| head`) ends quietly.
pub fn export(store: &EventStore, filter: &ExportFilter, out: &mut dyn Write) -> Result<u64, ReplayError> {
    let mut written = 0u64;
    let mut pipe_closed = false;
    let result = store.for_each_after(filter.from_position, None, |event| {
        if pipe_closed || !filter.matches(&event.stream) {
            return Ok(());
        }
        let line = serde_json::to_string(&event)
            .map_err(|e| StoreError::CorruptRow { position: event.position, reason: e.to_string() })?;
        match writeln!(out, "{line}") {
            Ok(()) => written += 1,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => pipe_closed = true,
            Err(e) => {
                return Err(StoreError::CorruptRow {
                    position: event.position,
                    reason: format!("writing the export: {e}"),
                })
            }
        }
        Ok(())
    });
    result?;
    if !pipe_closed {
        out.flush().map_err(|source| ReplayError::Io { context: "flushing the export".into(), source })?;
    }
    Ok(written)
}
