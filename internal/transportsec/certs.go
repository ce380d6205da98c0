package transportsec

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DevCredentials are the files GenerateDevCredentials writes.
type DevCredentials struct {
	CA, Cert, Key string // PEM files
	GossipKey     string // base64, for -gossip-key
	Token         string // for -token
}

// GenerateDevCredentials writes a development CA (ca.pem, ca-key.pem), one
// certificate and key signed by it for every process of a job (cert.pem,
// key.pem: server and client use, named DefaultServerName plus hosts), a
// gossip key and a token into dir. Production jobs should use their own PKI.
func GenerateDevCredentials(dir string, hosts []string, validity time.Duration) (*DevCredentials, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "ringtrain development CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: DefaultServerName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{DefaultServerName},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	out := &DevCredentials{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	if err := writePEM(out.CA, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	caKeyDER, _ := x509.MarshalECPrivateKey(caKey)
	if err := writePEM(filepath.Join(dir, "ca-key.pem"), "EC PRIVATE KEY", caKeyDER); err != nil {
		return nil, err
	}
	if err := writePEM(out.Cert, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	if err := writePEM(out.Key, "EC PRIVATE KEY", keyDER); err != nil {
		return nil, err
	}
	out.GossipKey, out.Token = newGossipKey(), newToken()
	for name, v := range map[string]string{"gossip.key": out.GossipKey, "token": out.Token} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// newToken returns a random token (128 bits, hex).
func newToken() string {
	tok := make([]byte, 16)
	rand.Read(tok)
	return hex.EncodeToString(tok)
}

// newGossipKey returns a random AES-256 gossip key, in base64.
func newGossipKey() string {
	gk := make([]byte, 32)
	rand.Read(gk)
	return base64.StdEncoding.EncodeToString(gk)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func writePEM(path, kind string, der []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("transportsec: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: kind, Bytes: der}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
