//! [`SemanticEvent`]: track events that name an action on the receiving side.

use std::fmt;

/// A track event whose name asks the receiving side to act (delete a device,
/// suppress a person, …), with the fields that action needs.
///
/// ```
/// use cdp_calls::SemanticEvent;
///
/// let e = SemanticEvent::from_event_name("Device Added or Updated").unwrap();
/// assert_eq!(e, SemanticEvent::DeviceCreatedOrUpdated);
/// assert_eq!(e.required_fields(), ["userId", "context.device.token"]);
/// assert_eq!(SemanticEvent::from_event_name("Order Completed"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SemanticEvent {
    /// `Device Created or Updated` / `Device Added or Updated`.
    DeviceCreatedOrUpdated,
    /// `Device Deleted`.
    DeviceDeleted,
    /// `User Deleted`.
    UserDeleted,
    /// `User Suppressed` / `Suppress Person`.
    UserSuppressed,
    /// `User Unsuppressed` / `Unsuppress Person`.
    UserUnsuppressed,
    /// `Object Deleted` (`properties.objectTypeId` defaults to 1).
    ObjectDeleted,
    /// `Relationship Deleted`.
    RelationshipDeleted,
    /// `Report Delivery Event`.
    ReportDeliveryEvent,
}

impl SemanticEvent {
    /// Every semantic event.
    pub const ALL: [SemanticEvent; 8] = [
        SemanticEvent::DeviceCreatedOrUpdated,
        SemanticEvent::DeviceDeleted,
        SemanticEvent::UserDeleted,
        SemanticEvent::UserSuppressed,
        SemanticEvent::UserUnsuppressed,
        SemanticEvent::ObjectDeleted,
        SemanticEvent::RelationshipDeleted,
        SemanticEvent::ReportDeliveryEvent,
    ];

    /// The event names that mean this event, the preferred spelling first.
    pub const fn names(self) -> &'static [&'static str] {
        match self {
            SemanticEvent::DeviceCreatedOrUpdated => {
                &["Device Created or Updated", "Device Added or Updated"]
            }
            SemanticEvent::DeviceDeleted => &["Device Deleted"],
            SemanticEvent::UserDeleted => &["User Deleted"],
            SemanticEvent::UserSuppressed => &["User Suppressed", "Suppress Person"],
            SemanticEvent::UserUnsuppressed => &["User Unsuppressed", "Unsuppress Person"],
            SemanticEvent::ObjectDeleted => &["Object Deleted"],
            SemanticEvent::RelationshipDeleted => &["Relationship Deleted"],
            SemanticEvent::ReportDeliveryEvent => &["Report Delivery Event"],
        }
    }

    /// Recognises an event name (exact spelling, either form where there are two).
    pub fn from_event_name(name: &str) -> Option<SemanticEvent> {
        SemanticEvent::ALL.into_iter().find(|e| e.names().contains(&name))
    }

    /// The fields the event needs beyond `event`, as dotted wire paths.
    pub const fn required_fields(self) -> &'static [&'static str] {
        match self {
            SemanticEvent::DeviceCreatedOrUpdated | SemanticEvent::DeviceDeleted => {
                &["userId", "context.device.token"]
            }
            SemanticEvent::UserDeleted | SemanticEvent::UserSuppressed | SemanticEvent::UserUnsuppressed => {
                &["userId"]
            }
            SemanticEvent::ObjectDeleted => &["properties.objectId"],
            SemanticEvent::RelationshipDeleted => &["userId", "properties.objectId"],
            SemanticEvent::ReportDeliveryEvent => &["properties.deliveryId", "properties.metric"],
        }
    }
}

impl fmt::Display for SemanticEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.names()[0])
    }
}
