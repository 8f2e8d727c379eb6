//! partyd: a self-hosted, PartyKit-compatible room server for TinyBase apps.
