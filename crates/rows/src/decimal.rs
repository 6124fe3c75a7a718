//! Exact decimals: when decimal text is written as a JSON number, and in what form.
//!
//! The rule (also in the crate docs): decimal text is a JSON number when it *fits
//! exactly*, that is when
//! - it is an integer (after removing a zero fraction or applying an exponent) from
//!   `i64::MIN` to `u64::MAX`, which JSON readers hold exactly as integers; or
//! - it has at most 15 significant digits (`DBL_DIG`) and a magnitude within
//!   10^±300, so every JSON reader's double holds it and prints it back (`0.1`,
//!   `19.99`, `-1.5E+3`; not `0.1000000000000000000001`, `10.523345114076148` or
//!   `1e400`). Sixteen or seventeen digits may survive the nearest double too, but
//!   only for a reader that rounds correctly: serde_json's default parser, among
//!   others, is off by one unit in the last place for some of them, so such values
//!   are strings, as SPEC section 5 says.
//!
//! Otherwise, and for text that is not a decimal number at all (`NaN`, `Infinity`),
//! it is the JSON string of the text as given.

/// At most this many significant digits are examined; more never fit.
const MAX_DIGITS: usize = 40;

/// Decimal text split into its parts: `[sign] int [. frac] [e exp]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    neg: bool,
    plus: bool,
    int: &'a [u8],
    /// `None` when there is no `.`.
    frac: Option<&'a [u8]>,
    /// The exponent, saturated to ±10^15.
    exp: i64,
    /// The exponent's text after `e`/`E` (sign included), if any.
    exp_text: Option<&'a [u8]>,
}

/// Splits decimal text: `[+-] (digits [. digits?] | . digits) [(e|E) [+-] digits]`.
pub(crate) fn split(text: &str) -> Option<Parts<'_>> {
    let b = text.as_bytes();
    let mut i = 0;
    let (neg, plus) = match b.first() {
        Some(b'-') => (true, false),
        Some(b'+') => (false, true),
        _ => (false, false),
    };
    if neg || plus {
        i += 1;
    }
    let digits_from = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    let int_end = digits_from(i);
    let int = &b[i..int_end];
    i = int_end;
    let mut frac = None;
    if b.get(i) == Some(&b'.') {
        let end = digits_from(i + 1);
        frac = Some(&b[i + 1..end]);
        i = end;
    }
    if int.is_empty() && frac.is_none_or(<[u8]>::is_empty) {
        return None;
    }
    let mut exp = 0i64;
    let mut exp_text = None;
    if let Some(b'e' | b'E') = b.get(i) {
        let start = i + 1;
        let mut j = start;
        let exp_neg = match b.get(j) {
            Some(b'-') => {
                j += 1;
                true
            }
            Some(b'+') => {
                j += 1;
                false
            }
            _ => false,
        };
        let end = digits_from(j);
        if end == j {
            return None;
        }
        for &d in &b[j..end] {
            exp = (exp * 10 + i64::from(d - b'0')).min(1_000_000_000_000_000);
        }
        if exp_neg {
            exp = -exp;
        }
        exp_text = Some(&b[start..end]);
        i = end;
    }
    (i == b.len()).then_some(Parts { neg, plus, int, frac, exp, exp_text })
}

/// A decimal value as significant digits and a power of ten: `digits × 10^exp`,
/// with no leading or trailing zeros in `digits` (none at all for zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Normal {
    neg: bool,
    digits: [u8; MAX_DIGITS],
    len: usize,
    exp: i64,
}

impl Normal {
    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn is_negative(&self) -> bool {
        self.neg && !self.is_zero()
    }

    /// The value when it is an integer whose magnitude fits a `u128`.
    pub(crate) fn integer_magnitude(&self) -> Option<u128> {
        if self.exp < 0 {
            return None;
        }
        let mut v: u128 = 0;
        for &d in self.digits() {
            v = v.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
        }
        for _ in 0..self.exp {
            v = v.checked_mul(10)?;
        }
        Some(v)
    }

    /// `trunc(|value| × 10^scale)`, if it fits a `u128`.
    pub(crate) fn scaled_magnitude(&self, scale: i64) -> Option<u128> {
        let exp = self.exp.checked_add(scale)?;
        let keep = if exp >= 0 {
            self.len
        } else {
            // Drop the digits below the units place.
            let drop = usize::try_from(exp.unsigned_abs()).unwrap_or(usize::MAX);
            self.len.saturating_sub(drop)
        };
        let mut v: u128 = 0;
        for &d in &self.digits()[..keep] {
            v = v.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
        }
        for _ in 0..exp.max(0) {
            v = v.checked_mul(10)?;
        }
        Some(v)
    }
}

/// Normalises split decimal text; `None` with more than [`MAX_DIGITS`] significant
/// digits.
pub(crate) fn normalize(p: &Parts<'_>) -> Option<Normal> {
    let frac = p.frac.unwrap_or_default();
    let all = || p.int.iter().chain(frac.iter()).copied();
    let total = p.int.len() + frac.len();
    let Some(first) = all().position(|d| d != b'0') else {
        return Some(Normal { neg: p.neg, digits: [0; MAX_DIGITS], len: 0, exp: 0 });
    };
    let last = total - 1 - all().rev().position(|d| d != b'0').unwrap_or(0);
    let len = last + 1 - first;
    if len > MAX_DIGITS {
        return None;
    }
    let mut digits = [0u8; MAX_DIGITS];
    for (slot, d) in digits.iter_mut().zip(all().skip(first).take(len)) {
        *slot = d;
    }
    // The power of ten of the last significant digit.
    let place = i64::try_from(p.int.len()).unwrap_or(i64::MAX) - 1 - i64::try_from(last).unwrap_or(0);
    Some(Normal { neg: p.neg, digits, len, exp: p.exp.saturating_add(place) })
}

/// Whether the value fits exactly in a JSON number (see the module docs).
pub(crate) fn fits_json_number(n: &Normal) -> bool {
    if n.is_zero() {
        return true;
    }
    if let Some(m) = n.integer_magnitude() {
        let limit = if n.neg { 1u128 << 63 } else { u128::from(u64::MAX) };
        if m <= limit {
            return true;
        }
    }
    // Up to 15 significant digits (DBL_DIG) within the normal range, distinct
    // decimals map to distinct doubles, so the shortest form gives the digits back.
    let magnitude = n.exp.saturating_add(n.len as i64);
    n.len <= 15 && (-300..=300).contains(&magnitude)
}

/// Whether the text follows the JSON number grammar as it is.
fn is_json_number(p: &Parts<'_>) -> bool {
    let int_ok = match p.int {
        [] => false,
        [b'0'] => true,
        [b'0', ..] => false,
        _ => true,
    };
    !p.plus && int_ok && p.frac.is_none_or(|f| !f.is_empty())
}

/// Appends the JSON number form of decimal text that fits: the text as given when it
/// is already valid JSON, else with `+`, superfluous leading zeros and a bare `.`
/// removed (`+007.` → `7`, `.5` → `0.5`).
fn push_number(out: &mut Vec<u8>, text: &str, p: &Parts<'_>) {
    if is_json_number(p) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    if p.neg {
        out.push(b'-');
    }
    let int = match p.int.iter().position(|&d| d != b'0') {
        Some(i) => &p.int[i..],
        None => b"0",
    };
    out.extend_from_slice(int);
    if let Some(frac) = p.frac.filter(|f| !f.is_empty()) {
        out.push(b'.');
        out.extend_from_slice(frac);
    }
    if let Some(exp) = p.exp_text {
        out.push(b'e');
        out.extend_from_slice(exp);
    }
}

/// The longest text [`is_short_plain_json_number`] looks at: a plain number of at
/// most this many characters has a magnitude within 10^±300.
const SHORT_PLAIN_MAX: usize = 300;

/// Whether the text is a JSON number of the common plain shape (`-12.50`,
/// `0.10000000000000000000`: no exponent, no superfluous leading zero) of at most
/// [`SHORT_PLAIN_MAX`] characters with at most 15 significant digits (zeros before
/// the first and after the last other digit do not count), which always fits.
fn is_short_plain_json_number(text: &[u8]) -> bool {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty()
        || digits.len() > SHORT_PLAIN_MAX
        || digits.first() == Some(&b'.')
        || digits.last() == Some(&b'.')
    {
        return false;
    }
    if digits.len() > 1 && digits[0] == b'0' && digits[1] != b'.' {
        return false;
    }
    let mut dots = 0;
    // Positions among the digits of the first and the last significant digit.
    let mut first = None;
    let mut last = 0;
    let mut position = 0usize;
    for &b in digits {
        match b {
            b'0' => position += 1,
            b'1'..=b'9' => {
                first.get_or_insert(position);
                last = position;
                position += 1;
            }
            b'.' => dots += 1,
            _ => return false,
        }
    }
    dots <= 1 && first.is_none_or(|first| last - first < 15)
}

/// Appends decimal text as JSON: a number when it fits exactly, else a string.
pub(crate) fn push_decimal_json(out: &mut Vec<u8>, text: &str) {
    if is_short_plain_json_number(text.as_bytes()) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    if let Some(p) = split(text)
        && normalize(&p).is_some_and(|n| fits_json_number(&n))
    {
        push_number(out, text, &p);
        return;
    }
    cdp_calls::push_json_string(out, text);
}

/// Decimal text as an id string (`userId`, `groupId`, …): an integer as its plain
/// digits (`42.000` → `42`), anything else as given.
pub(crate) fn decimal_id_text(text: &str) -> String {
    if let Some(n) = split(text).and_then(|p| normalize(&p))
        && let Some(m) = n.integer_magnitude()
    {
        return if n.is_negative() { format!("-{m}") } else { m.to_string() };
    }
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        let mut out = Vec::new();
        push_decimal_json(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn splits_and_normalizes() {
        let n = normalize(&split("-0012.3400e2").unwrap()).unwrap();
        assert_eq!((n.neg, n.digits(), n.exp), (true, &b"1234"[..], 0));
        let n = normalize(&split("1200").unwrap()).unwrap();
        assert_eq!((n.digits(), n.exp), (&b"12"[..], 2));
        let n = normalize(&split(".05").unwrap()).unwrap();
        assert_eq!((n.digits(), n.exp), (&b"5"[..], -2));
        assert!(normalize(&split("0.000").unwrap()).unwrap().is_zero());
        for bad in ["", "-", ".", "e5", "1e", "1e+", "1.2.3", "NaN", "Infinity", " 1", "1 ", "0x10", "1_000"]
        {
            assert!(split(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn numbers_that_fit_stay_numbers() {
        for (text, want) in [
            ("0", "0"),
            ("-0.0", "-0.0"),
            ("42", "42"),
            ("42.000", "42.000"),
            ("19.99", "19.99"),
            ("0.1", "0.1"),
            ("-1.5E+3", "-1.5E+3"),
            ("18446744073709551615", "18446744073709551615"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("1e23", "1e23"),
            ("+7", "7"),
            ("007.50", "7.50"),
            (".5", "0.5"),
            ("5.", "5"),
            ("2.5e-3", "2.5e-3"),
        ] {
            assert_eq!(json(text), want, "{text}");
        }
    }

    #[test]
    fn numbers_that_do_not_fit_become_strings() {
        for text in [
            "0.1000000000000000000001",
            "18446744073709551617",
            "-9223372036854775809",
            "12345678901234567890123.5",
            "1e400",
            "1e-400",
            "NaN",
            "Infinity",
            "-Infinity",
            "abc",
        ] {
            assert_eq!(json(text), format!("\"{text}\""), "{text}");
        }
    }

    #[test]
    fn the_short_path_agrees_with_the_full_rule() {
        for text in [
            "0",
            "-0",
            "0.5",
            "-12.50",
            "123456789012345",
            "1234567890.12345",
            "00",
            "01",
            "1.",
            ".1",
            "-",
            "",
            "1.2.3",
        ] {
            let short = is_short_plain_json_number(text.as_bytes());
            let full = split(text)
                .is_some_and(|p| is_json_number(&p) && normalize(&p).is_some_and(|n| fits_json_number(&n)));
            assert!(!short || full, "{text:?}: the short path must only accept what the full rule does");
        }
        assert!(is_short_plain_json_number(b"-12.50"));
        assert!(is_short_plain_json_number(b"0.10000000000000000000"));
        assert!(is_short_plain_json_number(b"0.000"));
        assert!(!is_short_plain_json_number(b"1234567890123456"));
        assert!(!is_short_plain_json_number(b"1.000000000000001"));
    }

    proptest::proptest! {
        /// The short path accepts only what the full rule makes a number as given.
        #[test]
        fn the_short_path_never_disagrees(
            neg in proptest::bool::ANY,
            int in "[0-9]{0,20}",
            frac in proptest::option::of("[0-9]{0,320}"),
            zeros in 0usize..320,
        ) {
            let mut text = String::new();
            if neg {
                text.push('-');
            }
            text.push_str(&int);
            if let Some(frac) = frac {
                text.push('.');
                text.push_str(&"0".repeat(zeros));
                text.push_str(&frac);
            }
            let full = split(&text)
                .is_some_and(|p| is_json_number(&p) && normalize(&p).is_some_and(|n| fits_json_number(&n)));
            if is_short_plain_json_number(text.as_bytes()) {
                proptest::prop_assert!(full, "{}", text);
            }
        }
    }

    #[test]
    fn ids_drop_zero_fractions() {
        assert_eq!(decimal_id_text("42.000"), "42");
        assert_eq!(decimal_id_text("-7"), "-7");
        assert_eq!(decimal_id_text("1.5"), "1.5");
        assert_eq!(decimal_id_text("NaN"), "NaN");
    }

    #[test]
    fn scales_exactly() {
        let n = normalize(&split("1795341600.1234567").unwrap()).unwrap();
        assert_eq!(n.scaled_magnitude(6), Some(1_795_341_600_123_456));
        let n = normalize(&split("1.7953416E9").unwrap()).unwrap();
        assert_eq!(n.scaled_magnitude(0), Some(1_795_341_600));
        let n = normalize(&split("0.0000001").unwrap()).unwrap();
        assert_eq!(n.scaled_magnitude(6), Some(0));
    }
}
