//! End-to-end tests: the real server (`sluice_server::run` on port 0) driven by the AWS SDK for
//! Rust and plain HTTP, on SQLite and on a throwaway PostgreSQL database.

mod artifacts;
mod automation;
mod codepipeline;
mod executions;
mod fuzz;
mod server;
mod support;
