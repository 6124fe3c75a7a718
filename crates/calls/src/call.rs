//! The typed call model: [`Call`], its [`Body`] per [`CallType`], and the unknown
//! top-level fields it carries through ([`Extra`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::{JsonObject, Timestamp};

/// The six call types of the Segment spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallType {
    /// `identify`: who the user is, with `traits`.
    Identify,
    /// `track`: an `event` the user performed, with `properties`.
    Track,
    /// `page`: a web page view, with `name` and `properties`.
    Page,
    /// `screen`: a mobile screen view, with `name` and `properties`.
    Screen,
    /// `group`: the user belongs to a group (`groupId`), with the group's `traits`.
    Group,
    /// `alias`: `previousId` and `userId` are the same person.
    Alias,
}

impl CallType {
    /// All six types, in the order of the spec.
    pub const ALL: [CallType; 6] = [
        CallType::Identify,
        CallType::Track,
        CallType::Page,
        CallType::Screen,
        CallType::Group,
        CallType::Alias,
    ];

    /// The wire name (`"track"`), also used in file names.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallType::Identify => "identify",
            CallType::Track => "track",
            CallType::Page => "page",
            CallType::Screen => "screen",
            CallType::Group => "group",
            CallType::Alias => "alias",
        }
    }
}

impl fmt::Display for CallType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of the six call type names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown call type {0:?}: expected identify, track, page, screen, group or alias")]
pub struct UnknownCallType(pub String);

impl FromStr for CallType {
    type Err = UnknownCallType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CallType::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| UnknownCallType(s.to_owned()))
    }
}

/// The fields of an `identify` call beyond the common ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identify {
    /// What is known about the person.
    pub traits: Option<JsonObject>,
}

/// The fields of a `track` call beyond the common ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Track {
    /// The event name as sent (required).
    pub event: Option<String>,
    /// The event's properties.
    pub properties: Option<JsonObject>,
}

/// The fields of a `page` call beyond the common ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The page name (required for calls made by reverse ETL).
    pub name: Option<String>,
    /// The page's properties.
    pub properties: Option<JsonObject>,
}

/// The fields of a `screen` call beyond the common ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Screen {
    /// The screen name (required for calls made by reverse ETL).
    pub name: Option<String>,
    /// The screen's properties.
    pub properties: Option<JsonObject>,
}

/// The fields of a `group` call beyond the common ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// The group's id (required).
    pub group_id: Option<String>,
    /// The group's traits; `objectTypeId` in here selects the object type.
    pub traits: Option<JsonObject>,
}

/// The fields of an `alias` call beyond the common ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alias {
    /// The id the person was known by before (required).
    pub previous_id: Option<String>,
}

/// What a call says beyond the fields every call has, per type.
///
/// Required fields are `Option`s so that a call can be held, inspected and reported
/// on before it is known to be valid; [`Call::validate`] enforces them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is documented by its payload type
pub enum Body {
    Identify(Identify),
    Track(Track),
    Page(Page),
    Screen(Screen),
    Group(Group),
    Alias(Alias),
}

impl Body {
    /// The type of call this body belongs to.
    pub const fn call_type(&self) -> CallType {
        match self {
            Body::Identify(_) => CallType::Identify,
            Body::Track(_) => CallType::Track,
            Body::Page(_) => CallType::Page,
            Body::Screen(_) => CallType::Screen,
            Body::Group(_) => CallType::Group,
            Body::Alias(_) => CallType::Alias,
        }
    }

    /// An empty body of the given type.
    pub fn empty(call_type: CallType) -> Body {
        match call_type {
            CallType::Identify => Body::Identify(Identify::default()),
            CallType::Track => Body::Track(Track::default()),
            CallType::Page => Body::Page(Page::default()),
            CallType::Screen => Body::Screen(Screen::default()),
            CallType::Group => Body::Group(Group::default()),
            CallType::Alias => Body::Alias(Alias::default()),
        }
    }
}

macro_rules! body_from {
    ($($ty:ident),*) => {$(
        impl From<$ty> for Body {
            fn from(b: $ty) -> Body {
                Body::$ty(b)
            }
        }
    )*};
}
body_from!(Identify, Track, Page, Screen, Group, Alias);

/// Unknown top-level fields of a call, kept as compact raw JSON text and passed
/// through unchanged.
///
/// Keys are kept in sorted order, so a call always serialises the same way; when a
/// key appears twice in the input, the last value wins.
///
/// ```
/// use cdp_calls::Call;
///
/// let mut call = Call::parse_json(r#"{"type":"identify","userId":"u1","version": [1, 2]}"#)?;
/// assert_eq!(call.extra.get("version"), Some("[1,2]"));
/// call.extra.insert_json("channel", r#""server""#)?;
/// assert_eq!(call.to_json(), r#"{"type":"identify","userId":"u1","channel":"server","version":[1,2]}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Extra(pub(crate) BTreeMap<String, Box<str>>);

impl Extra {
    /// The raw JSON text of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| &**v)
    }

    /// Sets `key` to the JSON value in `json` (validated and compacted), returning
    /// the raw text it replaces.
    pub fn insert_json(
        &mut self,
        key: impl Into<String>,
        json: &str,
    ) -> Result<Option<Box<str>>, serde_json::Error> {
        let raw: &serde_json::value::RawValue = serde_json::from_str(json)?;
        let text = crate::json::compact_cow(raw.get()).into_owned().into_boxed_str();
        Ok(self.0.insert(key.into(), text))
    }

    /// Sets `key` to a JSON value, returning the raw text it replaces.
    pub fn insert_value(&mut self, key: impl Into<String>, value: &serde_json::Value) -> Option<Box<str>> {
        self.0.insert(key.into(), value.to_string().into_boxed_str())
    }

    /// Removes `key`, returning its raw JSON text.
    pub fn remove(&mut self, key: &str) -> Option<Box<str>> {
        self.0.remove(key)
    }

    /// The fields in key order, values as raw JSON text.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), &**v))
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Extra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// One customer-data call: the common fields, the [`Body`] of its type, and any
/// unknown top-level fields.
///
/// Calls are read from and written as JSON with the Segment spec's camelCase names
/// ([`Call::parse_json`], [`serde`]). Reading is lenient where the spec says so
/// (numeric ids become decimal strings, timestamps in any offset become UTC) and
/// strict about types otherwise; [`Call::validate`] checks what a call must carry.
///
/// ```
/// use cdp_calls::{Call, CallType};
///
/// let call = Call::parse_json(
///     r#"{"type":"track","userId":42,"event":"Order Completed","properties":{"total":9.5}}"#,
/// )?;
/// assert_eq!(call.call_type(), CallType::Track);
/// assert_eq!(call.user_id.as_deref(), Some("42"));
/// assert_eq!(call.event(), Some("Order Completed"));
/// call.validate()?;
/// # Ok::<(), cdp_calls::CallError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `messageId`: unique id of the call, at most 100 characters.
    pub message_id: Option<String>,
    /// `userId`: the person's id in your systems.
    pub user_id: Option<String>,
    /// `anonymousId`: a device or session id for a person not yet known.
    pub anonymous_id: Option<String>,
    /// `timestamp`: when the call happened, corrected for client clock skew.
    pub timestamp: Option<Timestamp>,
    /// `originalTimestamp`: when the call happened, by the client's clock.
    pub original_timestamp: Option<Timestamp>,
    /// `sentAt`: when the client sent the call, by the client's clock.
    pub sent_at: Option<Timestamp>,
    /// `receivedAt`: when the call was received; the sort key of exported files.
    pub received_at: Option<Timestamp>,
    /// `context`: free-form facts about the call (`ip`, `library`, `device`, …).
    pub context: Option<JsonObject>,
    /// `integrations`: which destinations the call goes to.
    pub integrations: Option<JsonObject>,
    /// The type and the fields particular to it.
    pub body: Body,
    /// Unknown top-level fields, passed through unchanged.
    pub extra: Extra,
}

impl Call {
    /// A call with the given body and nothing else.
    pub fn new(body: impl Into<Body>) -> Call {
        Call {
            message_id: None,
            user_id: None,
            anonymous_id: None,
            timestamp: None,
            original_timestamp: None,
            sent_at: None,
            received_at: None,
            context: None,
            integrations: None,
            body: body.into(),
            extra: Extra::default(),
        }
    }

    /// An `identify` call for `user_id`.
    pub fn identify(user_id: impl Into<String>) -> Call {
        Call::new(Identify::default()).with_user_id(user_id)
    }

    /// A `track` call of `event` for `user_id`.
    pub fn track(user_id: impl Into<String>, event: impl Into<String>) -> Call {
        let body = Track { event: Some(event.into()), properties: None };
        Call::new(body).with_user_id(user_id)
    }

    /// A `page` call of page `name` for `user_id`.
    pub fn page(user_id: impl Into<String>, name: impl Into<String>) -> Call {
        let body = Page { name: Some(name.into()), properties: None };
        Call::new(body).with_user_id(user_id)
    }

    /// A `screen` call of screen `name` for `user_id`.
    pub fn screen(user_id: impl Into<String>, name: impl Into<String>) -> Call {
        let body = Screen { name: Some(name.into()), properties: None };
        Call::new(body).with_user_id(user_id)
    }

    /// A `group` call putting `user_id` in `group_id`.
    pub fn group(user_id: impl Into<String>, group_id: impl Into<String>) -> Call {
        let body = Group { group_id: Some(group_id.into()), traits: None };
        Call::new(body).with_user_id(user_id)
    }

    /// An `alias` call: `previous_id` is now `user_id`.
    pub fn alias(user_id: impl Into<String>, previous_id: impl Into<String>) -> Call {
        let body = Alias { previous_id: Some(previous_id.into()) };
        Call::new(body).with_user_id(user_id)
    }

    /// Sets `userId`.
    pub fn with_user_id(mut self, user_id: impl Into<String>) -> Call {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets `anonymousId`.
    pub fn with_anonymous_id(mut self, anonymous_id: impl Into<String>) -> Call {
        self.anonymous_id = Some(anonymous_id.into());
        self
    }

    /// Sets `messageId`.
    pub fn with_message_id(mut self, message_id: impl Into<String>) -> Call {
        self.message_id = Some(message_id.into());
        self
    }

    /// Sets `receivedAt`.
    pub fn with_received_at(mut self, received_at: Timestamp) -> Call {
        self.received_at = Some(received_at);
        self
    }

    /// Sets `context`.
    pub fn with_context(mut self, context: JsonObject) -> Call {
        self.context = Some(context);
        self
    }

    /// Sets `properties` (track, page, screen) or `traits` (identify, group); an
    /// alias has neither and is returned unchanged.
    pub fn with_payload(mut self, payload: JsonObject) -> Call {
        match &mut self.body {
            Body::Identify(b) => b.traits = Some(payload),
            Body::Group(b) => b.traits = Some(payload),
            Body::Track(b) => b.properties = Some(payload),
            Body::Page(b) => b.properties = Some(payload),
            Body::Screen(b) => b.properties = Some(payload),
            Body::Alias(_) => {}
        }
        self
    }

    /// The call's type.
    pub const fn call_type(&self) -> CallType {
        self.body.call_type()
    }

    /// `event` of a track call.
    pub fn event(&self) -> Option<&str> {
        match &self.body {
            Body::Track(b) => b.event.as_deref(),
            _ => None,
        }
    }

    /// `name` of a page or screen call.
    pub fn name(&self) -> Option<&str> {
        match &self.body {
            Body::Page(b) => b.name.as_deref(),
            Body::Screen(b) => b.name.as_deref(),
            _ => None,
        }
    }

    /// `groupId` of a group call.
    pub fn group_id(&self) -> Option<&str> {
        match &self.body {
            Body::Group(b) => b.group_id.as_deref(),
            _ => None,
        }
    }

    /// `previousId` of an alias call.
    pub fn previous_id(&self) -> Option<&str> {
        match &self.body {
            Body::Alias(b) => b.previous_id.as_deref(),
            _ => None,
        }
    }

    /// `traits` of an identify or group call.
    pub fn traits(&self) -> Option<&JsonObject> {
        match &self.body {
            Body::Identify(b) => b.traits.as_ref(),
            Body::Group(b) => b.traits.as_ref(),
            _ => None,
        }
    }

    /// `properties` of a track, page or screen call.
    pub fn properties(&self) -> Option<&JsonObject> {
        match &self.body {
            Body::Track(b) => b.properties.as_ref(),
            Body::Page(b) => b.properties.as_ref(),
            Body::Screen(b) => b.properties.as_ref(),
            _ => None,
        }
    }
}
