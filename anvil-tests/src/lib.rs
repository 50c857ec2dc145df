//! End-to-end tests and benchmarks of the whole platform against PostgreSQL and anvil: the real
//! services (`tests/e2e/`, one module per journey) and the benchmarks `cargo xtask bench` runs
//! (`benches/`). The code under test is in the service crates and `cli` (the `brandmint`
//! binary); this crate holds none of its own.
