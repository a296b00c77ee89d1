//! Examples live as `cargo run -p examples --example NAME`.
