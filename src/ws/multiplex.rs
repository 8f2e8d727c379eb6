//! Multiplexed synchronizer sockets (spec §4.4, the `tinybase` subprotocol): one socket opened on
//! `/parties/<party>` carries one channel per room. Hello and Subscribe are echoed, Unsubscribe
//! leaves; data travels as `M\n<channel>\n<legacy payload>`, each channel a member of its room.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::close;
use super::connection::{Connection, Ending};

use crate::auth::{self, Access};
use crate::config::PartyConfig;
use crate::protocol::json::{self, JsValue};
use crate::protocol::mergeable::frame::{FrameError, Reassembly};
use crate::room::{IpClaim, JoinOutcome, RoomHandle, RoomKey, Rooms};
use crate::ws::outbox::Outbox;

/// The most channels one socket may hold.
pub const MAX_CHANNELS: usize = 100;
/// The longest channel id, in bytes.
pub const MAX_CHANNEL_ID_BYTES: usize = 1024;

/// A control message from the client (`S\n[id,-1,[control,body]]`).
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    Hello,
    Subscribe(String),
    Unsubscribe(String),
}

/// Why a multiplexed socket must close.
#[derive(Debug, PartialEq, Eq)]
pub enum Violation {
    /// 1007 `tinybase:14`.
    Invalid(&'static str),
    /// 1013 `tinybase:15:channels`.
    Channels(&'static str),
}

impl From<FrameError> for Violation {
    fn from(error: FrameError) -> Self {
        match error {
            FrameError::Invalid(reason) => Self::Invalid(reason),
            FrameError::TooManyFragments(reason) => Self::Channels(reason),
        }
    }
}

/// Reads the remainder of an `S\n` payload as a control message.
pub fn parse_control(remainder: &str) -> Result<Control, Violation> {
    let value = json::parse(remainder, false).map_err(|_| Violation::Invalid("a control is not JSON"))?;
    let JsValue::Array(parts) = &value else { return Err(Violation::Invalid("a control is not an array")) };
    let [request_id, JsValue::Number(minus_one), JsValue::Array(control)] = parts.as_slice() else {
        return Err(Violation::Invalid("not a control message"));
    };
    if *minus_one != -1.0 {
        return Err(Violation::Invalid("not a control message"));
    }
    match (control.as_slice(), request_id) {
        ([JsValue::Number(kind), JsValue::Number(one)], JsValue::String(_))
            if *kind == 0.0 && *one == 1.0 =>
        {
            Ok(Control::Hello)
        }
        ([JsValue::Number(kind), JsValue::String(channel)], JsValue::String(_)) if *kind == 1.0 => {
            Ok(Control::Subscribe(valid_channel(channel)?))
        }
        ([JsValue::Number(kind), JsValue::String(channel)], _) if *kind == 2.0 => {
            Ok(Control::Unsubscribe(channel.clone()))
        }
        _ => Err(Violation::Invalid("an unknown control")),
    }
}

/// Checks a channel id as TinyBase does; in partyd a channel is a room name, so it has no `/`.
pub fn valid_channel(channel: &str) -> Result<String, Violation> {
    if channel.len() > MAX_CHANNEL_ID_BYTES {
        return Err(Violation::Channels("a channel id is too long"));
    }
    if channel.is_empty()
        || channel.contains(['\n', '\r', '?', '#', '/'])
        || channel == "."
        || channel == ".."
    {
        return Err(Violation::Invalid("a channel id is not a room name"));
    }
    Ok(channel.to_owned())
}

/// Splits `M\n<channel>\n<legacy payload>`.
pub fn split_data(payload: &str) -> Option<(&str, &str)> {
    payload.strip_prefix("M\n")?.split_once('\n')
}

/// One subscribed channel.
pub struct Channel {
    /// The room it is a member of.
    pub room: RoomHandle,
    /// What the token allows in that room.
    pub access: Access,
    /// The channel's share of its client address's connection count, held while it lives.
    pub ip_claim: Option<IpClaim>,
}

/// What every channel of one multiplexed socket shares: the party, the registry, the outbox its
/// rooms send to, and the request facts that authorize each channel.
pub struct ChannelContext {
    pub party: Arc<PartyConfig>,
    pub rooms: Arc<Rooms>,
    pub outbox: Outbox,
    pub token: Option<String>,
    pub origin: Option<String>,
    pub path: String,
    /// The client's address: each channel counts against its `max_connections_per_ip`.
    pub ip: Option<IpAddr>,
}

/// A multiplexed socket's state.
pub struct Multiplexed {
    pub context: Arc<ChannelContext>,
    /// Whether Hello was answered.
    pub negotiated: bool,
    pub channels: HashMap<String, Channel>,
}

impl Multiplexed {
    /// A socket before its Hello.
    pub fn new(context: ChannelContext) -> Self {
        Self { context: Arc::new(context), negotiated: false, channels: HashMap::new() }
    }
}

/// How a Subscribe ended.
pub enum Subscribed {
    /// Joined: the new channel.
    Joined(Channel),
    /// Refused by the party's auth, a full room, or storage: close the socket.
    Refused(u16, &'static str),
}

impl ChannelContext {
    /// Joins `channel`'s room as `socket` (the channel id wraps every frame the room sends it).
    pub async fn subscribe(
        &self,
        channel: &str,
        socket: u64,
        client_id: &Arc<str>,
    ) -> Result<Subscribed, Violation> {
        let Ok(key) = RoomKey::new(&self.party.name, channel) else {
            return Err(Violation::Invalid("a channel id is not a room name"));
        };
        let facts = auth::RequestFacts {
            party: &self.party.name,
            room: channel,
            token: self.token.as_deref(),
            connection_id: Some(client_id),
            method: "GET",
            path: &self.path,
            origin: self.origin.as_deref(),
        };
        let access = match auth::authorize(&self.party.auth, &facts).await {
            Ok(access) => access,
            Err(refusal) => {
                tracing::info!(status = refusal.status, reason = %refusal.reason, "refusing a channel");
                return Ok(Subscribed::Refused(close::POLICY_VIOLATION, "channel not authorized"));
            }
        };
        // A channel holds its room live as a socket does, so it counts as one: otherwise one
        // address could hold 100 rooms per socket, max_connections_per_ip times over.
        let ip_claim = match self.ip {
            Some(ip) => {
                match self.rooms.claim_ip(&self.party.name, ip, self.party.limits.max_connections_per_ip) {
                    Some(claim) => Some(claim),
                    None => {
                        tracing::info!(%ip, "refusing a channel: too many connections from this address");
                        return Ok(Subscribed::Refused(
                            close::TRY_AGAIN_LATER,
                            "too many connections from this address",
                        ));
                    }
                }
            }
            None => None,
        };
        let room = match self.rooms.room(&self.party, key) {
            Ok(room) => room,
            Err(why) => {
                tracing::info!(%why, "refusing a channel");
                return Ok(Subscribed::Refused(close::TRY_AGAIN_LATER, "room unavailable"));
            }
        };
        Ok(match room.join_channel(socket, client_id.clone(), self.outbox.clone(), channel.into()).await {
            Ok(JoinOutcome::Joined) => Subscribed::Joined(Channel { room, access, ip_claim }),
            Ok(JoinOutcome::RoomFull) => Subscribed::Refused(close::TRY_AGAIN_LATER, "room is full"),
            Ok(JoinOutcome::StorageFailed) => {
                Subscribed::Refused(close::INTERNAL_ERROR, "room storage unavailable")
            }
            Err(_) => Subscribed::Refused(close::GOING_AWAY, "server shutting down"),
        })
    }
}

impl Connection {
    /// Handles one payload of a multiplexed socket (`None`: not UTF-8).
    pub(super) async fn on_multiplexed_payload(
        &self,
        payload: Option<&str>,
        multiplexed: &RefCell<Multiplexed>,
        reassembly: &RefCell<Reassembly>,
    ) -> Option<Ending> {
        let Some(payload) = payload else { return self.invalid("not UTF-8") };
        let negotiated = multiplexed.borrow().negotiated;
        let Some(remainder) = payload.strip_prefix("S\n") else {
            let Some((channel, legacy)) = split_data(payload) else {
                return self.invalid("neither a control nor channel data");
            };
            let subscribed = multiplexed.borrow().channels.get(channel).map(|c| (c.room.clone(), c.access));
            let Some((room, access)) = subscribed.filter(|_| negotiated) else {
                return self.invalid("data for a channel not subscribed");
            };
            return self.on_sync_payload(Some(legacy), channel, &room, access, reassembly).await;
        };
        self.counters.messages_in.inc();
        let control = match parse_control(remainder) {
            Ok(control) => control,
            Err(violation) => return self.violation(violation),
        };
        let context = multiplexed.borrow().context.clone();
        match control {
            Control::Hello => {
                multiplexed.borrow_mut().negotiated = true;
                self.echo(&context, payload)
            }
            Control::Subscribe(_) | Control::Unsubscribe(_) if !negotiated => None,
            Control::Subscribe(channel) => {
                let count = {
                    let state = multiplexed.borrow();
                    if state.channels.contains_key(&channel) {
                        return self.echo(&context, payload);
                    }
                    state.channels.len()
                };
                if count >= MAX_CHANNELS {
                    return self.violation(Violation::Channels("more than 100 channels"));
                }
                // The echo is queued before the room can send the channel anything.
                if let Some(ending) = self.echo(&context, payload) {
                    return Some(ending);
                }
                match context.subscribe(&channel, self.socket, &self.connection_id).await {
                    Ok(Subscribed::Joined(joined)) => {
                        multiplexed.borrow_mut().channels.insert(channel, joined);
                        None
                    }
                    Ok(Subscribed::Refused(code, reason)) => Some(Ending::Close(code, reason)),
                    Err(violation) => self.violation(violation),
                }
            }
            Control::Unsubscribe(channel) => {
                let left = multiplexed.borrow_mut().channels.remove(&channel);
                if let Some(channel) = left {
                    channel.room.leave(self.socket).await;
                }
                None
            }
        }
    }

    /// Sends a control back exactly as it came.
    fn echo(&self, context: &ChannelContext, payload: &str) -> Option<Ending> {
        match context.outbox.send(payload.into()) {
            Ok(()) => None,
            Err(_) => Some(Ending::Close(close::TRY_AGAIN_LATER, "slow consumer")),
        }
    }

    fn violation(&self, violation: Violation) -> Option<Ending> {
        match violation {
            Violation::Invalid(reason) => self.invalid(reason),
            Violation::Channels(reason) => {
                tracing::info!(reason, "closing a multiplexed socket over its channel limits");
                Some(Ending::Refuse(close::TRY_AGAIN_LATER, "tinybase:15:channels"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_parse_as_tinybase_sends_them() {
        assert_eq!(parse_control(r#"["x369rYdkE4BXUWUp",-1,[0,1]]"#), Ok(Control::Hello));
        assert_eq!(
            parse_control(r#"["690GkVy1F00WI9UA",-1,[1,"pets"]]"#),
            Ok(Control::Subscribe("pets".into()))
        );
        assert_eq!(parse_control(r#"[null,-1,[2,"staff"]]"#), Ok(Control::Unsubscribe("staff".into())));
        for bad in [
            r#"["x",-1,[0,2]]"#,
            r#"[null,-1,[0,1]]"#,
            r#"["x",-1,[3,"a"]]"#,
            r#"["x",1,""]"#,
            "nope",
            r#"["x",-1,[1,5]]"#,
            r#"["x",-1,[1,"a/b"]]"#,
            r#"["x",-1,[1,""]]"#,
        ] {
            assert!(matches!(parse_control(bad), Err(Violation::Invalid(_))), "{bad}");
        }
        let long = format!(r#"["x",-1,[1,"{}"]]"#, "a".repeat(MAX_CHANNEL_ID_BYTES + 1));
        assert!(matches!(parse_control(&long), Err(Violation::Channels(_))));
        assert_eq!(split_data("M\npets\n\n[1]"), Some(("pets", "\n[1]")));
        assert_eq!(split_data("S\n[1]"), None);
    }
}
