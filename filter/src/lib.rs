//! Plumbline filter (being written).
