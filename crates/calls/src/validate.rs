//! The rules a valid call follows: required fields per type, semantic events, and
//! the size limits.

use crate::{Body, Call, CallError, SemanticEvent};

/// The largest call accepted, in bytes of compact JSON (32 KiB).
pub const MAX_CALL_BYTES: usize = 32 * 1024;

/// The longest `messageId` accepted, in characters.
pub const MAX_MESSAGE_ID_CHARS: usize = 100;

/// Absent, or the empty string.
fn missing(value: Option<&str>) -> bool {
    value.is_none_or(str::is_empty)
}

impl Call {
    /// Checks what the spec requires of a call, returning the first problem found.
    ///
    /// In order: `messageId` is at most 100 characters; the type's required fields
    /// are there (`event` for track, `groupId` for group, `previousId` and `userId`
    /// for alias) and every other call has `userId` or `anonymousId`; a semantic
    /// event has the fields its action needs; and the compact JSON is at most
    /// 32 KiB. An empty string counts as absent.
    ///
    /// ```
    /// use cdp_calls::{Call, CallError, CallType};
    ///
    /// let call = Call::parse_json(r#"{"type":"group","userId":"u1"}"#)?;
    /// assert_eq!(
    ///     call.validate(),
    ///     Err(CallError::MissingField { call_type: CallType::Group, field: "groupId" })
    /// );
    /// # Ok::<(), CallError>(())
    /// ```
    pub fn validate(&self) -> Result<(), CallError> {
        self.validate_fields()?;
        // The bound does not look inside strings; most calls are far below the limit.
        if self.compact_json_len_bound() > MAX_CALL_BYTES {
            let bytes = self.compact_json_len();
            if bytes > MAX_CALL_BYTES {
                return Err(CallError::TooLarge { bytes, limit: MAX_CALL_BYTES });
            }
        }
        Ok(())
    }

    /// Checks everything [`Call::validate`] checks but the size.
    ///
    /// For calls whose size was checked where they entered, before fields were
    /// added to them: the collector measures each call as the client sent it, then
    /// stamps `receivedAt` and merges a batch's `context`, which may take a call a
    /// little past 32 KiB.
    ///
    /// ```
    /// use cdp_calls::{Call, CallError, MAX_CALL_BYTES};
    ///
    /// let padding = "x".repeat(MAX_CALL_BYTES);
    /// let call = Call::parse_json(&format!(r#"{{"type":"track","userId":"u1","event":"E","properties":{{"p":"{padding}"}}}}"#))?;
    /// assert_eq!(call.validate_fields(), Ok(()));
    /// assert!(matches!(call.validate(), Err(CallError::TooLarge { .. })));
    /// # Ok::<(), CallError>(())
    /// ```
    pub fn validate_fields(&self) -> Result<(), CallError> {
        // No more bytes than the limit means no more characters: count only longer ids.
        if let Some(id) = self.message_id.as_ref().filter(|id| id.len() > MAX_MESSAGE_ID_CHARS) {
            let chars = id.chars().count();
            if chars > MAX_MESSAGE_ID_CHARS {
                return Err(CallError::MessageIdTooLong { chars, limit: MAX_MESSAGE_ID_CHARS });
            }
        }
        let call_type = self.call_type();
        let required = match &self.body {
            Body::Track(b) => Some(("event", b.event.as_deref())),
            Body::Group(b) => Some(("groupId", b.group_id.as_deref())),
            Body::Alias(b) => Some(("previousId", b.previous_id.as_deref())),
            Body::Identify(_) | Body::Page(_) | Body::Screen(_) => None,
        };
        if let Some((field, value)) = required
            && missing(value)
        {
            return Err(CallError::MissingField { call_type, field });
        }
        if matches!(self.body, Body::Alias(_)) {
            if missing(self.user_id.as_deref()) {
                return Err(CallError::MissingField { call_type, field: "userId" });
            }
        } else if missing(self.user_id.as_deref()) && missing(self.anonymous_id.as_deref()) {
            return Err(CallError::MissingIdentity { call_type });
        }
        if let Some(event) = self.semantic_event()
            && let Some(field) = event.required_fields().iter().find(|f| !self.has_path(f))
        {
            return Err(CallError::SemanticEventField {
                event,
                event_name: self.event().unwrap_or_default().to_owned(),
                field,
            });
        }
        Ok(())
    }

    /// The semantic event a track call names, if any.
    pub fn semantic_event(&self) -> Option<SemanticEvent> {
        self.event().and_then(SemanticEvent::from_event_name)
    }

    /// Whether a dotted wire path (`userId`, `context.device.token`) holds a value
    /// that is not null and not an empty string.
    fn has_path(&self, path: &str) -> bool {
        let (head, rest) = path.split_once('.').unwrap_or((path, ""));
        let object = match head {
            "userId" => return !missing(self.user_id.as_deref()),
            "context" => self.context.as_ref(),
            "properties" => self.properties(),
            "traits" => self.traits(),
            _ => None,
        };
        object.and_then(|o| o.lookup(rest)).is_some_and(|v| !matches!(v.as_str(), "null" | "\"\""))
    }
}
