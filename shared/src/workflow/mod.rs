//! The event-driven workflow engine.
//!
//! * [`machine`]: persisted state machines — a transition is one database transaction that
//!   updates the row, appends a history row and writes the domain event to the outbox.
//! * [`machines`]: the platform's machines (order, deployment, chain transaction, redemption,
//!   reward batch), each a table of allowed transitions.
//! * [`outbox`]: appending events, and the dispatcher that delivers them to subscribers at
//!   least once, with retries, dead letters and `LISTEN/NOTIFY` wake-ups.

pub mod machine;
pub mod machines;
pub mod outbox;

pub use machine::{Applied, Machine, Transition, WorkflowError, apply};
pub use outbox::{Dispatcher, NewEvent, OutboxEvent, Subscriber};

/// A boxed future borrowing its inputs: what trait objects of async handlers return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;
