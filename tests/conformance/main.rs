//! The EventoDB SDK conformance cases.
