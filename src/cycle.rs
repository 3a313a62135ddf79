//! One cycle, or one stage of it: `receive -> check -> ship -> monitor -> notify -> stale`.
//! Each stage is a named variant with one dispatcher, so an operator can list them and run one
//! by hand (`mcf-ledger cycle --stage ship`).

use crate::amazon::{AmazonClient, AmazonConfig};
use crate::config::Config;
use crate::sku_master::SkuMaster;
use crate::stages::{self, ShippingSettings, StageContext, StageError, StageReport};
use projections::Ledger;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Receive,
    Check,
    Ship,
    Monitor,
    Notify,
    Stale,
}

impl Stage {
    pub const ALL: [Stage; 6] =
        [Stage::Receive, Stage::Check, Stage::Ship, Stage::Monitor, Stage::Notify, Stage::Stale];

    /// Whether this build has the stage (receive, notify and stale arrive with later issues).
    pub fn available(self) -> bool {
        matches!(self, Self::Check | Self::Ship | Self::Monitor)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Receive => "receive",
            Self::Check => "check",
            Self::Ship => "ship",
            Self::Monitor => "monitor",
            Self::Notify => "notify",
            Self::Stale => "stale",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|stage| stage.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("unknown stage {s:?}; the stages are receive, check, ship, monitor, notify, stale"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("stage {stage}: {source}")]
    Stage { stage: Stage, source: StageError },
    #[error("Amazon is not configured: set {0} (see `mcf-ledger check-config`)")]
    AmazonNotConfigured(String),
    #[error("stage {0} is not available yet: it arrives with the marketplace and mail issues (#4 to #6)")]
    NotAvailable(Stage),
    #[error("{0}")]
    Setup(String),
}

/// The clients and files the stages use, built once per process.
pub struct Services {
    pub amazon: AmazonClient,
    pub sku_master: SkuMaster,
    pub shipping: ShippingSettings,
}

impl Services {
    pub fn from_config(config: &Config) -> Result<Self, CycleError> {
        let amazon_config = AmazonConfig::from_config(config).ok_or_else(|| {
            let missing: Vec<&str> = ["AMAZON_CLIENT_ID", "AMAZON_CLIENT_SECRET", "AMAZON_REFRESH_TOKEN"]
                .into_iter()
                .filter(|name| config.env.get(name).is_none())
                .collect();
            CycleError::AmazonNotConfigured(missing.join(", "))
        })?;
        let amazon = AmazonClient::new(amazon_config).map_err(|e| CycleError::Setup(e.to_string()))?;
        Ok(Self {
            amazon,
            sku_master: SkuMaster::new(config.sku_master.clone()),
            shipping: ShippingSettings {
                notification_email: config.env.get("MCF_NOTIFICATION_EMAIL"),
                ..ShippingSettings::default()
            },
        })
    }
}

/// Runs one stage against the ledger.
pub async fn run_stage(
    ledger: &mut Ledger,
    services: &mut Services,
    stage: Stage,
) -> Result<Vec<StageReport>, CycleError> {
    let mut ctx = StageContext {
        ledger,
        amazon: &services.amazon,
        sku_master: &mut services.sku_master,
        shipping: &services.shipping,
    };
    let wrap = |source| CycleError::Stage { stage, source };
    match stage {
        Stage::Check => Ok(vec![stages::check::run(&mut ctx).await.map_err(wrap)?]),
        Stage::Ship => Ok(vec![stages::ship::run(&mut ctx).await.map_err(wrap)?]),
        Stage::Monitor => {
            let cancelled = stages::cancel::run(&mut ctx).await.map_err(wrap)?;
            let tracked = stages::tracking::run(&mut ctx).await.map_err(wrap)?;
            Ok(vec![cancelled, tracked])
        }
        Stage::Receive | Stage::Notify | Stage::Stale => Err(CycleError::NotAvailable(stage)),
    }
}
