//! Local fakes of external systems, speaking their real wire formats: for the run command and
//! tests, never for production configuration (behind the `fakes` feature).

pub mod stripe;
