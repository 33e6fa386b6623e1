package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/testutil/fakekeyvault"
)

const (
	kvTenant = "11111111-2222-3333-4444-555555555555"
	kvClient = "app-client-id"
	kvSecret = "s3cr3t-client-value"
)

func TestKeyVault(t *testing.T) {
	t.Parallel()
	az := fakekeyvault.New(t, kvTenant, kvClient, kvSecret)
	az.SetSecret("testvault", "MongoURI", "mongodb://vaultuser:vaultpass@db.example:27017/Prod")
	az.SetSecret("testvault", "OpenAIApiKey", "sk-from-vault")
	az.SetSecret("testvault", "AuthJwtSecret", "jwt-from-vault-0123456789abcdef0123456789")
	az.SetSecret("other-vault", "OpenAIApiKey", "sk-other")
	t.Cleanup(func() { // after the subtests
		if az.Tokens.Load() == 0 || az.Requests.Load() == 0 {
			t.Errorf("the fake issued %d tokens and served %d authorised requests", az.Tokens.Load(), az.Requests.Load())
		}
	})
	creds := []string{"AZURE_TENANT_ID=" + kvTenant, "AZURE_CLIENT_ID=" + kvClient, "AZURE_CLIENT_SECRET=" + kvSecret}

	down := fakekeyvault.New(t, kvTenant, kvClient, kvSecret)
	downClient := down.Client()
	down.Close()

	type want struct {
		mongo, openai, jwt string
		src                map[string]config.Source
	}
	for _, tc := range []struct {
		name    string
		env     []string
		dotenv  string
		down    bool
		want    *want
		wantErr []string // substrings of the error
	}{
		{
			name: "secrets read and used",
			env:  append([]string{"AZURE_KEYVAULT_NAME=testvault", "AUTH_ENABLED=true"}, creds...),
			want: &want{mongo: "mongodb://vaultuser:vaultpass@db.example:27017/Prod", openai: "sk-from-vault", jwt: "jwt-from-vault-0123456789abcdef0123456789",
				src: map[string]config.Source{"mongo_uri": config.SourceKeyVault, "openai_api_key": config.SourceKeyVault,
					"auth_jwt_secret": config.SourceKeyVault}},
		},
		{
			name: "explicit settings win over the vault",
			env: append([]string{"AZURE_KEYVAULT_NAME=testvault", "MONGO_URI=mongodb://explicit:27017",
				"OPENAI_API_KEY="}, creds...),
			want: &want{mongo: "mongodb://explicit:27017", openai: "", jwt: "jwt-from-vault-0123456789abcdef0123456789",
				src: map[string]config.Source{"mongo_uri": config.SourceEnv, "openai_api_key": config.SourceEnv,
					"auth_jwt_secret": config.SourceKeyVault}},
		},
		{
			name: "original runtime's variable name",
			env:  append([]string{"AZURE_KEY_VAULT_NAME=testvault"}, creds...),
			want: &want{mongo: "mongodb://vaultuser:vaultpass@db.example:27017/Prod", openai: "sk-from-vault", jwt: "jwt-from-vault-0123456789abcdef0123456789",
				src: map[string]config.Source{"mongo_uri": config.SourceKeyVault}},
		},
		{
			name: "vault URL for other clouds",
			env:  append([]string{"AZURE_KEYVAULT_URL=https://testvault.vault.azure.net", "MONGO_URI="}, creds...),
			want: &want{openai: "sk-from-vault", jwt: "jwt-from-vault-0123456789abcdef0123456789", src: map[string]config.Source{"openai_api_key": config.SourceKeyVault}},
		},
		{
			name:   "vault and credentials from .env",
			dotenv: "AZURE_KEYVAULT_NAME=testvault\nAZURE_TENANT_ID=" + kvTenant + "\nAZURE_CLIENT_ID=" + kvClient + "\nAZURE_CLIENT_SECRET=" + kvSecret + "\n",
			want: &want{mongo: "mongodb://vaultuser:vaultpass@db.example:27017/Prod", openai: "sk-from-vault", jwt: "jwt-from-vault-0123456789abcdef0123456789",
				src: map[string]config.Source{}},
		},
		{
			name:    "missing secret",
			env:     append([]string{"AZURE_KEYVAULT_NAME=other-vault"}, creds...),
			wantErr: []string{"MONGO_URI", `"MongoURI"`, "other-vault", "secret not found"},
		},
		{
			name:    "missing JWT secret when auth needs it",
			env:     append([]string{"AZURE_KEYVAULT_NAME=other-vault", "MONGO_URI=", "AUTH_ENABLED=true"}, creds...),
			wantErr: []string{"AUTH_JWT_SECRET", `"AuthJwtSecret"`, "other-vault", "secret not found"},
		},
		{
			name: "bad credential",
			env: []string{"AZURE_KEYVAULT_NAME=testvault", "AZURE_TENANT_ID=" + kvTenant, "AZURE_CLIENT_ID=" + kvClient,
				"AZURE_CLIENT_SECRET=wrong-secret"},
			wantErr: []string{"MONGO_URI", "testvault", "authentication failed"},
		},
		{
			name:    "vault down",
			env:     append([]string{"AZURE_KEYVAULT_NAME=testvault"}, creds...),
			down:    true,
			wantErr: []string{"MONGO_URI", "testvault", "unreachable"},
		},
		{
			name:    "bad vault name",
			env:     []string{"AZURE_KEYVAULT_NAME=no_underscores_allowed"},
			wantErr: []string{"AZURE_KEYVAULT_NAME"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tc.dotenv != "" {
				if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(tc.dotenv), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			client := az.Client()
			if tc.down {
				client = downClient
			}
			cfg, err := config.Load(config.LoadOptions{Dir: dir, Environ: append([]string{}, tc.env...),
				KeyVault: &config.KeyVaultOptions{Transport: client, Timeout: 10 * time.Second}})
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Load succeeded, want an error naming %v", tc.wantErr)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				for _, secret := range []string{kvSecret, "wrong-secret", "vaultpass", "sk-from-vault"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error leaks a secret: %q", err)
					}
				}
				var kve *config.KeyVaultError
				if tc.name != "bad vault name" && !errors.As(err, &kve) {
					t.Errorf("error is %T, want *config.KeyVaultError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			w := tc.want
			if cfg.MongoURI != w.mongo || cfg.OpenAIAPIKey != w.openai || cfg.AuthJWTSecret != w.jwt {
				t.Errorf("got mongo=%q openai=%q jwt=%q; want %q %q %q", cfg.MongoURI, cfg.OpenAIAPIKey, cfg.AuthJWTSecret,
					w.mongo, w.openai, w.jwt)
			}
			for k, s := range w.src {
				if cfg.Sources[k] != s {
					t.Errorf("source of %s = %q, want %q", k, cfg.Sources[k], s)
				}
			}
		})
	}
}

// Without a vault nothing changes and nothing is dialled.
func TestNoKeyVault(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(config.LoadOptions{Dir: t.TempDir(), Environ: []string{"AZURE_CLIENT_ID=x"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MongoURI != "" || cfg.Sources["mongo_uri"] != config.SourceDefault {
		t.Fatalf("mongo_uri %q from %s", cfg.MongoURI, cfg.Sources["mongo_uri"])
	}
}
