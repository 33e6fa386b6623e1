package main_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/testutil/fakekeyvault"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// `mozaiks serve` with its secrets in Azure Key Vault, end to end: the binary
// reaches a local fake of Azure (identity platform + Key Vault, challenge
// auth) through HTTPS_PROXY, trusting it through SSL_CERT_FILE, exactly as it
// would reach Azure, under the vault's real host name.
func TestServeReadsSecretsFromKeyVault(t *testing.T) {
	t.Parallel()
	const clientSecret, apiKey = "e2e-client-secret", "sk-e2e-vault-key"
	az := fakekeyvault.New(t, "e2e-tenant", "e2e-client", clientSecret)
	mongoURI := ferret.DB(t)
	az.SetSecret("e2evault", "MongoURI", mongoURI)
	az.SetSecret("e2evault", "OpenAIApiKey", apiKey)
	az.SetSecret("halfvault", "OpenAIApiKey", apiKey)
	env := func(vault, proxy string) []string {
		return []string{"AZURE_KEYVAULT_NAME=" + vault, "AZURE_TENANT_ID=e2e-tenant", "AZURE_CLIENT_ID=e2e-client",
			"AZURE_CLIENT_SECRET=" + clientSecret, "SSL_CERT_FILE=" + az.CAFile(t), "HTTPS_PROXY=" + proxy}
	}
	proxy := az.ConnectProxy(t)

	t.Run("secrets read and used", func(t *testing.T) {
		t.Parallel()
		p := serve(t, t.TempDir(), env("e2evault", proxy)...)
		var h struct {
			MongoDB struct{ Backend, Status string } `json:"mongodb"`
			LLM     struct{ Configured bool }        `json:"llm"`
		}
		call(t, "GET", p.url+"/api/health", nil, &h)
		if h.MongoDB.Backend != "mongodb" || h.MongoDB.Status != "ok" || !h.LLM.Configured {
			t.Fatalf("health %+v: the vault's MongoURI and OpenAIApiKey were not used", h)
		}
		for _, s := range []string{apiKey, clientSecret} {
			if strings.Contains(p.stderr.String(), s) {
				t.Fatalf("serve logged a secret:\n%s", p.stderr)
			}
		}
	})
	t.Run("missing secret", func(t *testing.T) {
		t.Parallel()
		p := start(t, t.TempDir(), append(env("halfvault", proxy), "PORT="+freePort(t)), "serve")
		code := p.wait(60 * time.Second)
		out := p.stderr.String()
		if code != 2 || !strings.Contains(out, "MONGO_URI") || !strings.Contains(out, "halfvault") || !strings.Contains(out, "secret not found") {
			t.Fatalf("exit %d, want 2 naming MONGO_URI and the vault:\n%s", code, out)
		}
	})
	t.Run("vault unreachable", func(t *testing.T) {
		t.Parallel()
		p := start(t, t.TempDir(), append(env("e2evault", "http://127.0.0.1:"+freePort(t)), "PORT="+freePort(t)), "serve")
		code := p.wait(60 * time.Second)
		out := p.stderr.String()
		if code != 2 || !strings.Contains(out, "MONGO_URI") || !strings.Contains(out, "e2evault") {
			t.Fatalf("exit %d, want 2 naming MONGO_URI and the vault:\n%s", code, out)
		}
		if strings.Contains(out, clientSecret) {
			t.Fatalf("error shows the client secret:\n%s", out)
		}
	})
}
