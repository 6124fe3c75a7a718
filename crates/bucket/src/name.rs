//! Object names: `<prefix><integration>.<action>.<position>.<type>.<ext>`.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use cdp_calls::CallType;
use cdp_encode::FileFormat;

/// An integration or action id: non-empty, only `A-Z`, `a-z`, `0-9`, `_` and `-`.
///
/// Ids never contain a `.`, so an object name splits back into its parts.
///
/// ```
/// use cdp_bucket::Id;
///
/// let id: Id = "2184".parse()?;
/// assert_eq!(id.as_str(), "2184");
/// assert!("a.b".parse::<Id>().is_err());
/// assert!("".parse::<Id>().is_err());
/// # Ok::<(), cdp_bucket::InvalidId>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

/// The text is not a valid [`Id`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("id {id:?} must be non-empty and use only A-Z, a-z, 0-9, _ and -")]
pub struct InvalidId {
    /// The text as given.
    pub id: String,
}

impl Id {
    /// Checks and wraps an id.
    pub fn new(id: impl Into<String>) -> Result<Id, InvalidId> {
        let id = id.into();
        if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            Ok(Id(id))
        } else {
            Err(InvalidId { id })
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Id {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Id, InvalidId> {
        Id::new(s)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The number of a sync within one (integration, action): 1, 2, 3, … with no gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position(NonZeroU64);

impl Position {
    /// The first position, 1.
    pub const FIRST: Position = Position(NonZeroU64::MIN);

    /// The position `n`; `None` for 0.
    pub fn new(n: u64) -> Option<Position> {
        NonZeroU64::new(n).map(Position)
    }

    /// The position as a number.
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The position after this one.
    pub fn next(self) -> Position {
        Position(self.0.saturating_add(1))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The name of one exported file, without the bucket's prefix:
/// `<integration>.<action>.<position>.<type>.<ext>`.
///
/// ```
/// use cdp_bucket::{Id, ObjectName, Position};
/// use cdp_calls::CallType;
/// use cdp_encode::FileFormat;
///
/// let name = ObjectName {
///     integration: Id::new("2184")?,
///     action: Id::new("13699")?,
///     position: Position::FIRST,
///     call_type: CallType::Track,
///     format: FileFormat::Json,
/// };
/// assert_eq!(name.to_string(), "2184.13699.1.track.json");
/// assert_eq!(ObjectName::parse("2184.13699.1.track.json"), Some(name));
/// assert_eq!(ObjectName::parse("2184.13699.0.track.json"), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectName {
    /// The integration id.
    pub integration: Id,
    /// The action id.
    pub action: Id,
    /// The sync's position.
    pub position: Position,
    /// The call type of the file's rows.
    pub call_type: CallType,
    /// The file's format, which gives its extension.
    pub format: FileFormat,
}

impl ObjectName {
    /// Reads a file name back; `None` when it is not one of ours. A position is
    /// plain decimal digits without leading zeros.
    pub fn parse(file_name: &str) -> Option<ObjectName> {
        let mut parts = file_name.split('.');
        let integration = Id::new(parts.next()?).ok()?;
        let action = Id::new(parts.next()?).ok()?;
        let position = parts.next()?;
        if position.starts_with('0') || !position.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let position = Position::new(position.parse().ok()?)?;
        let call_type = parts.next()?.parse().ok()?;
        let format = match parts.next()? {
            "json" => FileFormat::Json,
            "csv" => FileFormat::Csv,
            "parquet" => FileFormat::Parquet,
            _ => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(ObjectName { integration, action, position, call_type, format })
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}.{}",
            self.integration,
            self.action,
            self.position,
            self.call_type,
            self.format.extension()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_only_the_safe_alphabet() {
        for good in ["a", "Z", "0", "_", "-", "abc-DEF_123"] {
            assert_eq!(Id::new(good).map(|id| id.0), Ok(good.to_owned()));
        }
        for bad in ["", " ", "a b", "a.b", "a/b", "é", "a\n", "*"] {
            assert_eq!(Id::new(bad), Err(InvalidId { id: bad.to_owned() }), "{bad:?}");
        }
    }

    #[test]
    fn names_parse_back_and_reject_what_is_not_ours() {
        for format in FileFormat::ALL {
            for call_type in CallType::ALL {
                let name = ObjectName {
                    integration: Id::new("i-1").unwrap(),
                    action: Id::new("a_2").unwrap(),
                    position: Position::new(12_345).unwrap(),
                    call_type,
                    format,
                };
                assert_eq!(ObjectName::parse(&name.to_string()), Some(name));
            }
        }
        for other in [
            "",
            "a.b.1.track",
            "a.b.1.track.json.tmp",
            "a.b.01.track.json",
            "a.b.x.track.json",
            "a.b.-1.track.json",
            "a.b.1.click.json",
            "a.b.1.track.txt",
            "a..1.track.json",
            "a.b.99999999999999999999.track.json",
        ] {
            assert_eq!(ObjectName::parse(other), None, "{other:?}");
        }
    }
}
