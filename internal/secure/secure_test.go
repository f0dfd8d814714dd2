package secure_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/secure"
	"github.com/cxstream/cxstream/internal/testenv"
)

func TestKafkaSASL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plainuser", "plainpass"),
		kfake.Superuser("SCRAM-SHA-256", "scramuser", "scrampass"),
		kfake.Superuser("SCRAM-SHA-512", "scram512", "scrampass512"))
	testenv.Must(t, err, "kfake")
	defer c.Close()
	secretFile := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(secretFile, []byte("scrampass\n"), 0o600)
	cases := []struct {
		name string
		sasl secure.SASL
		ok   bool
	}{
		{"plain", secure.SASL{Mechanism: "PLAIN", Username: "plainuser", Password: "plainpass"}, true},
		{"scram-256 with the password in a file", secure.SASL{Mechanism: "SCRAM-SHA-256", Username: "scramuser", Password: "file:" + secretFile}, true},
		{"scram-512", secure.SASL{Mechanism: "SCRAM-SHA-512", Username: "scram512", Password: "scrampass512"}, true},
		{"wrong password", secure.SASL{Mechanism: "PLAIN", Username: "plainuser", Password: "nope"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := runner.KafkaOpts(config.Kafka{Brokers: c.ListenAddrs(), ClientID: "t", SASL: tc.sasl}, zap.NewNop())
			testenv.Must(t, err, "options")
			cl, err := kgo.NewClient(append(opts, kgo.RequestRetries(0))...)
			testenv.Must(t, err, "client")
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err = cl.Ping(ctx)
			if (err == nil) != tc.ok {
				t.Fatalf("ping: %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if _, err := secure.KafkaOpts(secure.TLS{}, secure.SASL{Mechanism: "GSSAPI", Username: "x"}); err == nil {
		t.Error("an unsupported mechanism was accepted")
	}
}

// writeCerts makes a CA and a server certificate for 127.0.0.1.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cxstream test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	testenv.Must(t, err, "ca")
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	testenv.Must(t, err, "server cert")
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return ca, cert, key
}

func TestRedisTLSAndACL(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Unavailable(t, "redis-server is not on PATH")
	}
	dir := t.TempDir()
	ca, cert, key := writeCerts(t, dir)
	port := testenv.FreePort(t)
	srv := exec.Command(bin, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no",
		"--user", "default", "off", "--user", "cxstream", "on", ">s3cret", "~*", "&*", "+@all", "--save", "", "--dir", dir)
	var out strings.Builder
	srv.Stdout, srv.Stderr = &out, &out
	if err := srv.Start(); err != nil {
		testenv.Unavailable(t, "redis-server with TLS did not start: %v", err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	passFile := filepath.Join(dir, "redis-pass")
	os.WriteFile(passFile, []byte("s3cret"), 0o600)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ping := func(cfg config.Redis) error {
		rdb, err := runner.NewRedis(cfg)
		if err != nil {
			return err
		}
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return rdb.Ping(ctx).Err()
	}
	good := config.Redis{Addrs: []string{addr}, Username: "cxstream", Password: "file:" + passFile, TLS: secure.TLS{Enabled: true, CAFile: ca}}
	var err2 error
	deadline := time.Now().Add(10 * time.Second)
	for err2 = ping(good); err2 != nil && time.Now().Before(deadline); err2 = ping(good) {
		time.Sleep(100 * time.Millisecond)
	}
	if err2 != nil {
		if strings.Contains(out.String(), "not compiled") || strings.Contains(out.String(), "Bad directive") {
			testenv.Unavailable(t, "this redis-server has no TLS support: %s", out.String())
		}
		t.Fatalf("TLS + ACL ping: %v\n%s", err2, out.String())
	}
	wrongPass := good
	wrongPass.Password = "guess"
	if ping(wrongPass) == nil {
		t.Error("a wrong password was accepted")
	}
	noTLS := good
	noTLS.TLS = secure.TLS{}
	if ping(noTLS) == nil {
		t.Error("a plaintext connection to the TLS port worked")
	}
	otherCA := good
	otherCA.TLS.CAFile, _, _ = writeCerts(t, t.TempDir())
	if ping(otherCA) == nil {
		t.Error("a server certificate from an unknown CA was trusted")
	}
}
