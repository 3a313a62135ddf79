//! The `sku-master` stream: every workbook load, with its hash (the workbook itself is a blob),
//! and every rejected workbook with the reason.

use serde::{Deserialize, Serialize};

pub const SKU_MASTER_STREAM: &str = "sku-master";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuMasterLoaded {
    pub sha256: String,
    pub rows: usize,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuMasterRejected {
    pub sha256: String,
    pub error: String,
    pub path: String,
}

crate::event_enum! {
    /// What happens in the `sku-master` stream.
    pub enum SkuMasterEvent {
        SkuMasterLoaded(SkuMasterLoaded) = 1,
        SkuMasterRejected(SkuMasterRejected) = 1,
    }
}
