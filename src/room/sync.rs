//! The state of a `tinybase-sync` room inside its task: the clients by synchronizer id, the
//! relay of spec §4.2 and the server's participant `S` (§5), whose accepted leaves become the
//! round's storage writes and whose messages become the round's effects.

use std::collections::HashMap;
use std::sync::Arc;

use bytestring::ByteString;

use super::handle::SocketId;
use super::sync_persisted::touched_writes;
use super::task::{Effect, Round};
use crate::protocol::mergeable::frame::SyncMessage;
use crate::protocol::mergeable::participant::{Participant, Reaction, Target, SERVER_ID};
use crate::protocol::mergeable::tree::MergeableStore;

/// Ids a client can never have: broadcast, the participant, the multiplexer.
const RESERVED_IDS: [&str; 3] = ["", "S", "M"];

/// Milliseconds since the Unix epoch: the HLC clock's time.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// A `tinybase-sync` room's relay and participant.
pub struct SyncState {
    /// The server's replica.
    pub participant: Participant,
    sockets_by_id: HashMap<Arc<str>, SocketId>,
    ids_by_socket: HashMap<SocketId, Arc<str>>,
}

impl SyncState {
    /// A room around its loaded store, which merges refuse to grow past `max_bytes`.
    pub fn new(store: MergeableStore, max_bytes: u64) -> Self {
        let seed = uuid::Uuid::new_v4().as_u64_pair().0;
        Self {
            participant: Participant::new(store, max_bytes, seed),
            sockets_by_id: HashMap::new(),
            ids_by_socket: HashMap::new(),
        }
    }

    /// Adds a client under the id it asked for (its `Sec-WebSocket-Key`), or, when that is taken
    /// or reserved, under that id with the socket number appended. The first client of an empty
    /// room starts the participant's start-up exchange.
    pub fn join(&mut self, socket: SocketId, wanted: &str, round: &mut Round) -> Arc<str> {
        let free = |id: &str| {
            !RESERVED_IDS.contains(&id) && !id.contains('\n') && !self.sockets_by_id.contains_key(id)
        };
        let id: Arc<str> = if free(wanted) {
            wanted.into()
        } else {
            format!("{}~{socket}", wanted.replace('\n', "")).into()
        };
        let first = self.sockets_by_id.is_empty();
        self.sockets_by_id.insert(id.clone(), socket);
        self.ids_by_socket.insert(socket, id.clone());
        if first {
            let reaction = self.participant.start(now_ms());
            self.react(reaction, round);
        }
        id
    }

    /// Removes a client; the last one to leave stops the participant's requests.
    pub fn leave(&mut self, socket: SocketId) {
        if let Some(id) = self.ids_by_socket.remove(&socket) {
            self.sockets_by_id.remove(&id);
        }
        if self.sockets_by_id.is_empty() {
            self.participant.stop();
        }
    }

    /// Routes one valid message from `socket` (spec §4.2): to `S` first when it is for everyone
    /// or for `S`, then to every other client or to the one addressed. `remainders` are relayed
    /// byte for byte (several when the message came in fragments). Changes `S` refused as too
    /// large are not relayed either; returns whether that happened.
    pub fn route(
        &mut self,
        socket: SocketId,
        recipient: &str,
        remainders: Vec<String>,
        message: SyncMessage,
        round: &mut Round,
    ) -> bool {
        let Some(sender) = self.ids_by_socket.get(&socket).cloned() else { return false };
        let mut refused = false;
        if recipient.is_empty() || recipient == SERVER_ID {
            let reaction = self.participant.receive(&sender, &message, now_ms());
            refused = reaction.refused_too_large;
            self.react(reaction, round);
        }
        if recipient == SERVER_ID || refused {
            return refused;
        }
        let target =
            if recipient.is_empty() { None } else { Some(self.sockets_by_id.get(recipient).copied()) };
        for remainder in remainders {
            let frame: ByteString = format!("{sender}\n{remainder}").into();
            match target {
                None => round.effects.push(Effect::Broadcast { exclude: Some(sender.clone()), frame }),
                Some(Some(socket)) => round.effects.push(Effect::Send { socket, frame }),
                Some(None) => tracing::debug!("dropping a message for a client that is not in the room"),
            }
        }
        false
    }

    /// When the participant next needs the clock, if it waits for anything.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.participant.next_deadline_ms()
    }

    /// Lets the participant give up on requests that timed out.
    pub fn on_timer(&mut self, round: &mut Round) {
        let reaction = self.participant.expire(now_ms());
        self.react(reaction, round);
    }

    /// Saves what the participant accepted and queues what it sends, in that order of effect
    /// (the round is durable before any of it is sent).
    fn react(&mut self, reaction: Reaction, round: &mut Round) {
        round.writes.extend(touched_writes(&self.participant.store, &reaction.touched));
        for outgoing in reaction.sends {
            let frame: ByteString = format!("{SERVER_ID}\n{}", outgoing.remainder).into();
            match outgoing.to {
                Target::Everyone => round.effects.push(Effect::Broadcast { exclude: None, frame }),
                Target::Client(id) => match self.sockets_by_id.get(id.as_str()) {
                    Some(&socket) => round.effects.push(Effect::Send { socket, frame }),
                    None => tracing::debug!("the participant's peer left"),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mergeable::frame::decode;

    fn sends(round: &Round) -> Vec<(Option<SocketId>, String)> {
        round
            .effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Send { socket, frame } => Some((Some(*socket), frame.to_string())),
                Effect::Broadcast { frame, .. } => Some((None, frame.to_string())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn two_sockets_with_the_same_key_are_kept_apart_and_reserved_ids_are_never_given() {
        let mut state = SyncState::new(MergeableStore::new("S"), u64::MAX);
        let mut round = Round::default();
        let first = state.join(1, "key==", &mut round);
        assert_eq!(sends(&round).len(), 1, "the first client starts the participant's exchange");
        let mut round = Round::default();
        let second = state.join(2, "key==", &mut round);
        assert!(sends(&round).is_empty(), "only the first client starts it");
        assert_eq!((&*first, &*second), ("key==", "key==~2"));
        assert_eq!(&*state.join(3, "S", &mut round), "S~3");
        assert_eq!(&*state.join(4, "", &mut round), "~4");
        assert_eq!(&*state.join(5, "a\nb", &mut round), "ab~5");
        // A message addressed to the key reaches the first socket only, prefixed by the sender.
        let mut round = Round::default();
        state.route(2, "key==", vec!["[\"x\",1,\"\"]".into()], decode("[\"x\",1,\"\"]").unwrap(), &mut round);
        assert_eq!(sends(&round), vec![(Some(1), "key==~2\n[\"x\",1,\"\"]".to_owned())]);
        // When the first leaves, the second keeps its own id; the key is free again.
        state.leave(1);
        let mut round = Round::default();
        state.route(2, "key==", vec!["[\"x\",1,\"\"]".into()], decode("[\"x\",1,\"\"]").unwrap(), &mut round);
        assert!(sends(&round).is_empty());
        assert_eq!(&*state.join(6, "key==", &mut round), "key==");
    }

    #[test]
    fn a_broadcast_reaches_s_first_then_everyone_but_the_sender() {
        let mut state = SyncState::new(MergeableStore::new("S"), u64::MAX);
        let mut round = Round::default();
        state.join(1, "a", &mut round);
        state.join(2, "b", &mut round);
        let mut round = Round::default();
        state.route(1, "", vec!["[\"q\",1,\"\"]".into()], decode("[\"q\",1,\"\"]").unwrap(), &mut round);
        let sent = sends(&round);
        assert_eq!(sent[0], (Some(1), "S\n[\"q\",0,[0,0]]".to_owned()));
        assert_eq!(sent[1], (None, "a\n[\"q\",1,\"\"]".to_owned()));
        assert!(matches!(&round.effects[1], Effect::Broadcast { exclude: Some(id), .. } if &**id == "a"));
        // Addressed to S: S only.
        let mut round = Round::default();
        state.route(2, "S", vec!["[\"r\",1,\"\"]".into()], decode("[\"r\",1,\"\"]").unwrap(), &mut round);
        assert_eq!(sends(&round), vec![(Some(2), "S\n[\"r\",0,[0,0]]".to_owned())]);
    }
}
