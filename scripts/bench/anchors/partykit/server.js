// TinyBase's own server class, as a PartyKit app serves it (the `main` party).
import {TinyBasePartyKitServer} from 'tinybase/persisters/persister-partykit-server';

export default class extends TinyBasePartyKitServer {}
