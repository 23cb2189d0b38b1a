// Package applications turns LiveSwitch's application webhooks (channel,
// client and connection events) into per-application rates: events by
// type, connection failures by connection type, and the time connections
// take to set up.
//
// Its entry point is Tracker.Ingest: it decodes a body (with the webhook
// decoder, event.DecodeApplications), lets the caller verify the
// applications the body names (the HTTP layer checks LiveSwitch's
// signature there, before anything is counted), then counts every event.
//
// Everything here is transient and per replica: the counters count what
// this exporter received, and the connections waiting for their
// "connected" live in a bounded table in memory, never in the store. No
// series has a per-channel, per-client or per-connection label: the
// applications are capped, the event types and connection types are
// closed sets.
package applications
