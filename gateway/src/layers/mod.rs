//! HTTP-tier middleware, one module per layer (tower's shape: `FooLayer` → `Foo<S>`).

pub mod auth;
pub mod rate_limit;
