package simulate

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"
	"unicode"
)

// GatewayConfig shapes the simulated Gateway's admin REST API.
type GatewayConfig struct {
	// Key is the X-API-Key a request must carry; empty accepts any.
	Key string
	// PascalCase answers with PascalCase member names (Id, UsedCapacity,
	// IPAddresses) instead of camelCase: clients must read both.
	PascalCase bool
	// Load is the mean used capacity of the media servers, from 0 to 1;
	// each server's capacity rises and falls around it.
	Load float64
	// Now is the clock the load follows; nil is time.Now.
	Now func() time.Time
	// Applications are the ids of the applications the Gateway has in use:
	// those whose webhooks are simulated (AppConfig.IDs), so that the API's
	// counts and the webhooks describe the same applications;
	// ApplicationIDs(3) when empty.
	Applications []string
	// Live, when set, gives each application's active channels, clients
	// and connections (AppGenerator.Live): the Gateway then counts what the
	// simulated webhooks did, as LiveSwitch's does. Without it, the counts
	// follow the load.
	Live func(id string) (Levels, bool)
}

// loadPeriod is how long one rise and fall of the load takes.
const loadPeriod = 2 * time.Minute

// appProfile is how busy a simulated application is: the connections it
// carries per unit of used capacity, per channel, and the clients per
// connection.
type appProfile struct {
	name                    string
	perCapacity, perChannel float64
	clientsPerConnection    float64
}

// appProfiles are given to the applications in turn; their names make the
// default application ids.
var appProfiles = []appProfile{
	{"meetings", 40, 4, 0.6},
	{"webinars", 25, 50, 0.95},
	{"support", 6, 2, 0.5},
}

// ApplicationIDs are the ids of n made-up applications, the same for the
// simulated Gateway and the simulated application webhooks: sim-meetings,
// sim-webinars, sim-support, then sim-app-4, sim-app-5, ...
func ApplicationIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		if i < len(appProfiles) {
			ids[i] = "sim-" + appProfiles[i].name
		} else {
			ids[i] = fmt.Sprintf("sim-app-%d", i+1)
		}
	}
	return ids
}

// simGateway serves the API of the Gateway of a simulated fleet.
type simGateway struct {
	gen   *Generator
	cfg   GatewayConfig
	start time.Time
}

// NewGateway serves, under /admin/api, the admin REST API of the Gateway of
// gen's fleet: GET /v1/mediaservers lists its registered media servers
// (the first draining, the second over capacity), GET /v1.0/applications
// and /v1.0/applications/{id} cfg.Applications, whose channels and
// connections follow the load. Errors are RFC 7807 problems, as
// LiveSwitch's.
func NewGateway(gen *Generator, cfg GatewayConfig) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Applications) == 0 {
		cfg.Applications = ApplicationIDs(len(appProfiles))
	}
	g := &simGateway{gen: gen, cfg: cfg, start: cfg.Now()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/api/v1/mediaservers", g.mediaServers)
	mux.HandleFunc("GET /admin/api/v1.0/applications", g.applications)
	mux.HandleFunc("GET /admin/api/v1.0/applications/{id}", g.application)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, r, http.StatusNotFound, "Not Found", "No such resource.")
	})
	return g.authorized(mux)
}

func (g *simGateway) authorized(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(g.cfg.Key))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("X-API-Key")))
		if g.cfg.Key != "" && subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			problem(w, r, http.StatusUnauthorized, "Unauthorized", "A valid X-API-Key header is required.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func problem(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": title, "status": status, "detail": detail, "instance": r.URL.Path,
	})
}

// capacity is the used capacity of the i-th registered media server now.
func (g *simGateway) capacity(i int) float64 {
	load := min(max(g.cfg.Load, 0), 1)
	amplitude := min(0.2, load, 1-load)
	phase := 2*math.Pi*g.cfg.Now().Sub(g.start).Seconds()/loadPeriod.Seconds() + float64(i)*0.7
	return min(max(load+amplitude*math.Sin(phase), 0), 0.99)
}

func (g *simGateway) mediaServers(w http.ResponseWriter, _ *http.Request) {
	servers := g.gen.registeredMediaServers()
	out := make([]map[string]any, len(servers))
	for i, s := range servers {
		used, draining, over := g.capacity(i), i == 0, i == 1
		switch {
		case draining:
			used *= 0.3 // its sessions are leaving
		case over:
			used = 1.02 + 0.04*(1+math.Sin(float64(g.cfg.Now().Unix())))
		}
		out[i] = map[string]any{
			"id": s.id, "region": s.region, "deploymentId": s.deployment, "version": s.version, "coreCount": s.cores,
			"available": !draining && !over, "active": true, "draining": draining, "overCapacity": over,
			"usedCapacity": math.Round(used*1000) / 1000,
			"ipAddresses":  []string{fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)}, "publicIPAddress": fmt.Sprintf("203.0.113.%d", i%250+1),
		}
	}
	g.reply(w, out)
}

func (g *simGateway) applications(w http.ResponseWriter, _ *http.Request) {
	g.reply(w, g.cfg.Applications)
}

func (g *simGateway) application(w http.ResponseWriter, r *http.Request) {
	total := 0.0
	for i := range g.gen.registeredMediaServers() {
		total += g.capacity(i)
	}
	for i, id := range g.cfg.Applications {
		if id != r.PathValue("id") {
			continue
		}
		if g.cfg.Live != nil {
			if lv, ok := g.cfg.Live(id); ok {
				g.reply(w, map[string]any{
					"id": id, "channelCount": lv.Channels, "clientCount": lv.Clients, "connectionCount": lv.Connections,
					"userCount": lv.Clients * 9 / 10, "deviceCount": lv.Clients,
				})
				return
			}
		}
		a := appProfiles[i%len(appProfiles)]
		connections := int(math.Round(total * a.perCapacity))
		clients := int(math.Round(float64(connections) * a.clientsPerConnection))
		g.reply(w, map[string]any{
			"id": id, "channelCount": int(math.Ceil(float64(connections) / a.perChannel)),
			"userCount": clients * 9 / 10, "deviceCount": clients, "clientCount": clients, "connectionCount": connections,
		})
		return
	}
	problem(w, r, http.StatusNotFound, "Not Found", "No such application.")
}

// reply writes v as JSON, with PascalCase member names if so configured.
func (g *simGateway) reply(w http.ResponseWriter, v any) {
	if g.cfg.PascalCase {
		v = pascalCase(v)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// pascalCase renames the members of maps, recursively, as LiveSwitch's .NET
// serializer would spell them.
func pascalCase(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[pascalName(k)] = pascalCase(x)
		}
		return out
	case []map[string]any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = pascalCase(x)
		}
		return out
	}
	return v
}

func pascalName(camel string) string {
	switch camel {
	case "ipAddresses":
		return "IPAddresses"
	case "publicIPAddress":
		return "PublicIPAddress"
	}
	r := []rune(camel)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// registeredMediaServers is what the fleet's Gateway lists: its media
// servers registered now, in the fleet's order.
func (g *Generator) registeredMediaServers() []server {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []server
	for _, s := range g.servers {
		if s.origin == "mediaserver" && s.registered {
			out = append(out, *s)
		}
	}
	return out
}
