//! The page renderer lives in `crate::render` (mail uses it too); re-exported here for the
//! web layer.

pub use crate::render::{Templates, Ui};
