//! Hand-written hot paths measured against their crates (issue 17) that the bench
//! cannot call where they live: `cargo bench -p cdp-warehouse --bench hotpaths` runs
//! each against its crate, after checking that both give the same result on every
//! input. Nothing outside this bench uses them.
//!
//! - [`time`]: cdp-calls' former RFC 3339 parser and writer
//!   (`Timestamp::parse_rfc3339`, `Timestamp::push_rfc3339`), replaced by chrono and
//!   jiff, as they were in `crates/calls/src/time.rs` before they were deleted there.
//! - [`csv`]: a copy of cdp-encode's CSV field quoting (`push_field`, `push_quoted`,
//!   private in `crates/encode/src/csv.rs`), which stays: `csv_core::Writer` in its
//!   place made the CSV export 19-24 % slower (checked at start to write exactly
//!   what the encoder writes).

/// RFC 3339 text to and from [`Timestamp`], by hand (formerly in
/// `crates/calls/src/time.rs`).
pub(crate) mod time {
    use std::cell::Cell;

    use cdp_warehouse::calls::{Timestamp, TimestampError};

    /// Microseconds in one second.
    const MICROS_PER_SEC: i64 = 1_000_000;
    /// Seconds in one day.
    const SECS_PER_DAY: i64 = 86_400;

    /// Parses RFC 3339 text: `YYYY-MM-DD`, `T` (or `t` or a space), `HH:MM:SS`, an
    /// optional fraction of any length, then `Z`, `z` or `±HH:MM`.
    pub(crate) fn parse_rfc3339(text: &str) -> Result<Timestamp, TimestampError> {
        parse(text.as_bytes())
    }

    /// Appends the RFC 3339 UTC text: 24 bytes (`2026-11-22T10:00:00.000Z`), or 27
    /// when the value has a sub-millisecond part.
    #[inline]
    pub(crate) fn push_rfc3339(t: Timestamp, out: &mut Vec<u8>) {
        let mut buf = [0u8; 27];
        let len = write_rfc3339(t, &mut buf);
        out.extend_from_slice(&buf[..len]);
    }

    /// Writes the RFC 3339 UTC text into `buf` and returns its length.
    fn write_rfc3339(t: Timestamp, buf: &mut [u8; 27]) -> usize {
        let secs = t.as_micros().div_euclid(MICROS_PER_SEC);
        // Within a second every part fits a u32.
        let micros = t.as_micros().rem_euclid(MICROS_PER_SEC) as u32;
        let (last, text) = LAST_SECOND.with(Cell::get);
        let head = if last == secs {
            text
        } else {
            let text = format_second(secs);
            LAST_SECOND.with(|c| c.set((secs, text)));
            text
        };
        buf[..19].copy_from_slice(&head);
        buf[19] = b'.';
        let (millis, sub) = (micros / 1000, micros % 1000);
        buf[20..22].copy_from_slice(&DIGIT_PAIRS[(millis / 10) as usize]);
        buf[22] = b'0' + (millis % 10) as u8;
        buf[23..25].copy_from_slice(&DIGIT_PAIRS[(sub / 10) as usize]);
        buf[25] = b'0' + (sub % 10) as u8;
        let len = if sub == 0 { 23 } else { 26 };
        buf[len] = b'Z';
        len + 1
    }

    thread_local! {
        /// The last second formatted (seconds since the epoch) and its text
        /// (`YYYY-MM-DDTHH:MM:SS`): the timestamps of a row, and of the rows around
        /// it, mostly share their second, so most skip the calendar arithmetic. No
        /// timestamp lies in second `i64::MIN`, so the first one always misses.
        static LAST_SECOND: Cell<(i64, [u8; 19])> = const { Cell::new((i64::MIN, [0; 19])) };
    }

    /// `YYYY-MM-DDTHH:MM:SS` of a second since the epoch within the years 0000-9999.
    fn format_second(secs: i64) -> [u8; 19] {
        let days = secs.div_euclid(SECS_PER_DAY);
        // Within a day and within the years 0000-9999, every part fits a u32.
        let in_day = secs.rem_euclid(SECS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        let (year, month, day) = (year as u32, month as u32, day as u32);
        let mut text = *b"0000-00-00T00:00:00";
        let mut put2 = |at: usize, v: u32| text[at..at + 2].copy_from_slice(&DIGIT_PAIRS[v as usize]);
        put2(0, year / 100);
        put2(2, year % 100);
        put2(5, month);
        put2(8, day);
        put2(11, in_day / 3600);
        put2(14, in_day / 60 % 60);
        put2(17, in_day % 60);
        text
    }

    /// `"00"` to `"99"`.
    const DIGIT_PAIRS: [[u8; 2]; 100] = {
        let mut pairs = [[0u8; 2]; 100];
        let mut i = 0;
        while i < 100 {
            pairs[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
            i += 1;
        }
        pairs
    };

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
    fn civil_from_days(days: i64) -> (i64, i64, i64) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day)
    }

    fn days_in_month(year: i64, month: i64) -> i64 {
        match month {
            2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    /// Reads `n` ASCII digits at `at` as a number.
    fn digits(b: &[u8], at: usize, n: usize) -> Result<i64, TimestampError> {
        let field = b.get(at..at + n).ok_or(TimestampError::Shape)?;
        field.iter().try_fold(0i64, |acc, &c| {
            if c.is_ascii_digit() { Ok(acc * 10 + i64::from(c - b'0')) } else { Err(TimestampError::Shape) }
        })
    }

    fn expect(b: &[u8], at: usize, what: &[u8]) -> Result<(), TimestampError> {
        match b.get(at) {
            Some(c) if what.contains(c) => Ok(()),
            _ => Err(TimestampError::Shape),
        }
    }

    thread_local! {
        /// The last valid date parsed (`YYYY-MM-DD`) and its day number: the calls of a
        /// stream share a few dates, so most timestamps skip the calendar arithmetic.
        static LAST_DATE: Cell<Option<([u8; 10], i64)>> = const { Cell::new(None) };
    }

    fn parse(b: &[u8]) -> Result<Timestamp, TimestampError> {
        let date: Option<[u8; 10]> = b.get(..10).and_then(|d| d.try_into().ok());
        let cached = date.and_then(|d| {
            let (last, days) = LAST_DATE.with(Cell::get)?;
            (last == d).then_some(days)
        });
        let (year, month, day) = match cached {
            Some(_) => (0, 1, 1),
            None => {
                let year = digits(b, 0, 4)?;
                expect(b, 4, b"-")?;
                let month = digits(b, 5, 2)?;
                expect(b, 7, b"-")?;
                (year, month, digits(b, 8, 2)?)
            }
        };
        expect(b, 10, b"Tt ")?;
        let hour = digits(b, 11, 2)?;
        expect(b, 13, b":")?;
        let minute = digits(b, 14, 2)?;
        expect(b, 16, b":")?;
        let second = digits(b, 17, 2)?;
        let mut at = 19;
        let mut micros = 0i64;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while let Some(c) = b.get(at).filter(|c| c.is_ascii_digit()) {
                if at - start < 6 {
                    micros = micros * 10 + i64::from(c - b'0');
                }
                at += 1;
            }
            let n = at - start;
            if n == 0 {
                return Err(TimestampError::Shape);
            }
            for _ in n..6 {
                micros *= 10;
            }
        }
        let offset_secs = match b.get(at) {
            Some(b'Z' | b'z') if b.len() == at + 1 => 0,
            Some(&sign @ (b'+' | b'-')) if b.len() == at + 6 => {
                let oh = digits(b, at + 1, 2)?;
                expect(b, at + 3, b":")?;
                let om = digits(b, at + 4, 2)?;
                if oh > 23 || om > 59 {
                    return Err(TimestampError::OutOfRange { part: "offset" });
                }
                let secs = oh * 3600 + om * 60;
                if sign == b'+' { secs } else { -secs }
            }
            _ => return Err(TimestampError::Shape),
        };
        let checks = [
            ("month", cached.is_some() || (1..=12).contains(&month)),
            ("day", cached.is_some() || (day >= 1 && month <= 12 && day <= days_in_month(year, month))),
            ("hour", hour <= 23),
            ("minute", minute <= 59),
            ("second", second <= 60),
        ];
        if let Some((part, _)) = checks.iter().find(|(_, ok)| !ok) {
            return Err(TimestampError::OutOfRange { part });
        }
        let days = match (cached, date) {
            (Some(days), _) => days,
            (None, date) => {
                let days = days_from_civil(year, month, day);
                if let Some(date) = date {
                    LAST_DATE.with(|last| last.set(Some((date, days))));
                }
                days
            }
        };
        let secs = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second - offset_secs;
        Timestamp::from_micros(secs * MICROS_PER_SEC + micros).ok_or(TimestampError::Year)
    }
}

/// CSV field quoting, by hand (a copy of `push_field` and `push_quoted` in
/// `crates/encode/src/csv.rs`).
pub(crate) mod csv {
    /// Appends one field, enclosed in quotes (inner quotes doubled) when it holds a
    /// comma, a quote, CR or LF.
    pub(crate) fn push_field(out: &mut Vec<u8>, field: &[u8]) {
        // A JSON object other than `{}` always holds a quote: skip the check.
        let quote = (field.first() == Some(&b'{') && field.len() > 2)
            || field.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
        if !quote {
            out.extend_from_slice(field);
            return;
        }
        push_quoted(out, field);
    }

    /// Appends `field` enclosed in quotes, inner quotes doubled.
    ///
    /// Eight bytes at a time: each word is stored whole, and for each quote in it the
    /// rest of the word, from that quote on, is stored again one byte further along,
    /// which doubles the quote and shifts what follows. The room is made up front (at
    /// most twice the field, the two quotes, and slack for the eight-byte stores).
    fn push_quoted(out: &mut Vec<u8>, field: &[u8]) {
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        const QUOTES: u64 = 0x2222_2222_2222_2222;
        let start = out.len();
        out.resize(start + 2 * field.len() + 2 + 16, 0);
        let buf = &mut out[start..];
        buf[0] = b'"';
        let mut at = 1;
        let mut put = |word: u64, len: usize, at: &mut usize| {
            buf[*at..*at + 8].copy_from_slice(&word.to_le_bytes());
            // The high bit of each byte of `word` that is a quote, exactly.
            let x = word ^ QUOTES;
            let mut quotes = !(((x & LOW7) + LOW7) | x | LOW7);
            let mut shift = 0;
            while quotes != 0 {
                let q = (quotes.trailing_zeros() / 8) as usize;
                if q >= len {
                    break;
                }
                let from = *at + q + shift + 1;
                buf[from..from + 8].copy_from_slice(&(word >> (8 * q)).to_le_bytes());
                shift += 1;
                quotes &= quotes - 1;
            }
            *at += len + shift;
        };
        let mut words = field.chunks_exact(8);
        for word in &mut words {
            put(u64::from_le_bytes(word.try_into().expect("eight bytes")), 8, &mut at);
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut last = [0u8; 8];
            last[..tail.len()].copy_from_slice(tail);
            put(u64::from_le_bytes(last), tail.len(), &mut at);
        }
        buf[at] = b'"';
        out.truncate(start + at + 1);
    }
}
