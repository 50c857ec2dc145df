//! Local fakes of the external services, speaking their real wire formats, for tests and the
//! dev run (behind the `fakes` feature).

pub mod fx;
pub mod stripe;
