//! The event slug: the `event` column of track files.

/// The warehouse slug of an event name, as the Segment warehouse rule
/// (go-snakecase) makes it, byte by byte and ASCII only.
///
/// A word is a run of `[A-Z0-9]` followed by a run of `[a-z0-9]` (either may be
/// empty; digits belong to both); every other byte (punctuation, space, `_`, any
/// non-ASCII byte) separates words, and runs of separators collapse. Words are
/// lower-cased and joined with `_`, with no leading, trailing or doubled `_`. The
/// result can be empty.
///
/// ```
/// use cdp_calls::event_slug;
///
/// assert_eq!(event_slug("Order Completed"), "order_completed");
/// assert_eq!(event_slug("CStringRef"), "cstring_ref");
/// assert_eq!(event_slug("Über Event"), "ber_event");
/// ```
pub fn event_slug(event: &str) -> String {
    let mut out = String::with_capacity(event.len() + 4);
    push_event_slug(event, &mut out);
    out
}

/// Appends the slug of `event` to `out` (see [`event_slug`]).
pub fn push_event_slug(event: &str, out: &mut String) {
    let bytes = event.as_bytes();
    let start = out.len();
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_uppercase() || bytes[i].is_ascii_digit()) {
            i += 1;
        }
        while i < bytes.len() && (bytes[i].is_ascii_lowercase() || bytes[i].is_ascii_digit()) {
            i += 1;
        }
        if i > word_start {
            if out.len() > start {
                out.push('_');
            }
            out.extend(bytes[word_start..i].iter().map(|b| char::from(b.to_ascii_lowercase())));
        } else {
            // Not a word byte: a separator. Skip it (runs collapse by construction).
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SPEC's test vectors, all of which must pass.
    const VECTORS: [(&str, &str); 12] = [
        ("Order Completed", "order_completed"),
        ("sample___text", "sample_text"),
        ("sampleText", "sample_text"),
        ("samPLE text", "sam_ple_text"),
        ("CStringRef", "cstring_ref"),
        ("5TEst", "5test"),
        ("2FA Enabled", "2fa_enabled"),
        ("FOO:BAR$BAZ", "foo_bar_baz"),
        ("___$$Base64Encode", "base64_encode"),
        ("user.signed-up", "user_signed_up"),
        ("Product Viewed (v2)", "product_viewed_v2"),
        ("Über Event", "ber_event"),
    ];

    #[test]
    fn spec_vectors() {
        for (input, want) in VECTORS {
            assert_eq!(event_slug(input), want, "slug of {input:?}");
        }
    }

    #[test]
    fn edge_cases() {
        assert_eq!(event_slug(""), "");
        assert_eq!(event_slug("___"), "");
        assert_eq!(event_slug("日本語"), "");
        assert_eq!(event_slug("a"), "a");
        assert_eq!(event_slug("ABC"), "abc");
        assert_eq!(event_slug("ABCDef"), "abcdef");
        assert_eq!(event_slug("Checkout Step 2 Viewed"), "checkout_step_2_viewed");
        let mut out = String::from("prefix:");
        push_event_slug("A b", &mut out);
        assert_eq!(out, "prefix:a_b");
    }

    proptest::proptest! {
        #[test]
        fn slug_is_clean_snake_case(s in "\\PC{0,30}") {
            let slug = event_slug(&s);
            proptest::prop_assert!(slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            proptest::prop_assert!(!slug.starts_with('_') && !slug.ends_with('_') && !slug.contains("__"));
            proptest::prop_assert_eq!(event_slug(&slug), slug.clone(), "a slug is its own slug");
        }
    }
}
