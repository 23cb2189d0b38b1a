// Command liveswitch_exporter receives LiveSwitch server webhooks and exposes
// the state of the fleet they describe as Prometheus metrics.
package main

import (
	"os"

	"github.com/alecthomas/kong"
	"github.com/prometheus/common/version"
)

const name = "liveswitch_exporter"

// cli is the whole command line; every flag can also be set through an
// environment variable LIVESWITCH_EXPORTER_<FLAG>, e.g.
// LIVESWITCH_EXPORTER_WEB_LISTEN_ADDRESS.
type cli struct {
	Log      logFlags         `embed:"" prefix:"log."`
	Version  kong.VersionFlag `env:"-" help:"Print version information and exit."`
	Serve    serveCmd         `cmd:"" default:"withargs" help:"Receive webhooks and serve metrics (the default command)."`
	Simulate simulateCmd      `cmd:"" help:"Post the webhooks of a simulated LiveSwitch fleet to an exporter."`
}

// envPrefix starts the environment variable of every flag.
const envPrefix = "LIVESWITCH_EXPORTER"

// kongOptions are the options of the command line, shared with the tests
// that hold README and the Dockerfile to the real flags.
func kongOptions() []kong.Option {
	return []kong.Option{
		kong.Name(name),
		kong.Description("Prometheus exporter of LiveSwitch server webhooks."),
		kong.Vars{"version": version.Print(name)},
		kong.DefaultEnvars(envPrefix),
		kong.UsageOnError(),
	}
}

func main() {
	fillVersion()
	var c cli
	ctx := kong.Parse(&c, kongOptions()...)
	logger := c.Log.logger()
	if err := ctx.Run(logger); err != nil {
		logger.Error("Exiting", "err", err)
		os.Exit(1)
	}
}
