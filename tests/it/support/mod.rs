//! The test lab: real registries, token server, TLS material and image fixtures.
