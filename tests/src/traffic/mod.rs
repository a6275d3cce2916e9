//! Demo traffic (being written).
