// Package cli turns command lines and environment variables into the
// configurations of the ringtrain commands. Every flag -some-name can also be
// set with the environment variable RINGTRAIN_SOME_NAME; a flag given on the
// command line wins.
package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"ringtrain/internal/worker"
)

// EnvName is the environment variable that sets a flag.
func EnvName(flagName string) string {
	return "RINGTRAIN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseCommand parses a command's args with parse. It reports whether the
// command should go on, and if not the exit status: 0 after -h, 2 after a
// mistake, which it prints prefixed with the command's name.
func parseCommand(fs *flag.FlagSet, name string, args []string) (status int, ok bool) {
	err := parse(fs, args)
	switch {
	case err == nil:
		return 0, true
	case err == flag.ErrHelp:
		return 0, false
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	return 2, false
}

// parse parses args and then fills every flag not on the command line from
// its environment variable.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", EnvName(f.Name), v, e)
			}
		}
	})
	return err
}

// usage writes a flag set's help, with the environment variable of each flag.
func usage(fs *flag.FlagSet, synopsis string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: %s\n\nflags (each also settable as RINGTRAIN_<NAME>):\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" {
				def = " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(w, "  -%s  [%s]\n    \t%s%s\n", f.Name, EnvName(f.Name), f.Usage, def)
		})
	}
}

// logOptions are the logging flags every long-running command has.
type logOptions struct{ level, format string }

func logFlags(fs *flag.FlagSet) *logOptions {
	o := &logOptions{}
	fs.StringVar(&o.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.format, "log-format", "auto", "text, json, or auto: text on a terminal, JSON lines otherwise")
	return o
}

// newLogger logs to w as o says; it returns the format it chose.
func newLogger(w io.Writer, o *logOptions) (*slog.Logger, string, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(o.level)); err != nil {
		return nil, "", fmt.Errorf("-log-level: %v", err)
	}
	format := o.format
	switch format {
	case "auto":
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	case "text", "json":
	default:
		return nil, "", fmt.Errorf("-log-format %q: want text, json or auto", o.format)
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), format, nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), format, nil
}

// FlagNames lists the flags of a command (coordinator or worker), for
// checks that configuration names real flags.
func FlagNames(command string) []string {
	var fs *flag.FlagSet
	switch command {
	case "coordinator":
		fs, _ = coordinatorFlags(newJobFlags())
	case "worker":
		cfg := worker.DefaultConfig()
		fs, _, _ = workerFlags(&cfg)
	default:
		return nil
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}
