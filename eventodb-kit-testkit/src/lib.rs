//! An in-process, EventoDB-compatible server for tests and the quick start.
