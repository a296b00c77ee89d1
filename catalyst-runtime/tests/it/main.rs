//! catalyst-runtime integration tests: one binary, one module per feature.

mod support;

mod alerts;
mod backup_targets;
mod backups;
mod control;
mod eggs;
mod grants;
mod images;
mod isolation;
mod registry;
mod runtimes;
mod sftp;
mod shutdown;
mod sshd;
mod stores;
mod tasks;
mod templates;
mod transfers;
mod webhooks;
