//! Test support: real nodes, mock upstreams and the gateway in process.
