// Package event turns the bodies of LiveSwitch's webhooks into events:
// bytes in, events out. Decode reads server events (gateway, media server,
// SIP connector and recording processes started, stopped, registered or
// unregistered, and their heartbeats); DecodeApplications reads the
// channel, client and connection events of application webhooks. Both
// walk the JSON once with a hand-written RFC 8259 walker, bound what a body
// may hold (DecodeOptions: batch size, nesting, clock skew, label lengths)
// and reject a body whole, with an *InvalidError giving a one-line reason,
// so that nothing is ever half applied. It knows nothing of the fleet the
// events describe.
package event
