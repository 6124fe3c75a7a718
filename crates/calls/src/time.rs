//! [`Timestamp`]: an instant in UTC with microsecond precision, parsed from and
//! written as RFC 3339.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds in one second.
const MICROS_PER_SEC: i64 = 1_000_000;
/// `0000-01-01T00:00:00Z` in microseconds since the Unix epoch.
const MIN_MICROS: i64 = -62_167_219_200 * MICROS_PER_SEC;
/// `9999-12-31T23:59:59.999999Z` in microseconds since the Unix epoch.
const MAX_MICROS: i64 = 253_402_300_800 * MICROS_PER_SEC - 1;

/// An instant in UTC with microsecond precision, between the years 0000 and 9999.
///
/// Calls carry four of them (`timestamp`, `originalTimestamp`, `sentAt`, `receivedAt`).
/// They are parsed from RFC 3339 text with any offset, kept as microseconds since the
/// Unix epoch, and always written in UTC with a `Z` suffix: with millisecond precision,
/// or microsecond precision when the value has a sub-millisecond part. Digits beyond the
/// microsecond are truncated. A leap second (`:60`) is read as the first instant of the
/// next minute.
///
/// ```
/// use cdp_calls::Timestamp;
///
/// let t: Timestamp = "2026-11-22T11:00:00.5+01:00".parse()?;
/// assert_eq!(t.to_string(), "2026-11-22T10:00:00.500Z");
/// assert_eq!(t.as_micros(), 1_795_341_600_500_000);
/// # Ok::<(), cdp_calls::TimestampError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a text is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// The text does not have the shape `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
    #[error("expected an RFC 3339 timestamp like 2026-11-22T10:00:00.000Z")]
    Shape,
    /// A date or time part is out of range (month 13, February 30, hour 24, …).
    #[error("{part} is out of range")]
    OutOfRange {
        /// The part at fault: `month`, `day`, `hour`, `minute`, `second` or `offset`.
        part: &'static str,
    },
    /// The instant falls outside the years 0000 to 9999 once moved to UTC.
    #[error("the instant is outside the years 0000 to 9999")]
    Year,
}

impl Timestamp {
    /// The earliest representable instant, `0000-01-01T00:00:00Z`.
    pub const MIN: Timestamp = Timestamp(MIN_MICROS);
    /// The latest representable instant, `9999-12-31T23:59:59.999999Z`.
    pub const MAX: Timestamp = Timestamp(MAX_MICROS);
    /// The Unix epoch, `1970-01-01T00:00:00Z`.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// The instant `micros` microseconds after the Unix epoch, if it lies within the
    /// years 0000 to 9999.
    pub const fn from_micros(micros: i64) -> Option<Timestamp> {
        if micros >= MIN_MICROS && micros <= MAX_MICROS { Some(Timestamp(micros)) } else { None }
    }

    /// The instant `millis` milliseconds after the Unix epoch, if representable.
    pub fn from_millis(millis: i64) -> Option<Timestamp> {
        millis.checked_mul(1000).and_then(Timestamp::from_micros)
    }

    /// The instant `secs` seconds after the Unix epoch, if representable.
    pub fn from_secs(secs: i64) -> Option<Timestamp> {
        secs.checked_mul(MICROS_PER_SEC).and_then(Timestamp::from_micros)
    }

    /// Microseconds since the Unix epoch (negative before 1970).
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Whole milliseconds since the Unix epoch, rounded towards negative infinity.
    pub const fn as_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Whole seconds since the Unix epoch, rounded towards negative infinity.
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(MICROS_PER_SEC)
    }

    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// `self + micros`, if representable.
    pub fn checked_add_micros(self, micros: i64) -> Option<Timestamp> {
        self.0.checked_add(micros).and_then(Timestamp::from_micros)
    }

    /// The signed distance `self - earlier` in microseconds.
    pub const fn micros_since(self, earlier: Timestamp) -> i64 {
        // Both lie within ±2.6e17, so the difference cannot overflow.
        self.0 - earlier.0
    }

    /// Parses RFC 3339 text: `YYYY-MM-DD`, `T` (or `t` or a space), `HH:MM:SS`, an
    /// optional fraction of any length, then `Z`, `z` or `±HH:MM`.
    ///
    /// chrono's RFC 3339 parser reads the text; the instant must lie within the
    /// years 0000 to 9999 once moved to UTC.
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, TimestampError> {
        parse(text)
    }

    /// Writes the RFC 3339 UTC text into `buf` and returns it: 24 bytes
    /// (`2026-11-22T10:00:00.000Z`), or 27 when the value has a sub-millisecond part.
    pub fn format_into(self, buf: &mut [u8; 27]) -> &str {
        let mut text = FixedText { buf, len: 0 };
        self.print_rfc3339(&mut text);
        let len = text.len;
        std::str::from_utf8(&buf[..len]).expect("jiff writes ASCII digits and punctuation")
    }

    /// Appends the RFC 3339 UTC text ([`Timestamp::format_into`]) to `out`.
    ///
    /// ```
    /// use cdp_calls::Timestamp;
    ///
    /// let mut out = b"at ".to_vec();
    /// "2026-11-22T10:00:00.5Z".parse::<Timestamp>()?.push_rfc3339(&mut out);
    /// assert_eq!(out, b"at 2026-11-22T10:00:00.500Z");
    /// # Ok::<(), cdp_calls::TimestampError>(())
    /// ```
    #[inline]
    pub fn push_rfc3339(self, out: &mut Vec<u8>) {
        self.print_rfc3339(out);
    }

    /// The length of the text [`Timestamp::push_rfc3339`] writes: 24 bytes with
    /// milliseconds, 27 with microseconds.
    ///
    /// ```
    /// use cdp_calls::Timestamp;
    ///
    /// for text in ["2026-11-22T10:00:00.000Z", "2026-11-22T10:00:00.000001Z"] {
    ///     let t: Timestamp = text.parse()?;
    ///     assert_eq!(t.rfc3339_len(), text.len());
    /// }
    /// # Ok::<(), cdp_calls::TimestampError>(())
    /// ```
    pub fn rfc3339_len(self) -> usize {
        if self.0.rem_euclid(1000) == 0 { 24 } else { 27 }
    }

    /// Writes the RFC 3339 UTC text with jiff's printer: milliseconds, or
    /// microseconds when the value has a sub-millisecond part.
    fn print_rfc3339<W: jiff::fmt::Write>(self, mut out: W) {
        use jiff::fmt::temporal::DateTimePrinter;
        const MILLIS: DateTimePrinter = DateTimePrinter::new().precision(Some(3));
        const MICROS: DateTimePrinter = DateTimePrinter::new().precision(Some(6));
        let printer = if self.0.rem_euclid(1000) == 0 { &MILLIS } else { &MICROS };
        let printed = match jiff::Timestamp::from_microsecond(self.0) {
            Ok(t) => printer.print_timestamp(&t, out),
            // jiff's timestamps end at 9999-12-30T22:00:00Z (so that any offset gives
            // a date-time within 9999): the last hours of 9999 go as a civil date-time.
            Err(_) => {
                const EPOCH: jiff::civil::DateTime = jiff::civil::DateTime::constant(1970, 1, 1, 0, 0, 0, 0);
                let utc = EPOCH
                    .checked_add(jiff::SignedDuration::from_micros(self.0))
                    .expect("the years 0000 to 9999 are civil date-times");
                printer.print_datetime(&utc, &mut out).and_then(|()| out.write_str("Z"))
            }
        };
        printed.expect("at most 27 bytes fit the text's room");
    }
}

/// The room [`Timestamp::format_into`] gives jiff's printer: 27 bytes, the most it
/// writes for a [`Timestamp`].
struct FixedText<'a> {
    buf: &'a mut [u8; 27],
    len: usize,
}

impl jiff::fmt::Write for FixedText<'_> {
    fn write_str(&mut self, text: &str) -> Result<(), jiff::Error> {
        let end = self.len + text.len();
        let room = self.buf.get_mut(self.len..end).ok_or_else(|| {
            jiff::Error::from_args(format_args!("an RFC 3339 timestamp longer than 27 bytes"))
        })?;
        room.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.format_into(&mut [0; 27]))
    }
}

/// The RFC 3339 text of the last [`Timestamp`] written through it, kept so that a run
/// of equal instants (calls stamped together, a column whose rows share an instant)
/// is formatted once and copied after. Any instant comes out exactly as
/// [`Timestamp::push_rfc3339`] writes it: the text is reused only for its own instant.
///
/// ```
/// use cdp_calls::{Timestamp, TimestampText};
///
/// let mut last = TimestampText::default();
/// let mut out = Vec::new();
/// for text in ["2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z", "2026-11-22T10:00:00.000001Z"] {
///     last.push(&mut out, text.parse()?);
///     out.push(b' ');
/// }
/// assert_eq!(out, b"2026-11-22T10:00:00.000Z 2026-11-22T10:00:00.000Z 2026-11-22T10:00:00.000001Z ");
/// # Ok::<(), cdp_calls::TimestampError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TimestampText {
    /// The instant `text` holds, if any.
    at: Option<Timestamp>,
    text: [u8; 27],
    len: usize,
}

impl TimestampText {
    /// No instant written yet (the same as [`TimestampText::default`], usable in
    /// constants).
    pub const fn new() -> TimestampText {
        TimestampText { at: None, text: [0; 27], len: 0 }
    }

    /// Appends the RFC 3339 UTC text of `at` to `out`, formatting it only when it is
    /// not the instant written last.
    #[inline]
    pub fn push(&mut self, out: &mut Vec<u8>, at: Timestamp) {
        if self.at != Some(at) {
            self.len = at.format_into(&mut self.text).len();
            self.at = Some(at);
        }
        out.extend_from_slice(&self.text[..self.len]);
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse_rfc3339(s)
    }
}

impl From<SystemTime> for Timestamp {
    /// Converts, saturating at [`Timestamp::MIN`] and [`Timestamp::MAX`].
    fn from(t: SystemTime) -> Timestamp {
        let micros = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
        };
        Timestamp(micros.clamp(MIN_MICROS, MAX_MICROS))
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> SystemTime {
        let abs = std::time::Duration::from_micros(t.0.unsigned_abs());
        if t.0 >= 0 { UNIX_EPOCH + abs } else { UNIX_EPOCH - abs }
    }
}

impl From<chrono::DateTime<chrono::Utc>> for Timestamp {
    /// Converts, truncating to the microsecond and saturating at the year bounds.
    fn from(t: chrono::DateTime<chrono::Utc>) -> Timestamp {
        Timestamp(t.timestamp_micros().clamp(MIN_MICROS, MAX_MICROS))
    }
}

impl From<Timestamp> for chrono::DateTime<chrono::Utc> {
    fn from(t: Timestamp) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_micros(t.0).expect("years 0000-9999 fit chrono's range")
    }
}

/// Parses RFC 3339 text with chrono, keeping this type's rules: ASCII only, the
/// instant within the years 0000 to 9999, and [`TimestampError`]'s reasons.
fn parse(text: &str) -> Result<Timestamp, TimestampError> {
    match chrono::DateTime::parse_from_rfc3339(text) {
        // chrono also takes U+2212 (minus sign) before an offset; RFC 3339 does not.
        Ok(_) if !text.is_ascii() => Err(TimestampError::Shape),
        // Digits past the ninth are skipped, nanoseconds truncated to microseconds,
        // and a leap second (`:60`) is the first instant of the next minute.
        Ok(t) => Timestamp::from_micros(t.timestamp_micros()).ok_or(TimestampError::Year),
        Err(_) => Err(rejection(text.as_bytes())),
    }
}

/// Why chrono rejected `b`: [`TimestampError::Shape`] unless it has the shape
/// `YYYY-MM-DD(T|t| )HH:MM:SS[.digits](Z|z|±HH:MM)`; else the first part out of
/// range, the offset first, then month, day, hour, minute and second (chrono does
/// not say which).
fn rejection(b: &[u8]) -> TimestampError {
    use TimestampError::{OutOfRange, Shape};
    // Byte by byte: `9` is a digit, `T` is `T`, `t` or a space, anything else itself.
    let fits = |pattern: &[u8], text: &[u8]| {
        pattern.len() == text.len()
            && pattern.iter().zip(text).all(|(&p, &c)| match p {
                b'9' => c.is_ascii_digit(),
                b'T' => matches!(c, b'T' | b't' | b' '),
                _ => c == p,
            })
    };
    let number = |text: &[u8]| text.iter().fold(0u32, |n, &c| n * 10 + u32::from(c - b'0'));
    let Some((head, mut rest)) = b.split_at_checked(19) else { return Shape };
    if !fits(b"9999-99-99T99:99:99", head) {
        return Shape;
    }
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Shape;
        }
        rest = &fraction[digits..];
    }
    match rest {
        [b'Z' | b'z'] => {}
        [b'+' | b'-', offset @ ..] if fits(b"99:99", offset) => {
            if number(&offset[..2]) > 23 || number(&offset[3..]) > 59 {
                return OutOfRange { part: "offset" };
            }
        }
        _ => return Shape,
    }
    let [year, month, day, hour, minute, second] =
        [(0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2)].map(|(at, n)| number(&head[at..at + n]));
    let part = if !(1..=12).contains(&month) {
        "month"
    } else if chrono::NaiveDate::from_ymd_opt(year as i32, month, day).is_none() {
        "day"
    } else if hour > 23 {
        "hour"
    } else if minute > 59 {
        "minute"
    } else if second > 60 {
        "second"
    } else {
        // Every part in range: chrono takes all such text, so this is not reached.
        return Shape;
    };
    OutOfRange { part }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_texts_never_change_a_result() {
        let cases: [&'static str; 11] = [
            "\0\0\0\0\0\0\0\0\0\0T10:00:00Z",
            "2026-11-22T10:00:00Z",
            "2026-11-22T25:00:00Z",
            "2026-11-22T10:60:00Z",
            "2026-11-22X10:00:00Z",
            "2026-11-22T10:00:00",
            "2026-11-22",
            "2026-02-30T10:00:00Z",
            "2026-02-28T10:00:00+01:00",
            "2026-13-01T00:00:00Z",
            "2024-02-29T23:59:59.999999Z",
        ];
        // What each gives in a thread of its own...
        let fresh: Vec<_> = cases
            .iter()
            .map(|&c| std::thread::spawn(move || Timestamp::parse_rfc3339(c)).join().unwrap())
            .collect();
        assert_eq!(fresh[0], Err(TimestampError::Shape), "not a date");
        // ...and after every other case, in any order.
        for primer in cases {
            for (case, want) in cases.iter().zip(&fresh) {
                let _ = Timestamp::parse_rfc3339(primer);
                assert_eq!(&Timestamp::parse_rfc3339(case), want, "{case} after {primer}");
            }
        }
    }

    #[test]
    fn formats_the_same_whatever_came_before() {
        let seconds = [
            MIN_MICROS / MICROS_PER_SEC,
            -1,
            0,
            1,
            951_782_399, // 2000-02-28T23:59:59
            951_782_400,
            1_795_341_600, // 2026-11-22T10:00:00
            1_795_341_601,
            MAX_MICROS / MICROS_PER_SEC,
        ];
        let fractions = [0, 1, 999, 1_000, 500_000, 999_999];
        let cases: Vec<Timestamp> = seconds
            .iter()
            .flat_map(|s| {
                fractions.iter().map(move |f| Timestamp::from_micros(s * MICROS_PER_SEC + f).unwrap())
            })
            .collect();
        // Each formatted in a thread of its own, checked by chrono...
        let fresh: Vec<String> =
            cases.iter().map(|&t| std::thread::spawn(move || t.to_string()).join().unwrap()).collect();
        for (t, text) in cases.iter().zip(&fresh) {
            let micros = t.as_micros();
            let want = chrono::DateTime::from_timestamp_micros(micros).unwrap();
            let digits = if micros.rem_euclid(1_000) == 0 { 3 } else { 6 };
            let format = if digits == 3 { "%Y-%m-%dT%H:%M:%S%.3fZ" } else { "%Y-%m-%dT%H:%M:%S%.6fZ" };
            assert_eq!(text, &want.format(format).to_string());
        }
        // ...and after every other case.
        for primer in &cases {
            for (case, want) in cases.iter().zip(&fresh) {
                let _ = primer.to_string();
                assert_eq!(&case.to_string(), want, "{case:?} after {primer:?}");
            }
        }
    }

    #[test]
    fn parses_and_formats_utc_with_millis_or_micros() {
        let cases = [
            ("2026-11-22T10:00:00Z", "2026-11-22T10:00:00.000Z"),
            ("2026-11-22T10:00:00.1Z", "2026-11-22T10:00:00.100Z"),
            ("2026-11-22T10:00:00.123456789Z", "2026-11-22T10:00:00.123456Z"),
            ("2026-11-22t10:00:00.000001z", "2026-11-22T10:00:00.000001Z"),
            ("2026-11-22 12:30:00+02:30", "2026-11-22T10:00:00.000Z"),
            ("2026-01-01T00:30:00-01:00", "2026-01-01T01:30:00.000Z"),
            ("2024-02-29T23:59:59.999Z", "2024-02-29T23:59:59.999Z"),
            ("1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z"),
            ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00.000Z"),
            ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
            ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00.000Z"),
        ];
        for (input, want) in cases {
            let t: Timestamp = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(t.to_string(), want, "{input}");
            assert_eq!(want.parse::<Timestamp>(), Ok(t), "{want} reparses");
        }
    }

    #[test]
    fn formats_the_last_hours_of_9999() {
        // jiff's own timestamps end at 9999-12-30T22:00:00Z; ours go on to the year's end.
        for text in [
            "9999-12-30T21:59:59.999999Z",
            "9999-12-30T22:00:00.000Z",
            "9999-12-30T22:00:00.000001Z",
            "9999-12-31T12:34:56.789Z",
            "9999-12-31T23:59:59.999999Z",
        ] {
            let t: Timestamp = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
            let mut out = b"at ".to_vec();
            t.push_rfc3339(&mut out);
            assert_eq!(out, format!("at {text}").as_bytes());
            assert_eq!(t.rfc3339_len(), text.len());
        }
    }

    #[test]
    fn agrees_with_chrono() {
        for text in ["2026-11-22T10:00:00.123Z", "1901-03-04T05:06:07.000008+09:00"] {
            let ours: Timestamp = text.parse().unwrap();
            let theirs = chrono::DateTime::parse_from_rfc3339(text).unwrap();
            assert_eq!(ours.as_micros(), theirs.timestamp_micros(), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_text_with_a_reason() {
        use TimestampError::*;
        let cases = [
            ("", Shape),
            ("2026-11-22", Shape),
            ("2026-11-22T10:00:00", Shape),
            ("2026-11-22T10:00:00.Z", Shape),
            ("2026-11-22T10:00:00Zjunk", Shape),
            ("2026-11-22T10:00:00+0100", Shape),
            ("1795341600", Shape),
            ("2026-13-01T00:00:00Z", OutOfRange { part: "month" }),
            ("2025-02-29T00:00:00Z", OutOfRange { part: "day" }),
            ("2026-11-22T24:00:00Z", OutOfRange { part: "hour" }),
            ("2026-11-22T10:60:00Z", OutOfRange { part: "minute" }),
            ("2026-11-22T10:00:61Z", OutOfRange { part: "second" }),
            ("2026-11-22T10:00:00+24:00", OutOfRange { part: "offset" }),
            ("0000-01-01T00:00:00+01:00", Year),
            ("9999-12-31T23:59:59-01:00", Year),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Timestamp>(), Err(want), "{input:?}");
        }
    }

    #[test]
    fn keeps_its_rules_where_chrono_differs() {
        use TimestampError::*;
        let cases = [
            // chrono takes U+2212 (minus sign) before an offset; RFC 3339 does not.
            ("2026-11-22T10:00:00\u{2212}01:00", Err(Shape)),
            // chrono checks the date before the rest of the shape: the shape comes first...
            ("2026-13-01T00:00:00", Err(Shape)),
            ("2026-02-30T10:00:00Zjunk", Err(Shape)),
            ("2026-02-30T10:00:00.Z", Err(Shape)),
            // ...then the offset, then the parts in order.
            ("2026-13-32T24:60:61+24:00", Err(OutOfRange { part: "offset" })),
            ("2026-11-22T10:00:00-23:60", Err(OutOfRange { part: "offset" })),
            ("2026-13-32T24:60:61Z", Err(OutOfRange { part: "month" })),
            ("2026-00-01T00:00:00Z", Err(OutOfRange { part: "month" })),
            ("2026-02-00T00:00:00Z", Err(OutOfRange { part: "day" })),
            ("2000-02-30T24:60:61Z", Err(OutOfRange { part: "day" })),
            ("2026-11-22T24:60:61Z", Err(OutOfRange { part: "hour" })),
            ("2026-11-22T23:60:61Z", Err(OutOfRange { part: "minute" })),
            ("2026-11-22T23:59:61Z", Err(OutOfRange { part: "second" })),
            // Digits past the ninth are skipped, the rest truncated to the microsecond;
            // a leap second, with a fraction and an offset, is the next minute's start.
            ("2026-11-22T10:00:00.1234569999999999+00:00", Ok("2026-11-22T10:00:00.123456Z")),
            ("2016-12-31T23:59:60.5+01:00", Ok("2016-12-31T23:00:00.500Z")),
            ("2000-02-29T10:00:60-00:00", Ok("2000-02-29T10:01:00.000Z")),
        ];
        for (input, want) in cases {
            let got = input.parse::<Timestamp>().map(|t| t.to_string());
            assert_eq!(got, want.map(str::to_owned), "{input:?}");
        }
    }

    #[test]
    fn converts_to_and_from_system_time_and_chrono() {
        let t: Timestamp = "2026-11-22T10:00:00.000123Z".parse().unwrap();
        assert_eq!(Timestamp::from(SystemTime::from(t)), t);
        let c: chrono::DateTime<chrono::Utc> = t.into();
        assert_eq!(Timestamp::from(c), t);
        let before: Timestamp = "1960-01-01T00:00:00.5Z".parse().unwrap();
        assert_eq!(Timestamp::from(SystemTime::from(before)), before);
        assert_eq!(before.as_secs(), -315_619_200);
        assert_eq!(before.as_millis(), -315_619_199_500);
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_is_identity(micros in MIN_MICROS..=MAX_MICROS) {
            let t = Timestamp::from_micros(micros).unwrap();
            proptest::prop_assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t));
            let c: chrono::DateTime<chrono::Utc> = t.into();
            proptest::prop_assert_eq!(c.timestamp_micros(), micros);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<Timestamp>();
        }
    }
}
