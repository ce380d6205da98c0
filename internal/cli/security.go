package cli

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"ringtrain/internal/transportsec"
)

// securityFlags defines the credential flags both binaries share.
func securityFlags(fs *flag.FlagSet, s *transportsec.Security, healthListen *string) {
	fs.StringVar(&s.CertFile, "tls-cert", "", "this process's TLS certificate (PEM); with -tls-key and -tls-ca, every connection is mutual TLS")
	fs.StringVar(&s.KeyFile, "tls-key", "", "the key of -tls-cert (PEM)")
	fs.StringVar(&s.CAFile, "tls-ca", "", "the CA that signed every certificate of the job (PEM)")
	fs.StringVar(&s.ServerName, "tls-server-name", transportsec.DefaultServerName, "the name every certificate of the job carries")
	fs.StringVar(&s.Token, "token", "", "the job's token: every RPC must carry it (workers without it cannot join); -local-workers generates one when not given")
	fs.BoolVar(&s.Insecure, "insecure", false, "listen beyond loopback without a token or TLS by choice: anyone who reaches the port can join (silences the warning)")
	fs.StringVar(&s.GossipKey, "gossip-key", "", "base64 key (16, 24 or 32 bytes) encrypting the gossip")
	fs.StringVar(healthListen, "health-listen", "", "also serve the gRPC health service here, in plaintext, for probes that cannot do mutual TLS")
}

// Certs writes development credentials: a CA, a certificate for every
// process of a job, a gossip key and a token.
func Certs(args []string) int {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	out := fs.String("out", "ringtrain-certs", "folder to write ca.pem, cert.pem, key.pem, gossip.key and token into")
	hosts := fs.String("hosts", "localhost,127.0.0.1", "extra names and addresses the certificate is valid for")
	days := fs.Int("days", 365, "validity in days")
	fs.Usage = usage(fs, "coordinator certs [-out DIR] [-hosts NAMES]")
	if status, ok := parseCommand(fs, "certs", args); !ok {
		return status
	}
	dc, err := transportsec.GenerateDevCredentials(*out, strings.Split(*hosts, ","), time.Duration(*days)*24*time.Hour)
	if err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		return 1
	}
	fmt.Printf("# development credentials in %s; give every process of the job:\n", *out)
	fmt.Printf("export RINGTRAIN_TLS_CA=%s RINGTRAIN_TLS_CERT=%s RINGTRAIN_TLS_KEY=%s\n", dc.CA, dc.Cert, dc.Key)
	fmt.Printf("export RINGTRAIN_TOKEN=%s RINGTRAIN_GOSSIP_KEY=%s\n", dc.Token, dc.GossipKey)
	return 0
}
