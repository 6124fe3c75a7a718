//! Receiving a call: `receivedAt`, the corrected `timestamp`, and `messageId`.

use crate::{Call, Timestamp};

/// The corrected `timestamp` of a call: `receivedAt - (sentAt - originalTimestamp)`
/// when all three are known (and the result is representable), else
/// `originalTimestamp`, else `receivedAt`.
///
/// The difference `sentAt - originalTimestamp` is how long the call waited on the
/// client; subtracting it from the server's `receivedAt` removes the client's
/// clock skew.
///
/// ```
/// use cdp_calls::{corrected_timestamp, Timestamp};
///
/// let t = |s: &str| s.parse::<Timestamp>().unwrap();
/// let fixed = corrected_timestamp(
///     Some(t("2026-11-22T10:00:05Z")), // receivedAt, server clock
///     Some(t("2026-11-22T09:00:02Z")), // sentAt, client clock an hour behind
///     Some(t("2026-11-22T09:00:00Z")), // originalTimestamp, client clock
/// );
/// assert_eq!(fixed, Some(t("2026-11-22T10:00:03Z")));
/// ```
pub fn corrected_timestamp(
    received_at: Option<Timestamp>,
    sent_at: Option<Timestamp>,
    original_timestamp: Option<Timestamp>,
) -> Option<Timestamp> {
    if let (Some(received), Some(sent), Some(original)) = (received_at, sent_at, original_timestamp)
        && let Some(t) = received.checked_add_micros(-sent.micros_since(original))
    {
        return Some(t);
    }
    original_timestamp.or(received_at)
}

impl Call {
    /// Stamps a call as its receiver: `receivedAt` becomes `now` whatever the client
    /// sent, a caller's `timestamp` moves into `originalTimestamp` when that is
    /// absent, `timestamp` is recomputed with [`corrected_timestamp`], and a
    /// `messageId` is assigned when absent.
    ///
    /// This is what the collector and the reverse-ETL runs do with every call.
    pub fn stamp_received(&mut self, now: Timestamp) {
        self.received_at = Some(now);
        if self.original_timestamp.is_none() {
            self.original_timestamp = self.timestamp;
        }
        self.timestamp = corrected_timestamp(self.received_at, self.sent_at, self.original_timestamp);
        self.ensure_message_id();
    }

    /// Completes a call that was received earlier (read back from stored NDJSON):
    /// all four timestamps stay as they are, and only what is absent is filled in:
    /// `receivedAt` with `now`, `originalTimestamp` with `timestamp`, `timestamp`
    /// with [`corrected_timestamp`], and `messageId` with a new ULID.
    pub fn fill_missing(&mut self, now: Timestamp) {
        if self.received_at.is_none() {
            self.received_at = Some(now);
        }
        if self.original_timestamp.is_none() {
            self.original_timestamp = self.timestamp;
        }
        if self.timestamp.is_none() {
            self.timestamp = corrected_timestamp(self.received_at, self.sent_at, self.original_timestamp);
        }
        self.ensure_message_id();
    }

    /// Assigns a new ULID `messageId` when the call has none (or an empty one); its
    /// time part is `receivedAt`, or the current time when that is absent.
    pub fn ensure_message_id(&mut self) {
        if self.message_id.as_deref().is_none_or(str::is_empty) {
            let at = self.received_at.unwrap_or_else(Timestamp::now);
            let ms = u64::try_from(at.as_millis()).unwrap_or(0);
            let ulid =
                ulid::Ulid::from_datetime(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms));
            self.message_id = Some(ulid.to_string());
        }
    }
}
