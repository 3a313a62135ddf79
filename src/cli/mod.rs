//! The `mcf-ledger` command line. Each subcommand is a thin shell over the library: parse,
//! open the ledger, call, print. Errors are one line on stderr and a non-zero exit.

/// Prints a line of human output with every control character of the data in it made
/// visible (`\u{1b}`), so a buyer name or an operator's reason can never drive the terminal.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", $crate::cli::visible(&format!($($arg)*)))
    };
}

/// A stored time (RFC 3339) as the human output shows every time: `2026-12-02 13:50 JST`.
/// `--json` keeps the stored form, with its offset.
pub(crate) fn jst_text(stored: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(stored) {
        Ok(time) => jst(time.with_timezone(&chrono::Utc)),
        Err(_) => stored.to_owned(),
    }
}

pub(crate) fn jst(time: chrono::DateTime<chrono::Utc>) -> String {
    time.with_timezone(&events::clock::jst()).format("%Y-%m-%d %H:%M JST").to_string()
}

mod order;
mod replay;

/// `text` with control characters written out (`\u{7}` for BEL), newlines and tabs included.
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

use crate::config::{Config, Env};
use clap::{Parser, Subcommand};
use events::store::OpenMode;
use projections::Ledger;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "mcf-ledger",
    version,
    about = "Rakuten / Yahoo! Shopping orders to Amazon MCF, through an event-sourced ledger"
)]
pub struct Cli {
    /// The SQLite ledger file (default: $DATABASE, else mcf-ledger.db).
    #[arg(long, global = true, value_name = "PATH")]
    pub database: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an empty ledger file.
    Init,
    /// The daemon: web admin plus a cycle every CYCLE_MINUTES; SIGTERM stops it gracefully.
    Run {
        /// Port of the web admin (default: $PORT, else 5003).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Run one cycle (for cron); exit 0 on success.
    Cycle {
        /// Run only this stage: receive, check, ship, monitor, notify, stale.
        #[arg(long)]
        stage: Option<String>,
    },
    /// Serve the web admin only (cycles come from cron).
    Serve {
        #[arg(long)]
        port: Option<u16>,
    },
    /// The whole system against the built-in sandboxes, with a stream of sample orders.
    Demo {
        /// How many orders the buyers place (default 40).
        #[arg(long, default_value_t = 40)]
        orders: u32,
        /// Seed of the order stream: the same seed gives the same orders.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Stop after this many seconds and print the ledger and the orders per status.
        #[arg(long = "for", value_name = "SECONDS")]
        run_for: Option<u64>,
        /// Seconds between cycles (default 5).
        #[arg(long, default_value_t = 5)]
        cycle_seconds: u64,
        /// Port of the web admin (default 5003).
        #[arg(long, default_value_t = 5003)]
        port: u16,
    },
    /// Examine history: rebuild, verify, time travel, export.
    #[command(subcommand)]
    Replay(replay::ReplayCommand),
    /// Orders: list, show, change status.
    #[command(subcommand)]
    Order(order::OrderCommand),
    /// Which features are configured, and what each still lacks (secrets are never printed).
    CheckConfig,
    /// Mail tools.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Named operators of the web admin (WEB_USERS_FILE).
    #[command(subcommand)]
    User(UserCommand),
    /// Stock of the marketplace listings.
    #[command(subcommand)]
    Stock(StockCommand),
    /// Check the ledger against the promises (one MCF order per order, no email or shipment
    /// report twice, no live MCF order for a cancelled order, nothing past RECEIVED without the
    /// marketplace API) and verify the projections; exit 1 on any anomaly.
    Audit {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an operator, or set a new password: the password is read from stdin (asked twice,
    /// unseen, on a terminal) and stored as an argon2id hash.
    Add {
        name: String,
        /// The users file (default: $WEB_USERS_FILE).
        #[arg(long)]
        users_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StockCommand {
    /// What each listing would be told, from the ledger's last FBA readings, the SKU master,
    /// the units open orders hold and the buffer (no outside call); brakes that would hold it.
    Plan {
        #[arg(long)]
        json: bool,
    },
    /// Lets a plan the brakes held be published at the next cycle (after checking FBA's reading).
    Confirm,
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Classify one stored email and show what was extracted, as JSON (the ledger is not touched).
    Inspect { file: PathBuf },
}

/// A command's failure: the one line printed, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn new(message: impl ToString) -> Self {
        Self { message: message.to_string(), code: 1 }
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::new(error)
    }
}

pub type CommandResult = Result<(), Failure>;

pub fn main() -> ExitCode {
    crate::allocator::limit_arenas();
    crate::telemetry::init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // One line per problem (an invalid configuration may have several).
            for line in failure.message.lines() {
                eprintln!("mcf-ledger: error: {}", visible(line));
            }
            ExitCode::from(failure.code)
        }
    }
}

pub fn run(cli: Cli) -> CommandResult {
    let env = Env::from_process()?;
    let database = cli.database.clone().or_else(|| env.get("DATABASE").map(PathBuf::from)).unwrap_or_default();
    // Every command but check-config refuses an invalid configuration, naming each problem;
    // check-config lists them beside what is missing.
    let config = || Config::from_env(env.clone()).map_err(Failure::new);
    match cli.command {
        Command::CheckConfig => check_config(&env, &database),
        Command::Init => {
            config()?;
            init(&database)
        }
        Command::Run { port } => run_daemon(&config()?, &database, port),
        Command::Cycle { stage } => cycle(&config()?, &database, stage.as_deref()),
        Command::Serve { port } => serve(&config()?, &database, port),
        Command::Demo { orders, seed, run_for, cycle_seconds, port } => demo(crate::demo::DemoOptions {
            orders,
            seed,
            run_for: run_for.map(std::time::Duration::from_secs),
            cycle_every: std::time::Duration::from_secs(cycle_seconds.max(1)),
            port,
            bind: config()?.web.bind,
            database: cli.database.clone(),
        }),
        Command::Replay(command) => {
            let config = config()?;
            replay::run(command, &database, &config)
        }
        Command::Order(command) => {
            config()?;
            order::run(command, &database)
        }
        Command::Audit { json } => {
            config()?;
            audit(&database, json)
        }
        Command::User(UserCommand::Add { name, users_file }) => {
            let config = config()?;
            let path = users_file.or(config.web.users_file).ok_or_else(|| {
                Failure::new("no users file: give --users-file PATH or set WEB_USERS_FILE".to_owned())
            })?;
            add_user(&path, &name)
        }
        Command::Stock(StockCommand::Plan { json }) => stock_plan(&config()?, &database, json),
        Command::Stock(StockCommand::Confirm) => stock_confirm(&database),
        Command::Mail(MailCommand::Inspect { file }) => {
            config()?;
            let raw = std::fs::read(&file).map_err(|e| Failure::new(format!("cannot read {}: {e}", file.display())))?;
            println!("{}", serde_json::to_string_pretty(&crate::mail::parse::parse(&raw))?);
            Ok(())
        }
    }
}

/// Reads the new operator's password (twice and unseen on a terminal; one line from a pipe)
/// and writes it to the users file.
fn add_user(path: &std::path::Path, name: &str) -> CommandResult {
    use std::io::IsTerminal;
    if !crate::web::users::valid_name(name) {
        return Err(Failure::new(crate::web::users::UsersError::BadName(name.to_owned())));
    }
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("{name} のパスワード: ")).map_err(Failure::new)?;
        let second = rpassword::prompt_password("もう一度: ").map_err(Failure::new)?;
        if first != second {
            return Err(Failure::new(crate::web::users::UsersError::Mismatch));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(Failure::new)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    let replaced = crate::web::users::add_user(path, name, &password)?;
    say!(
        "{} {name} in {} (the web admin reads the file again on the next login)",
        if replaced { "changed the password of" } else { "added" },
        path.display()
    );
    Ok(())
}

fn init(database: &std::path::Path) -> CommandResult {
    if let Some(parent) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(Failure::new(format!(
                "cannot create {}: the directory {} does not exist",
                database.display(),
                parent.display()
            )));
        }
    }
    // SQLite takes an empty file for an empty database: it becomes a ledger, and says so.
    let size = std::fs::metadata(database).ok().map(|m| m.len());
    let ledger = Ledger::open(database, OpenMode::CreateIfMissing)?;
    let events = ledger.store().head_position()?;
    match size {
        None => println!("created the ledger {}", database.display()),
        Some(0) => println!("initialised the empty file {} as a ledger", database.display()),
        Some(_) => println!("{} is already a ledger ({events} events); nothing changed", database.display()),
    }
    Ok(())
}

fn audit(database: &std::path::Path, as_json: bool) -> CommandResult {
    let store = ::replay::open_for_examination(database)?;
    let report = ::replay::audit::audit(&store)?;
    drop(store);
    let verify = ::replay::verify::verify(database)?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"audit": report, "projections_clean": verify.is_clean()})
            )?
        );
    } else {
        println!("audited {} orders ({} events)", report.orders, report.events);
        for anomaly in &report.anomalies {
            println!("  {} {}: {}", anomaly.order, anomaly.rule, anomaly.detail);
        }
        println!(
            "projections: {}",
            if verify.is_clean() {
                "equal to a rebuild"
            } else {
                "DIFFER from a rebuild (run `mcf-ledger replay verify`)"
            }
        );
    }
    match (report.anomalies.len(), verify.is_clean()) {
        (0, true) => Ok(()),
        (n, clean) => Err(Failure::new(format!(
            "{n} anomalies{}",
            if clean { "" } else { "; the projections differ from a rebuild" }
        ))),
    }
}

/// Exit code of a cycle that ran but could not read a source (a marketplace, the mailbox,
/// Amazon): not a crash, and not all is well either.
pub const EXIT_SOURCE_UNREAD: u8 = 3;

fn describe_failed_source(failure: &events::system::SourceFailure) -> String {
    let what = match failure.kind {
        events::system::FailureKind::Outage => "could not be read (outage; retried every cycle)",
        events::system::FailureKind::Credentials => "refused our credentials (renew them; alerted by mail)",
    };
    format!("source {} {what}: {}", failure.source, failure.error)
}

/// One cycle for cron (all stages), or one stage by hand, under the cycle lease.
fn cycle(config: &Config, database: &std::path::Path, stage: Option<&str>) -> CommandResult {
    use crate::cycle::Stage;
    let stages: Vec<Stage> = match stage {
        Some(stage) => vec![stage.parse().map_err(Failure::new)?],
        None => Stage::ALL.to_vec(),
    };
    let mut ledger = open_ledger(database, OpenMode::MustExist)?;
    let services = crate::cycle::Services::from_config(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Failure::new)?;
    let shutdown = services.shutdown.clone();
    let report = runtime.block_on(async {
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            crate::daemon::termination_signal().await;
            on_signal.trigger();
        });
        crate::cycle::run_cycle_until(&mut ledger, &services, &stages, shutdown.flag()).await
    })?;
    for stage in &report.reports {
        say!(
            "{}: examined {}, advanced {}, deferred {}, needs operator {}",
            stage.stage,
            stage.examined,
            stage.advanced,
            stage.deferred,
            stage.needs_operator
        );
    }
    // One line per source that could not be read, so cron's MAILTO and systemd see each.
    for failure in &report.failed_sources {
        eprintln!("mcf-ledger: {}", visible(&describe_failed_source(failure)));
    }
    match report.failures.first() {
        None if report.interrupted => {
            Err(Failure::new("the cycle was stopped by a signal after its step under way; the next cycle resumes"))
        }
        None if !report.failed_sources.is_empty() => Err(Failure {
            message: format!(
                "the cycle ran, but {} source(s) could not be read (see above); it retries next cycle",
                report.failed_sources.len()
            ),
            code: EXIT_SOURCE_UNREAD,
        }),
        None => Ok(()),
        Some(first) => Err(Failure::new(format!(
            "{} of {} stages failed; first: {}: {}{}",
            report.failures.len(),
            stages.len(),
            first.stage,
            first.error,
            if report.interrupted { "; then the cycle was stopped by a signal, the next cycle resumes" } else { "" }
        ))),
    }
}

fn check_config(env: &Env, database: &std::path::Path) -> CommandResult {
    let inspection = Config::inspect(env);
    println!(
        "ledger: {}{}",
        database.display(),
        if database.exists() { "" } else { " (does not exist yet: run `mcf-ledger init`)" }
    );
    print!("{}", inspection.report);
    match (inspection.errors, inspection.ready) {
        (Some(errors), _) => Err(Failure::new(errors)),
        (None, true) => Ok(()),
        (None, false) => Err(Failure::new("some features are not configured (see [missing] above)")),
    }
}

/// Opens an existing ledger (projections caught up), naming the file on failure.
pub(crate) fn open_ledger(database: &std::path::Path, mode: OpenMode) -> Result<Ledger, Failure> {
    Ledger::open(database, mode).map_err(Failure::new)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("starting the runtime: {e}")))
}

async fn listen(config: &Config, port: Option<u16>) -> Result<tokio::net::TcpListener, Failure> {
    let port = port.unwrap_or(config.web.port);
    tokio::net::TcpListener::bind((config.web.bind, port))
        .await
        .map_err(|e| Failure::new(format!("cannot listen on {}:{port}: {e}", config.web.bind)))
}

/// The web admin alone; cycles come from cron (`mcf-ledger cycle`).
fn serve(config: &Config, database: &std::path::Path, port: Option<u16>) -> CommandResult {
    let settings = crate::web::WebSettings::from_config(config)?;
    let ledger = open_ledger(database, OpenMode::MustExist)?;
    runtime()?.block_on(async {
        let listener = listen(config, port).await?;
        let state = crate::web::AppState::new(ledger, settings)?;
        println!("web admin on http://{}/ (ledger {})", listener.local_addr()?, database.display());
        crate::web::serve(listener, state, crate::daemon::termination_signal()).await?;
        Ok(())
    })
}

/// `stock confirm`: exit 1 when nothing is held (nothing was confirmed).
fn stock_confirm(database: &std::path::Path) -> CommandResult {
    let mut ledger = open_ledger(database, OpenMode::MustExist)?;
    let by = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "operator".into()));
    if crate::stages::stock::sync::confirm(&mut ledger, &by).map_err(Failure::new)? {
        println!("confirmed: the held stock plan is published at the next cycle");
        Ok(())
    } else {
        Err(Failure::new("no stock plan is held: nothing to confirm"))
    }
}

/// `stock plan`: one row per listing and marketplace; exit 0 even when a brake would hold the
/// plan (it is shown), 1 when the plan cannot be made.
fn stock_plan(config: &Config, database: &std::path::Path, json: bool) -> CommandResult {
    let ledger = open_ledger(database, OpenMode::MustExist)?;
    let mut marketplaces = Vec::new();
    if config.rakuten.is_some() {
        marketplaces.push(events::Marketplace::Rakuten);
    }
    if config.yahoo.is_some() {
        marketplaces.push(events::Marketplace::Yahoo);
    }
    if marketplaces.is_empty() {
        marketplaces = events::Marketplace::ALL.to_vec();
    }
    let plan = crate::stages::stock::current_plan(&ledger, &config.sku_master, marketplaces, config.stock)
        .map_err(Failure::new)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&plan)?)?;
        return Ok(());
    }
    let reading = plan.last_reading.as_deref().map_or_else(|| "never".to_owned(), jst_text);
    writeln!(
        out,
        "stock plan from {} (last FBA reading {reading}); published: what each marketplace was last told",
        plan.master
    )?;
    writeln!(
        out,
        "{:<8} {:<24} {:<24} {:<20} {:>6} {:>8} {:>8} {:>6} {:>8} {:>9}",
        "market", "marketplace_sku", "key", "seller_sku", "units", "fba", "allotted", "buffer", "quantity", "published"
    )?;
    let shown = |n: Option<u32>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    for row in &plan.rows {
        writeln!(
            out,
            "{:<8} {:<24} {:<24} {:<20} {:>6} {:>8} {:>8} {:>6} {:>8} {:>9}",
            row.marketplace.to_string(),
            row.marketplace_sku,
            row.key.as_ref().map_or_else(|| "-".to_owned(), |k| k.to_string()),
            row.seller_sku,
            row.units_per_item,
            shown(row.fba_fulfillable),
            row.allotted,
            row.buffer,
            shown(row.quantity),
            shown(row.published)
        )?;
        // A set of different products: the row shows its scarcest component; here are all.
        for component in &row.components {
            writeln!(
                out,
                "{:<8}   set component {} x{}: fba {}, allotted {} -> {} sets",
                "",
                component.seller_sku,
                component.units_per_item,
                shown(component.fba_fulfillable),
                component.allotted,
                shown(component.sets)
            )?;
        }
    }
    if plan.rows.iter().any(|r| r.fba_fulfillable.is_none()) {
        writeln!(out, "fba '-': FBA has not been read for that seller SKU yet, so nothing is planned for it")?;
    }
    for brake in &plan.brakes {
        writeln!(out, "ブレーキ: {}", brake.describe())?;
    }
    Ok(())
}

/// The daemon: the web admin and a cycle every CYCLE_MINUTES in one process. SIGTERM lets the
/// stage under way finish and be recorded, then stops both.
fn run_daemon(config: &Config, database: &std::path::Path, port: Option<u16>) -> CommandResult {
    let settings = crate::web::WebSettings::from_config(config)?;
    let web_ledger = open_ledger(database, OpenMode::MustExist)?;
    let cycle_ledger = open_ledger(database, OpenMode::MustExist)?;
    let services = crate::cycle::Services::from_config(config)?;
    let timer = crate::daemon::Timer {
        every: std::time::Duration::from_secs(u64::from(config.cycle_minutes) * 60),
        mail_check: (config.mail_check_seconds > 0)
            .then(|| std::time::Duration::from_secs(u64::from(config.mail_check_seconds))),
    };
    runtime()?.block_on(async {
        let listener = listen(config, port).await?;
        let state = crate::web::AppState::new(web_ledger, settings)?;
        println!(
            "mcf-ledger run: web admin on http://{}/, a cycle every {} minutes (ledger {})",
            listener.local_addr()?,
            config.cycle_minutes,
            database.display()
        );
        let shutdown = services.shutdown.clone();
        let web_stop = shutdown.clone();
        let web = tokio::spawn(crate::web::serve(listener, state, async move { web_stop.wait().await }));
        let timer = tokio::spawn(crate::daemon::cycle_timer(cycle_ledger, services, timer, shutdown.clone()));
        crate::daemon::termination_signal().await;
        shutdown.trigger();
        let _ = timer.await;
        match web.await {
            Ok(result) => result?,
            Err(e) => return Err(Failure::new(format!("the web admin stopped abnormally: {e}"))),
        }
        // Nobody may be reading stdout any more (a closed pipe): the stop itself went well.
        let _ = writeln!(std::io::stdout(), "stopped");
        Ok(())
    })
}

fn demo(options: crate::demo::DemoOptions) -> CommandResult {
    let summary = runtime()?.block_on(crate::demo::run(options)).map_err(Failure::new)?;
    print!("{}", crate::demo::summary_text(&summary));
    Ok(())
}
