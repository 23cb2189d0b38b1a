package event

// interned holds the server event types LiveSwitch sends, and their
// origins, as constant strings: a decoded event takes these instead of
// allocating its own, since every webhook carries them.
var interned = map[string]string{}

func init() {
	for _, origin := range []string{"gateway", "mediaserver", "sipconnector", "recordingmonitor", "recordingmover", "recordingmuxer"} {
		interned[origin] = origin
		for _, action := range []string{"started", "stopped", "registered", "unregistered", "stats"} {
			interned[origin+"."+action] = origin + "." + action
		}
	}
}

// Intern returns text as a string: the one shared copy when text is an
// origin or an event type LiveSwitch sends (no allocation), else a copy.
// Whoever decodes events (webhooks, a replica's log) shares them so.
func Intern(text []byte) string {
	if s, ok := interned[string(text)]; ok {
		return s
	}
	return string(text)
}
