//! iotex-gateway.
