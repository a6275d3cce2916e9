//! Plumbline collector (being written).
