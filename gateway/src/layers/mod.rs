//! HTTP-tier middleware, one module per layer (tower's shape: `FooLayer` → `Foo<S>`).

pub mod rate_limit;
