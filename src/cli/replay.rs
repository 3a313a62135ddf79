//! `mcf-ledger replay …`: how an admin examines history. Never calls an outside system and
//! never writes to the events table.

use super::{open_ledger, CommandResult, Failure};
use clap::Subcommand;
use events::store::OpenMode;
use events::{EventStore, OrderKey};
use replay::export::{export, ExportFilter};
use replay::time_travel::{order_at, At};
use std::io::IsTerminal;
use std::path::Path;

#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// Drop and rebuild every projection from the events.
    Rebuild,
    /// Rebuild into a scratch copy and compare with the live projections; exit 1 on any difference.
    Verify,
    /// One order as it stood at a position or a time (default: now).
    Order {
        order: OrderKey,
        /// A position (e.g. 1042) or a time (RFC 3339, or "2026-11-22 15:45" in Japan time).
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Events as JSON lines on stdout.
    Export {
        /// Only events after this position.
        #[arg(long, default_value_t = 0)]
        from: i64,
        /// Only this stream, or a category such as `order-*`.
        #[arg(long)]
        stream: Option<String>,
    },
    /// Re-parse stored raw emails and API responses with today's parsers.
    Reparse,
    /// What happened in a time window, from the events alone: failing sources, alerts, orders
    /// that arrived (and were backfilled), orders that stood still, outside writes retried or
    /// left for an operator, operators' actions.
    Incident {
        /// Start of the window: Japan time ("2026-11-22 15:45") or RFC 3339 (default: 24 hours before --to).
        #[arg(long)]
        from: Option<String>,
        /// End of the window (default: now).
        #[arg(long)]
        to: Option<String>,
        /// Also write the report as one HTML file.
        #[arg(long, value_name = "FILE")]
        html: Option<std::path::PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Run one cycle against a copy of the ledger and the sandbox; print what it would append.
    DryRun,
}

pub fn run(command: ReplayCommand, database: &Path, config: &crate::config::Config) -> CommandResult {
    match command {
        ReplayCommand::Rebuild => {
            let mut ledger = projections::Ledger::open_for_rebuild(database)?;
            let report = replay::rebuild::rebuild(&mut ledger, std::io::stderr().is_terminal())?;
            say!(
                "rebuilt projections from {} events (up to position {}) in {:.2}s, {:.0} events/s",
                report.events,
                report.position,
                report.elapsed.as_secs_f64(),
                report.events_per_second()
            );
            Ok(())
        }
        ReplayCommand::Verify => verify(database),
        ReplayCommand::Order { order, at, json } => order_as_of(database, &order, at, json),
        ReplayCommand::Export { from, stream } => {
            let store = replay::open_for_examination(database)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let written = export(&store, &ExportFilter { from_position: from, stream }, &mut out)?;
            tracing::info!(events = written, "exported");
            Ok(())
        }
        ReplayCommand::Reparse => {
            let store = EventStore::open(database, OpenMode::ReadOnly)?;
            let report = crate::reparse::reparse(&store)?;
            for difference in &report.differences {
                say!(
                    "{} #{} {}:\n  recorded: {}\n  today:    {}",
                    difference.stream,
                    difference.position,
                    difference.what,
                    difference.recorded,
                    difference.today
                );
            }
            say!(
                "re-parsed {} emails and {} marketplace answers: {} would differ",
                report.mails,
                report.orders,
                report.differences.len()
            );
            Ok(())
        }
        ReplayCommand::DryRun => dry_run(database, config),
        ReplayCommand::Incident { from, to, html, json } => incident(database, config, from, to, html, json),
    }
}

/// A position, an RFC 3339 time, or a Japan-time "YYYY-MM-DD HH:MM[:SS]".
fn parse_at(text: &str) -> Result<At, Failure> {
    let text = text.trim();
    if let Ok(position) = text.parse::<i64>() {
        return Ok(At::Position(position));
    }
    if let Some(time) = events::clock::parse_time_input(text) {
        return Ok(At::Time(time));
    }
    Err(Failure::new(format!(
        "--at {text:?} is neither a position nor a time (try 1042, 2026-11-22T06:45:00Z or \"2026-11-22 15:45\")"
    )))
}

fn dry_run(database: &Path, config: &crate::config::Config) -> CommandResult {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Failure::new)?;
    let outcome = runtime.block_on(crate::dry_run::dry_run(database, &config.sku_master)).map_err(Failure::new)?;
    for event in &outcome.appended {
        println!("{}", serde_json::to_string(event)?);
    }
    eprintln!(
        "dry run: one cycle on a scratch copy ({} events) against the sandboxes (Amazon holds {} units of every SKU in master.xlsx) would append {} events; the ledger {} was not changed",
        outcome.scratch_events_before,
        crate::dry_run::SANDBOX_STOCK,
        outcome.appended.len(),
        database.display()
    );
    for failure in &outcome.stage_failures {
        eprintln!("  stage failed: {failure}");
    }
    Ok(())
}

fn incident(
    database: &Path,
    config: &crate::config::Config,
    from: Option<String>,
    to: Option<String>,
    html: Option<std::path::PathBuf>,
    as_json: bool,
) -> CommandResult {
    let time = |text: Option<String>, flag: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, Failure> {
        text.map(|t| {
            events::clock::parse_time_input(&t).ok_or_else(|| {
                Failure::new(format!(
                    "{flag} {t:?} is not a time (try \"2026-11-22 15:45\" in Japan time, or RFC 3339)"
                ))
            })
        })
        .transpose()
    };
    let to = time(to, "--to")?.unwrap_or_else(chrono::Utc::now);
    let from = time(from, "--from")?.unwrap_or(to - chrono::Duration::hours(24));
    let store = replay::open_for_examination(database)?;
    let interval = chrono::Duration::minutes(i64::from(config.cycle_minutes));
    let report = replay::incident::incident(store.connection(), from, to, interval)?;
    if let Some(path) = &html {
        let file = crate::web::incidents::IncidentFile { view: (&report).into() };
        let text = askama::Template::render(&file).map_err(Failure::new)?;
        std::fs::write(path, text).map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for line in report.text().lines() {
            say!("{line}");
        }
    }
    Ok(())
}

/// `replay verify`: a rebuild compared with the live projections.
fn verify(database: &Path) -> CommandResult {
    let report = replay::verify::verify(database)?;
    if report.is_clean() {
        say!(
            "verified: a rebuild up to position {} equals the live projections ({} tables), and every event up to the head ({}) folds",
            report.position, report.tables_compared, report.head
        );
        if report.head > report.position {
            say!(
                "  (the live projections had not yet caught up with positions {}..{}: another process was appending)",
                report.position + 1,
                report.head
            );
        }
        return Ok(());
    }
    for difference in &report.differences {
        say!(
            "{}: {} rows only live, {} rows only rebuilt",
            difference.table,
            difference.only_live_count,
            difference.only_rebuilt_count
        );
        for row in &difference.only_live {
            say!("  live:    {row}");
        }
        for row in &difference.only_rebuilt {
            say!("  rebuilt: {row}");
        }
    }
    Err(Failure::new(format!(
        "the live projections differ from a rebuild in {} table(s); `mcf-ledger replay rebuild` repairs them",
        report.differences.len()
    )))
}

/// `replay order`: one order as it stood at a position or time.
fn order_as_of(database: &Path, order: &events::OrderKey, at: Option<String>, json: bool) -> CommandResult {
    let at = match at {
        None => At::Head,
        Some(text) => parse_at(&text)?,
    };
    let ledger = open_ledger(database, OpenMode::ReadOnly)?;
    let view = order_at(&ledger, order, at)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    let status =
        view.state.status.map_or_else(|| "(not yet in the ledger)".to_owned(), |s| format!("{s} {}", s.label()));
    say!("order {} as of position {}: {status}", view.order, view.as_of_position);
    if let Some(id) = &view.state.mcf_order_id {
        say!("mcf order {id}");
    }
    if let Some(tracking) = &view.state.tracking {
        say!("tracking {} {}", tracking.carrier, tracking.tracking_number);
    }
    for entry in &view.timeline {
        say!("  #{:<6} {}  {:<18} {}", entry.position, super::jst(entry.recorded_at), entry.actor, entry.summary);
    }
    if view.later_events > 0 {
        say!("  ({} later events not included)", view.later_events);
    }
    Ok(())
}
