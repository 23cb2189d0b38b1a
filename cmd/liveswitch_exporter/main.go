// Command liveswitch_exporter receives LiveSwitch server webhooks and exposes
// the state of the fleet they describe as Prometheus metrics.
package main

import (
	"errors"
	"fmt"
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
// that hold docs/flags.md and the Dockerfile to the real flags. A wrong flag gets
// one line and a hint (see refuseFlags), not the whole usage.
func kongOptions() []kong.Option {
	return []kong.Option{
		kong.Name(name),
		kong.Description("Prometheus exporter of LiveSwitch server webhooks."),
		kong.Vars{"version": version.Print(name)},
		kong.DefaultEnvars(envPrefix),
		kong.Help(printHelp),
	}
}

func main() {
	fillVersion()
	var c cli
	parser, err := kong.New(&c, kongOptions()...)
	if err != nil {
		panic(err) // the command line's own definition is wrong
	}
	ctx, err := parser.Parse(os.Args[1:])
	if err != nil {
		refuseFlags(parser, err)
	}
	logger := c.Log.logger()
	if err := ctx.Run(logger); err != nil {
		logger.Error("Exiting", "err", err)
		os.Exit(1)
	}
}

// refuseFlags ends a start whose flags are wrong: one line saying which and
// why, one pointing to --help, and kong's exit status for usage errors.
func refuseFlags(parser *kong.Kong, err error) {
	parser.Errorf("%s", err)
	fmt.Fprintf(parser.Stderr, "Run %q to see every flag.\n", name+" --help")
	code := 2
	var pe *kong.ParseError
	if errors.As(err, &pe) {
		code = pe.ExitCode()
	}
	parser.Exit(code)
}

// printHelp prints kong's help, except that the top level's is serve's:
// serve is the default command, so its flags are what a bare
// liveswitch_exporter takes.
func printHelp(options kong.HelpOptions, ctx *kong.Context) error {
	if ctx.Selected() != nil {
		return kong.DefaultHelpPrinter(options, ctx)
	}
	serve, err := kong.Trace(ctx.Kong, []string{"serve"})
	if err != nil || serve.Selected() == nil {
		return kong.DefaultHelpPrinter(options, ctx)
	}
	if err := kong.DefaultHelpPrinter(options, serve); err != nil {
		return err
	}
	fmt.Fprintf(ctx.Stdout, "\nserve is the default command: %[1]s [flags] is %[1]s serve [flags].\n"+
		"Other command: simulate, which posts a simulated fleet's webhooks (%[1]s simulate --help).\n", name)
	return nil
}
