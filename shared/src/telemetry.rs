//! Tracing setup: JSON lines in production, readable output locally.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Calling it again (tests, the all-in-one binary) is a no-op.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.format {
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_current_span(true).with_span_list(false))
            .try_init(),
        // Colours only for a terminal: a log piped or written to a file stays plain text.
        LogFormat::Pretty => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
            registry.with(fmt::layer().compact().with_ansi(ansi)).try_init()
        }
    };
    // Already installed is fine; anything else cannot be reported anywhere but stderr.
    drop(result);
}
