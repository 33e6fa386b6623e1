package initwiz

import (
	"encoding/hex"
	"fmt"
	"io"
)

// Secrets are generated once and kept across re-runs: changing the JWT
// secret logs every user out, and Mongo creates its root user only on the
// first start of an empty volume.
type Secrets struct {
	JWTSecret         string
	MongoRootUser     string
	MongoRootPassword string
	// DiagToken lets `mozaiks doctor` through the generated proxy to the
	// runtime's /api/diag/* endpoints, which the public does not reach.
	DiagToken string
}

// keepOrGenerate takes the secrets from the previous .env (or environment) and
// generates the missing ones from rnd (crypto/rand outside tests). Hex keeps
// them safe inside URIs, YAML and .env without quoting.
func keepOrGenerate(prev map[string]string, database string, rnd io.Reader) (Secrets, error) {
	s := Secrets{
		JWTSecret:         prev[envJWTSecret],
		MongoRootUser:     prev[envMongoUser],
		MongoRootPassword: prev[envMongoPass],
		DiagToken:         prev[envDiagToken],
	}
	gen := func(n int) (string, error) {
		b := make([]byte, n)
		if _, err := io.ReadFull(rnd, b); err != nil {
			return "", fmt.Errorf("generate secret: %w", err)
		}
		return hex.EncodeToString(b), nil
	}
	var err error
	if s.JWTSecret == "" {
		if s.JWTSecret, err = gen(32); err != nil {
			return s, err
		}
	}
	if s.DiagToken == "" {
		if s.DiagToken, err = gen(16); err != nil {
			return s, err
		}
	}
	if database == "bundled" {
		if s.MongoRootUser == "" {
			s.MongoRootUser = "mozaiks"
		}
		if s.MongoRootPassword == "" {
			if s.MongoRootPassword, err = gen(24); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}
