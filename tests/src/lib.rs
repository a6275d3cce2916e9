//! Shared helpers for end-to-end tests and demo programs (being written).
