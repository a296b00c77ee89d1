//! Placeholder: the binding is built by the SDK issue. It exists so the workspace has its final shape.
