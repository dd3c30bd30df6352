//! Typed events: how a protobuf message becomes an event of the log and back.
//!
//! Every event message has a stable dotted type name and a schema version
//! ([`EventMessage`], declared once per message with [`event_messages!`](crate::event_messages)). An
//! aggregate's events form one enum ([`event_enum!`](crate::event_enum)) that encodes to payload
//! bytes and decodes from them, passing older schema versions through the
//! [`Upcasters`] first, so that history is never rewritten and the rules only
//! ever see current shapes.

use std::borrow::Cow;
use std::collections::HashMap;

/// A protobuf message that is an event: its stable type name and current
/// schema version. Declare with [`event_messages!`](crate::event_messages).
pub trait EventMessage: prost::Message + Default + Clone + PartialEq {
    /// Dotted, past-tense type name, e.g. `lead.captured`.
    const EVENT_TYPE: &'static str;
    /// Current schema version (>= 1).
    const SCHEMA_VERSION: u32;
}

/// Declares the type name and current schema version of event messages:
/// `event_messages! { pb::LeadCaptured => "lead.captured" version 2, … }`.
#[macro_export]
macro_rules! event_messages {
    ($($msg:ty => $etype:literal version $ver:literal),+ $(,)?) => {
        $(impl $crate::event::EventMessage for $msg {
            const EVENT_TYPE: &'static str = $etype;
            const SCHEMA_VERSION: u32 = $ver;
        })+
    };
}

/// Why stored bytes could not be read as an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload is not a valid message of its declared type and version.
    #[error("{event_type} v{schema_version}: {reason}")]
    Malformed {
        /// The event type.
        event_type: String,
        /// The version the bytes claimed.
        schema_version: u32,
        /// What the decoder said.
        reason: String,
    },
    /// The payload's version is newer than this build knows (written by a
    /// newer release): refusing is safer than folding a guess.
    #[error("{event_type} v{schema_version} is newer than this build (v{known})")]
    FutureVersion {
        /// The event type.
        event_type: String,
        /// The version the bytes claimed.
        schema_version: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// No upcaster is registered for one step of the way to the current version.
    #[error("no upcaster for {event_type} v{from_version}")]
    MissingUpcaster {
        /// The event type.
        event_type: String,
        /// The version with no step out of it.
        from_version: u32,
    },
}

/// Turns the payload of `(type, version n)` into the payload of version `n + 1`.
pub type UpcastFn = fn(&[u8]) -> Result<Vec<u8>, DecodeError>;

/// Upcasters by event type and the version they read. A payload of version
/// `n` is brought to version `m` by the steps `n → n+1 → … → m`.
#[derive(Debug, Clone, Default)]
pub struct Upcasters {
    steps: HashMap<(&'static str, u32), UpcastFn>,
}

impl Upcasters {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the step out of `from_version` for `event_type`. A second
    /// registration for the same step replaces the first.
    pub fn register(
        &mut self,
        event_type: &'static str,
        from_version: u32,
        step: UpcastFn,
    ) -> &mut Self {
        self.steps.insert((event_type, from_version), step);
        self
    }

    /// Whether a step out of `from_version` is registered for `event_type`.
    pub fn has_step(&self, event_type: &str, from_version: u32) -> bool {
        self.steps
            .keys()
            .any(|(t, v)| *t == event_type && *v == from_version)
    }

    /// `payload`, written as `version` of `event_type`, brought to `target`.
    /// Borrowed when no step is needed.
    pub fn upcast<'p>(
        &self,
        event_type: &str,
        version: u32,
        target: u32,
        payload: &'p [u8],
    ) -> Result<Cow<'p, [u8]>, DecodeError> {
        // Version 0 is how the log reads an unset version: the first one.
        let mut version = version.max(1);
        if version > target {
            return Err(DecodeError::FutureVersion {
                event_type: event_type.to_owned(),
                schema_version: version,
                known: target,
            });
        }
        let mut bytes = Cow::Borrowed(payload);
        while version < target {
            let step = self
                .steps
                .iter()
                .find(|((t, v), _)| *t == event_type && *v == version)
                .map(|(_, f)| *f)
                .ok_or_else(|| DecodeError::MissingUpcaster {
                    event_type: event_type.to_owned(),
                    from_version: version,
                })?;
            bytes = Cow::Owned(step(&bytes)?);
            version += 1;
        }
        Ok(bytes)
    }
}

/// Decodes `payload` (already at the current version) as `M`.
pub fn decode_message<M: EventMessage>(payload: &[u8]) -> Result<M, DecodeError> {
    M::decode(payload).map_err(|e| DecodeError::Malformed {
        event_type: M::EVENT_TYPE.to_owned(),
        schema_version: M::SCHEMA_VERSION,
        reason: e.to_string(),
    })
}

/// The events of one aggregate, as one enum. Implemented by [`event_enum!`](crate::event_enum).
pub trait DomainEvent: Sized + Clone + std::fmt::Debug + PartialEq + Send + Sync {
    /// The event's type name.
    fn event_type(&self) -> &'static str;
    /// The event's (current) schema version.
    fn schema_version(&self) -> u32;
    /// The payload bytes (protobuf).
    fn encode_payload(&self) -> Vec<u8>;
    /// Reads a stored event. `Ok(None)` when `event_type` is not one of this
    /// enum's; older versions pass through `upcasters`.
    fn decode(
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
        upcasters: &Upcasters,
    ) -> Result<Option<Self>, DecodeError>;
    /// Every `(type name, current version)` of this enum.
    fn catalog() -> Vec<(&'static str, u32)>;
}

/// Declares an aggregate's event enum over messages declared with
/// [`event_messages!`](crate::event_messages):
///
/// ```ignore
/// event_enum! {
///     /// Events of the lead stream.
///     pub enum LeadEvent {
///         /// A lead was captured.
///         Captured(pb::LeadCaptured),
///     }
/// }
/// ```
#[macro_export]
macro_rules! event_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident($msg:ty)),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant($msg)),+
        }

        impl $crate::event::DomainEvent for $name {
            fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$msg as $crate::event::EventMessage>::EVENT_TYPE),+
                }
            }
            fn schema_version(&self) -> u32 {
                match self {
                    $(Self::$variant(_) => <$msg as $crate::event::EventMessage>::SCHEMA_VERSION),+
                }
            }
            fn encode_payload(&self) -> Vec<u8> {
                match self {
                    $(Self::$variant(m) => ::prost::Message::encode_to_vec(m)),+
                }
            }
            fn decode(
                event_type: &str,
                schema_version: u32,
                payload: &[u8],
                upcasters: &$crate::event::Upcasters,
            ) -> Result<Option<Self>, $crate::event::DecodeError> {
                $(
                    if event_type == <$msg as $crate::event::EventMessage>::EVENT_TYPE {
                        let bytes = upcasters.upcast(
                            event_type,
                            schema_version,
                            <$msg as $crate::event::EventMessage>::SCHEMA_VERSION,
                            payload,
                        )?;
                        return $crate::event::decode_message::<$msg>(&bytes)
                            .map(|m| Some(Self::$variant(m)));
                    }
                )+
                Ok(None)
            }
            fn catalog() -> Vec<(&'static str, u32)> {
                vec![$((
                    <$msg as $crate::event::EventMessage>::EVENT_TYPE,
                    <$msg as $crate::event::EventMessage>::SCHEMA_VERSION,
                )),+]
            }
        }

        $(impl From<$msg> for $name {
            fn from(m: $msg) -> Self {
                Self::$variant(m)
            }
        })+
    };
}
