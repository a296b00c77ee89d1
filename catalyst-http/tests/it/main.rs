//! The REST API end to end through the router (no socket), on SQLite, with an in-process node
//! over the fake runtime.

mod support;

mod api;
mod application;
mod client;
mod client_api;
mod connections;
mod eggs;
mod files;
mod gateway;
mod limits;
mod link;
mod openapi;
mod operator;
mod pools;
mod registration;
