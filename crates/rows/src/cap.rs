//! [`RecordCap`]: the limit on records read in one run.

/// The default limit on records per run: 30,000,000.
pub const DEFAULT_MAX_RECORDS: u64 = 30_000_000;

/// Counts the records (rows) a run reads and stops it at its limit.
///
/// Every row read counts, whether it becomes a call or a row error. The runner asks
/// before mapping each row ([`RecordCap::admit`]); past the limit it gets
/// [`CapReached`] instead of a row number, stops reading, and records the run as
/// capped (see the crate docs, "At the record cap").
///
/// ```
/// use cdp_rows::RecordCap;
///
/// let mut cap = RecordCap::new(2);
/// assert_eq!(cap.admit(), Ok(1));
/// assert_eq!(cap.admit(), Ok(2));
/// let reached = cap.admit().unwrap_err();
/// assert_eq!(reached.limit, 2);
/// assert_eq!(
///     reached.to_string(),
///     "the run reached its cap of 2 records: row 3 and any rows after it were not read"
/// );
/// assert_eq!(cap.records(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCap {
    limit: u64,
    records: u64,
}

/// The run has read as many records as its cap allows; the row it asked about, and
/// any after it, are not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the run reached its cap of {limit} records: row {first_row_not_read} and any rows after it were not read"
)]
#[non_exhaustive]
pub struct CapReached {
    /// The cap.
    pub limit: u64,
    /// The 1-based number of the first row that was not read (`limit + 1`).
    pub first_row_not_read: u64,
}

impl RecordCap {
    /// A cap of `limit` records per run.
    pub const fn new(limit: u64) -> RecordCap {
        RecordCap { limit, records: 0 }
    }

    /// Counts one more row and returns its 1-based row number, or [`CapReached`] when
    /// the cap is already full (the row is then not counted).
    pub fn admit(&mut self) -> Result<u64, CapReached> {
        if self.records >= self.limit {
            return Err(CapReached { limit: self.limit, first_row_not_read: self.limit.saturating_add(1) });
        }
        self.records += 1;
        Ok(self.records)
    }

    /// The records admitted so far.
    pub const fn records(&self) -> u64 {
        self.records
    }

    /// The cap.
    pub const fn limit(&self) -> u64 {
        self.limit
    }

    /// True once no further row will be admitted.
    pub const fn is_full(&self) -> bool {
        self.records >= self.limit
    }
}

impl Default for RecordCap {
    /// A cap of [`DEFAULT_MAX_RECORDS`].
    fn default() -> Self {
        RecordCap::new(DEFAULT_MAX_RECORDS)
    }
}
