//! Node links: the in-process link for all-in-one mode (the WebSocket link lives in
//! catalyst-http).

mod local;

pub use local::LocalLink;
