//! The stage reactors of a cycle, one per step of the operating guide, in its order:
//! [`receive`] (注文受付), [`check`] (在庫確認), [`ship`] (出荷依頼), [`monitor`] (キャンセル監視と
//! 出荷検知), [`notify`] (出荷通知), [`stale`] (滞留警告と管理者への通知). Each reads like the guide:
//! find the orders in status X, decide (a pure function), act through an adapter, record what
//! happened. Every stage is safe to re-run after a crash at any line. Marketplace helpers live
//! beneath the stage that uses them; what two stages share is here ([`intake`], [`sources`]).

pub mod check;
mod context;
pub(crate) mod intake;
pub mod monitor;
pub mod notify;
pub(crate) mod orders;
pub mod receive;
mod report;
mod services;
mod settings;
pub mod ship;
pub mod sku_master;
pub mod sources;
pub mod stale;
pub mod steps;
pub mod stock;

pub use context::StageContext;
pub use orders::failpoint;
pub use report::{StageError, StageReport};
pub use services::{Services, ServicesError};
pub use settings::{AlertSettings, ConfiguredExpiry, CustomerMailSettings, ShippingSettings};
pub use sku_master::SkuMaster;
pub use steps::Steps;
