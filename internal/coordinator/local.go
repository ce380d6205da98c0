package coordinator

import (
	"log/slog"

	"ringtrain/internal/localworkers"
	"ringtrain/internal/transportsec"
)

// localWorkers are the worker processes this coordinator started on its
// own machine (package localworkers), by name.
type localWorkers struct {
	names []string
	procs *localworkers.Workers
}

// startLocalWorkers starts cfg.LocalWorkers processes that join addr and
// gossip, and reports each one's exit as an event.
func startLocalWorkers(cfg Config, addr, gossip string, events chan<- event, log *slog.Logger) (*localWorkers, error) {
	procs, err := localworkers.Start(localworkers.Config{
		Count: cfg.LocalWorkers, Command: cfg.WorkerCommand, Args: cfg.WorkerArgs,
		Coordinator: addr, Gossip: gossip, ProbeInterval: cfg.ProbeInterval, ProbeTimeout: cfg.ProbeTimeout,
		Env: securityEnv(cfg.Security), Output: cfg.WorkerLog, Logger: log,
	}, func(e localworkers.Exit) {
		select {
		case events <- exited{id: e.ID, pid: e.PID, err: e.Err}:
		default: // the job is over and nobody listens
		}
	})
	if err != nil {
		return nil, err
	}
	return &localWorkers{names: procs.IDs(), procs: procs}, nil
}

func (lw *localWorkers) ids() []string { return lw.names }

// stop ends the workers (localworkers.Workers.Stop).
func (lw *localWorkers) stop() { lw.procs.Stop() }

// securityEnv passes the coordinator's credentials to local workers through
// their environment (not their command line, which any user can read).
func securityEnv(s transportsec.Security) []string {
	var env []string
	for name, v := range map[string]string{"TLS_CERT": s.CertFile, "TLS_KEY": s.KeyFile, "TLS_CA": s.CAFile,
		"TLS_SERVER_NAME": s.ServerName, "TOKEN": s.Token, "GOSSIP_KEY": s.GossipKey} {
		if v != "" {
			env = append(env, "RINGTRAIN_"+name+"="+v)
		}
	}
	return env
}
