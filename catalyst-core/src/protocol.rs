//! Wire protocols, as serde types only: [`node`] between the control plane and its nodes (any
//! [`crate::ports::NodeLink`]), [`gateway`] between the client WebSocket gateway (`/api/ws`) and
//! its clients (the web panel, the SDKs).

pub mod gateway;
pub mod node;

pub use node::{
    AgentFrame, ControlFrame, NodeEvent, NodeRequest, NodeResponse, PROTOCOL_VERSION, ServerSpec, StoredArchive,
    WireError,
};
