//! The HTTP ingestion API destination (being built).
