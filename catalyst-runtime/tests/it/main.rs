//! catalyst-runtime integration tests: one binary, one module per feature.

mod support;

mod control;
mod images;
mod runtimes;
mod stores;
