package doctor

import (
	"context"
	"fmt"
	"time"

	"github.com/mozaiks/mozaiks/internal/config"
)

// KV01: the Azure Key Vault that secret settings come from. It reads each
// secret mozaiks would read and reports which are there; it never shows a
// value.
func checkKeyVault(opts config.KeyVaultOptions) Check {
	return Check{Code: "KV01", Name: "Azure Key Vault", Timeout: 25 * time.Second,
		Run: func(ctx context.Context, env *Env) Result { return runKeyVault(ctx, env, opts) }}
}

func runKeyVault(ctx context.Context, env *Env, opts config.KeyVaultOptions) Result {
	environ := make([]string, 0, len(env.Environ))
	for k, v := range env.Environ {
		environ = append(environ, k+"="+v)
	}
	kv, configured, err := config.KeyVaultFromEnv(environ, env.Dir)
	if err != nil {
		return fail(err.Error(), "set AZURE_KEYVAULT_NAME to the vault's name, or AZURE_KEYVAULT_URL to its URL", nil)
	}
	if !configured {
		return skip("no Azure Key Vault configured (AZURE_KEYVAULT_NAME)")
	}
	cred := "DefaultAzureCredential (managed / workload identity, environment, Azure CLI)"
	if kv.ClientID != "" && kv.ClientSecret != "" && kv.TenantID != "" {
		cred = "client secret of " + kv.ClientID
	}
	details := map[string]any{"vault": kv.Name, "url": kv.URL, "credential": cred}
	r, err := config.NewSecretReader(kv, opts)
	if err != nil {
		return fail(err.Error(), "set AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID, or run with a managed identity", details)
	}
	if err := r.Ping(ctx); err != nil {
		return fail(fmt.Sprintf("Azure Key Vault %s: %s", kv.Name, config.VaultReason(err)),
			"check the vault name, network access to "+kv.URL+", and that the identity may get secrets", details)
	}
	secrets := map[string]string{}
	details["secrets"] = secrets
	var missing []string
	for _, vs := range config.VaultSecrets {
		s, _ := config.SettingByKey(vs.Key)
		if src := env.Sources[vs.Key]; src != config.SourceDefault && src != config.SourceKeyVault && src != "" {
			secrets[vs.Secret] = "not read: " + s.Env + " is set in " + string(src)
			continue
		}
		_, err := r.Get(ctx, vs.Secret)
		switch {
		case err == nil:
			secrets[vs.Secret] = "present (used for " + s.Env + ")"
		case config.VaultReason(err) == "secret not found" && !vs.Needed(env.Values):
			secrets[vs.Secret] = "absent (not needed)"
		case config.VaultReason(err) == "secret not found":
			secrets[vs.Secret] = "MISSING (needed for " + s.Env + ")"
			missing = append(missing, vs.Secret+" ("+s.Env+")")
		default:
			return fail(fmt.Sprintf("Azure Key Vault %s: secret %s: %s", kv.Name, vs.Secret, config.VaultReason(err)),
				"give the identity permission to get secrets in "+kv.Name, details)
		}
	}
	if len(missing) > 0 {
		return fail(fmt.Sprintf("Azure Key Vault %s lacks %v; serve will not start", kv.Name, missing),
			fmt.Sprintf("az keyvault secret set --vault-name %s --name %s --value ...", kv.Name, firstWord(missing[0])), details)
	}
	return ok("Azure Key Vault "+kv.Name+" reachable; secret settings readable", details)
}

func firstWord(s string) string {
	for i, c := range s {
		if c == ' ' {
			return s[:i]
		}
	}
	return s
}
