//! Account events the organizations hear of (their webhooks and live streams): a port the
//! services that make the change call, implemented by the organizations' service (which knows
//! who belongs where). Best effort and after the change: a lost event is logged, the change
//! stands.

use std::sync::{Arc, OnceLock};

use super::UserId;

pub trait UserEvents: Send + Sync {
    /// `event_type` is one of `domain::webhook::EVENT_TYPES`.
    fn user_event(&self, user: UserId, event_type: &'static str, data: serde_json::Value);
}

/// Where a service sends its events (set once, at start; none in the CLI).
#[derive(Default)]
pub struct EventsCell(OnceLock<Arc<dyn UserEvents>>);

impl EventsCell {
    pub fn set(&self, sink: Arc<dyn UserEvents>) {
        let _ = self.0.set(sink);
    }

    pub fn emit(&self, user: UserId, event_type: &'static str, data: serde_json::Value) {
        if let Some(s) = self.0.get() {
            s.user_event(user, event_type, data);
        }
    }
}
