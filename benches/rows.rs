//! Placeholder: the rows bench is being written (see the cdp-rows issue).
fn main() {}
