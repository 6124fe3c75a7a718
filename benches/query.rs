//! Placeholder: the query bench is being written (see the cdp-query issue).
fn main() {}
