//! PostgreSQL's binary `numeric` to its decimal text, exactly as the server prints it
//! (`numeric_out`): every digit kept, `dscale` digits after the point, and `NaN`,
//! `Infinity` and `-Infinity`.
//!
//! The binary form (`numeric_send`) is five 16-bit big-endian fields and the digits:
//! `ndigits`, `weight` (signed: the power of 10,000 of the first digit), `sign`
//! (`0x0000` positive, `0x4000` negative, `0xC000` NaN, `0xD000` +infinity, `0xF000`
//! −infinity), `dscale` (digits shown after the point), then `ndigits` base-10,000
//! digits, each 0 to 9,999.

/// Sign field: positive.
const POS: u16 = 0x0000;
/// Sign field: negative.
const NEG: u16 = 0x4000;
/// Sign field: not a number.
const NAN: u16 = 0xC000;
/// Sign field: +infinity.
const PINF: u16 = 0xD000;
/// Sign field: −infinity.
const NINF: u16 = 0xF000;
/// The bits of `dscale` that may be set.
const DSCALE_MASK: u16 = 0x3FFF;

/// Appends the decimal text of the binary numeric `raw` to `out`, or says why `raw` is
/// not a numeric (then `out` is left as it was).
pub(crate) fn write_numeric(raw: &[u8], out: &mut String) -> Result<(), String> {
    let field = |i: usize| raw.get(i * 2..i * 2 + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (Some(ndigits), Some(weight), Some(sign), Some(dscale)) = (field(0), field(1), field(2), field(3))
    else {
        return Err(format!("a binary numeric needs at least 8 bytes, got {}", raw.len()));
    };
    let ndigits = usize::from(ndigits);
    if raw.len() != 8 + 2 * ndigits {
        return Err(format!(
            "a binary numeric with {ndigits} digits is {} bytes long, got {}",
            8 + 2 * ndigits,
            raw.len()
        ));
    }
    match sign {
        POS | NEG => {}
        NAN => return special(out, "NaN", ndigits),
        PINF => return special(out, "Infinity", ndigits),
        NINF => return special(out, "-Infinity", ndigits),
        other => return Err(format!("unknown numeric sign 0x{other:04X}")),
    }
    if dscale & !DSCALE_MASK != 0 {
        return Err(format!("numeric display scale 0x{dscale:04X} is out of range"));
    }
    let weight = i32::from(weight as i16);
    let dscale = i32::from(dscale);
    let digits = &raw[8..];
    if let Some(d) = digits.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])).find(|&d| d > 9999) {
        return Err(format!("numeric digit {d} is over 9999"));
    }
    // Digit `d` (0 before the first and after the last).
    let digit = |d: i32| {
        usize::try_from(d)
            .ok()
            .and_then(|d| digits.get(2 * d..2 * d + 2))
            .map_or(0, |p| u16::from_be_bytes([p[0], p[1]]))
    };

    let start = out.len();
    out.reserve(2 + 4 * (weight.max(0) as usize + 1) + dscale as usize);
    if sign == NEG {
        out.push('-');
    }
    // The integer part: digits 0..=weight, the first without its leading zeros.
    let mut d;
    if weight < 0 {
        d = weight + 1;
        out.push('0');
    } else {
        d = 0;
        while d <= weight {
            let text = four_digits(digit(d));
            // The first digit without its leading zeros.
            let first = if d == 0 { text.bytes().position(|ch| ch != b'0').unwrap_or(3) } else { 0 };
            out.push_str(&text[first..]);
            d += 1;
        }
    }
    // The fraction: exactly dscale digits (the digits past the last are zeros).
    if dscale > 0 {
        out.push('.');
        let mut left = dscale as usize;
        while left > 0 {
            out.push_str(&four_digits(digit(d))[..left.min(4)]);
            left = left.saturating_sub(4);
            d += 1;
        }
    }
    debug_assert!(out.len() > start);
    Ok(())
}

/// NaN or an infinity, which carry no digits.
fn special(out: &mut String, text: &str, ndigits: usize) -> Result<(), String> {
    if ndigits != 0 {
        return Err(format!("a numeric {text} cannot have digits, got {ndigits}"));
    }
    out.push_str(text);
    Ok(())
}

/// `0000` to `9999`, four ASCII digits each, one after the other.
const fn four_digit_bytes() -> [u8; 40_000] {
    let mut bytes = [0u8; 40_000];
    let mut value = 0;
    while value < 10_000 {
        bytes[4 * value] = b'0' + (value / 1000) as u8;
        bytes[4 * value + 1] = b'0' + (value / 100 % 10) as u8;
        bytes[4 * value + 2] = b'0' + (value / 10 % 10) as u8;
        bytes[4 * value + 3] = b'0' + (value % 10) as u8;
        value += 1;
    }
    bytes
}

/// [`four_digit_bytes`], built at compile time.
static FOUR_DIGIT_BYTES: [u8; 40_000] = four_digit_bytes();

/// [`FOUR_DIGIT_BYTES`] as text (checked at compile time).
static FOUR_DIGITS: &str = match std::str::from_utf8(&FOUR_DIGIT_BYTES) {
    Ok(text) => text,
    Err(_) => panic!("ASCII digits are UTF-8"),
};

/// The four decimal digits of a base-10,000 digit (at most 9,999), most significant
/// first.
fn four_digits(value: u16) -> &'static str {
    let at = 4 * usize::from(value.min(9999));
    &FOUR_DIGITS[at..at + 4]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds the binary form by hand.
    fn binary(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(digits.len() as u16).to_be_bytes());
        raw.extend_from_slice(&weight.to_be_bytes());
        raw.extend_from_slice(&sign.to_be_bytes());
        raw.extend_from_slice(&dscale.to_be_bytes());
        for d in digits {
            raw.extend_from_slice(&d.to_be_bytes());
        }
        raw
    }

    fn text(raw: &[u8]) -> Result<String, String> {
        let mut out = String::new();
        write_numeric(raw, &mut out).map(|()| out)
    }

    #[test]
    fn hand_built_values() {
        // Worked out by hand from the format description.
        assert_eq!(text(&binary(0, POS, 0, &[])).unwrap(), "0");
        assert_eq!(text(&binary(0, POS, 2, &[])).unwrap(), "0.00");
        assert_eq!(text(&binary(0, POS, 0, &[42])).unwrap(), "42");
        assert_eq!(text(&binary(1, POS, 0, &[1, 2345])).unwrap(), "12345");
        assert_eq!(text(&binary(1, NEG, 3, &[1, 2345, 6700])).unwrap(), "-12345.670");
        assert_eq!(text(&binary(-1, POS, 4, &[1])).unwrap(), "0.0001");
        assert_eq!(text(&binary(-2, POS, 6, &[12])).unwrap(), "0.000000");
        assert_eq!(text(&binary(-2, POS, 10, &[12])).unwrap(), "0.0000001200");
        assert_eq!(text(&binary(2, POS, 0, &[1])).unwrap(), "100000000");
        assert_eq!(text(&binary(0, POS, 1, &[19, 9900])).unwrap(), "19.9");
        assert_eq!(text(&binary(0, NAN, 0, &[])).unwrap(), "NaN");
        assert_eq!(text(&binary(0, PINF, 0, &[])).unwrap(), "Infinity");
        assert_eq!(text(&binary(0, NINF, 0, &[])).unwrap(), "-Infinity");
    }

    #[test]
    fn four_digits_table() {
        for value in [0u16, 7, 42, 999, 1000, 1234, 9999] {
            assert_eq!(four_digits(value), format!("{value:04}"));
        }
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        assert!(text(&[]).is_err());
        assert!(text(&[0, 1, 0, 0, 0, 0, 0, 0]).is_err(), "one digit announced, none sent");
        assert!(text(&binary(0, 0x1234, 0, &[1])).is_err(), "unknown sign");
        assert!(text(&binary(0, POS, 0, &[10_000])).is_err(), "digit over 9999");
        assert!(text(&binary(0, POS, 0x4000, &[1])).is_err(), "dscale out of range");
        assert!(text(&binary(0, NAN, 0, &[1])).is_err(), "NaN with digits");
        // Extreme but well-formed headers stay bounded and do not panic.
        assert_eq!(text(&binary(i16::MAX, POS, 0, &[1])).unwrap().len(), 1 + 4 * 32767);
        assert_eq!(text(&binary(i16::MIN, NEG, 0x3FFF, &[1])).unwrap().len(), 3 + 0x3FFF);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = text(&raw);
        }
    }
}
