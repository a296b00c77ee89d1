//! The HTTP edge of Catalyst: REST, WebSocket gateway and the agent endpoint.
