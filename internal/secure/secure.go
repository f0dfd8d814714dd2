// Package secure turns the TLS and SASL settings of the config into client
// options for Kafka (franz-go) and Redis (go-redis). Secrets may be given
// inline, through CXSTREAM_* environment variables, or as file:/path (for
// mounted secrets); they are never logged.
package secure

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TLS is a client TLS setting.
type TLS struct {
	Enabled bool `yaml:"enabled"`
	// CAFile verifies the server; empty uses the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile present a client certificate (mutual TLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server certificate.
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASL is a Kafka SASL setting.
type SASL struct {
	// Mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty disables.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password, or file:/path.
	Password string `yaml:"password"`
}

// Validate reports a setting that cannot work.
func (s SASL) Validate() error {
	switch strings.ToUpper(s.Mechanism) {
	case "":
		return nil
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if s.Username == "" {
			return fmt.Errorf("sasl %s needs a username", s.Mechanism)
		}
		return nil
	}
	return fmt.Errorf("sasl mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", s.Mechanism)
}

// Secret returns value, or the trimmed content of the file when value is
// file:/path.
func Secret(value string) (string, error) {
	path, ok := strings.CutPrefix(value, "file:")
	if !ok {
		return value, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Config builds a *tls.Config, nil when TLS is off.
func (t TLS) Config() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // an explicit operator choice
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// KafkaOpts are the franz-go options for tls and sasl.
func KafkaOpts(t TLS, s SASL) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	tc, err := t.Config()
	if err != nil {
		return nil, fmt.Errorf("kafka %w", err)
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("kafka %w", err)
	}
	if s.Mechanism == "" {
		return opts, nil
	}
	pass, err := Secret(s.Password)
	if err != nil {
		return nil, fmt.Errorf("kafka sasl password: %w", err)
	}
	switch strings.ToUpper(s.Mechanism) {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: s.Username, Pass: pass}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: pass}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: pass}.AsSha512Mechanism()))
	}
	return opts, nil
}
