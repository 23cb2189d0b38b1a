package collector

// The server event types LiveSwitch sends, and their origins, as constant
// strings: a decoded event takes these instead of allocating its own, since
// every webhook carries them.
var (
	internedOrigins = map[string]string{}
	internedTypes   = map[string]string{}
)

func init() {
	for _, origin := range []string{"gateway", "mediaserver", "sipconnector", "recordingmonitor", "recordingmover", "recordingmuxer"} {
		internedOrigins[origin] = origin
		for _, action := range []string{"started", "stopped", "registered", "unregistered", "stats"} {
			internedTypes[origin+"."+action] = origin + "." + action
		}
	}
}

// intern returns text as a string: the interned one when known (no
// allocation), else a copy.
func intern(known map[string]string, text []byte) string {
	if s, ok := known[string(text)]; ok {
		return s
	}
	return string(text)
}
