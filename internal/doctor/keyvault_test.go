package doctor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/testutil/fakekeyvault"
)

func TestKeyVaultCheck(t *testing.T) {
	t.Parallel()
	const tenant, client, secret = "tenant-1", "client-1", "client-secret-value"
	az := fakekeyvault.New(t, tenant, client, secret)
	az.SetSecret("fullvault", "MongoURI", "mongodb://u:hunter2@db/x")
	az.SetSecret("fullvault", "OpenAIApiKey", "sk-vaultkey")
	az.SetSecret("halfvault", "OpenAIApiKey", "sk-vaultkey")
	down := fakekeyvault.New(t, tenant, client, secret)
	downClient := down.Client()
	down.Close()

	creds := map[string]string{"AZURE_TENANT_ID": tenant, "AZURE_CLIENT_ID": client, "AZURE_CLIENT_SECRET": secret}
	with := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range creds {
			out[k] = v
		}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		vars     map[string]string
		down     bool
		sev      Severity
		msg      string
		hint     string
		detailed string // a substring of the details
	}{
		{"not configured", map[string]string{}, false, Skipped, "no Azure Key Vault", "", ""},
		{"all there", with(map[string]string{"AZURE_KEYVAULT_NAME": "fullvault"}), false, OK, "fullvault reachable", "",
			"present (used for MONGO_URI)"},
		{"explicit setting not read", with(map[string]string{"AZURE_KEYVAULT_NAME": "halfvault", "MONGO_URI": "mongodb://db"}),
			false, OK, "halfvault reachable", "", "not read: MONGO_URI is set in environment"},
		{"needed secret missing", with(map[string]string{"AZURE_KEYVAULT_NAME": "halfvault"}), false, Fail, "lacks [MongoURI (MONGO_URI)]",
			"az keyvault secret set --vault-name halfvault --name MongoURI", "MISSING"},
		{"bad credential", with(map[string]string{"AZURE_KEYVAULT_NAME": "fullvault", "AZURE_CLIENT_SECRET": "nope"}), false, Fail,
			"authentication failed", "", ""},
		{"vault down", with(map[string]string{"AZURE_KEYVAULT_NAME": "fullvault"}), true, Fail, "unreachable", "network access", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := config.KeyVaultOptions{Transport: az.Client(), Timeout: 10 * time.Second}
			if tc.down {
				opts.Transport = downClient
			}
			environ := []string{}
			for k, v := range tc.vars {
				environ = append(environ, k+"="+v)
			}
			env, err := NewEnv(EnvOptions{Load: config.LoadOptions{Dir: t.TempDir(), Environ: environ, KeyVault: &opts}})
			if err != nil {
				t.Fatal(err)
			}
			r := runCheck(t, env, checkKeyVault(opts))
			wantResult(t, r, tc.sev, tc.msg, tc.hint)
			out := fmt.Sprint(r)
			if !strings.Contains(out, tc.detailed) {
				t.Errorf("details lack %q: %v", tc.detailed, r.Details)
			}
			for _, s := range []string{secret, "hunter2", "sk-vaultkey", "nope"} {
				if strings.Contains(out, s) {
					t.Errorf("KV01 output shows a secret (%q): %s", s, out)
				}
			}
		})
	}
}
