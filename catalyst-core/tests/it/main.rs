//! catalyst-core integration tests: one binary, one module per feature.

mod dependencies;
mod lifecycle_props;
mod memory_store;
