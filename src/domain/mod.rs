//! The core: pure types and rules. No axum, sqlx, tera or redis in here.

pub mod clock;
pub mod email;
pub mod ids;
pub mod user;

pub use clock::{Clock, SystemClock, UnixTime};
pub use email::{Email, EmailError};
pub use ids::UserId;
pub use user::{NewUser, User, UserStatus};
