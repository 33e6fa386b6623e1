package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// Azure Key Vault as a source of secret settings, as DEPLOYMENT.md promises
// and the original runtime did: when a vault is named, each secret setting
// that no flag, environment variable, .env line or config file gave is read
// from the vault under the original runtime's secret name. An explicit
// setting (even an empty one) wins over the vault.

// SourceKeyVault marks a value read from Azure Key Vault.
const SourceKeyVault Source = "Azure Key Vault"

// Environment variables that name the vault and its credentials. They are
// read from the environment, then from .env.
const (
	EnvKeyVaultName    = "AZURE_KEYVAULT_NAME"  // DEPLOYMENT.md's name
	EnvKeyVaultNameAlt = "AZURE_KEY_VAULT_NAME" // the original runtime's name
	EnvKeyVaultURL     = "AZURE_KEYVAULT_URL"   // full URL, for other clouds
	EnvClientID        = "AZURE_CLIENT_ID"
	EnvClientSecret    = "AZURE_CLIENT_SECRET"
	EnvTenantID        = "AZURE_TENANT_ID"
)

// VaultSecret maps a setting to its secret name in the vault.
type VaultSecret struct {
	Key    string // setting key
	Secret string // secret name in the vault
	// Needed says whether a start must fail when the secret is missing,
	// given the other settings.
	Needed func(vals map[string]string) bool
}

// VaultSecrets are the settings read from a vault. MongoURI and OpenAIApiKey
// are the original runtime's names, so an existing vault keeps working.
var VaultSecrets = []VaultSecret{
	{Key: "mongo_uri", Secret: "MongoURI", Needed: func(map[string]string) bool { return true }},
	{Key: "openai_api_key", Secret: "OpenAIApiKey", Needed: func(v map[string]string) bool {
		return strings.EqualFold(v["llm_provider"], "openai")
	}},
	{Key: "auth_jwt_secret", Secret: "AuthJwtSecret", Needed: func(v map[string]string) bool {
		return strings.EqualFold(v["auth_enabled"], "true") && v["auth_issuer"] == ""
	}},
}

// DefaultKeyVaultTimeout bounds everything Load does with the vault.
const DefaultKeyVaultTimeout = 20 * time.Second

// KeyVaultOptions tunes the vault client (tests point it at a local server).
type KeyVaultOptions struct {
	// Transport carries every request (vault and token endpoint); nil: the default.
	Transport policy.Transporter
	// Timeout bounds the whole read (default DefaultKeyVaultTimeout).
	Timeout time.Duration
	// Credential replaces the credential chain (nil: client secret from
	// AZURE_CLIENT_ID/SECRET/TENANT_ID, else DefaultAzureCredential).
	Credential azcore.TokenCredential
}

// KeyVault is the vault configuration found in the environment.
type KeyVault struct {
	Name string // as configured, or the URL's host
	URL  string
	// Client secret credentials; all three set, or the default chain is used.
	TenantID, ClientID, ClientSecret string
}

// KeyVaultFromEnv finds the vault configuration in environ (nil: the
// process environment) and the .env file in dir. ok is false when no vault
// is named.
func KeyVaultFromEnv(environ []string, dir string) (kv KeyVault, ok bool, err error) {
	get, err := envLookup(environ, dir)
	if err != nil {
		return KeyVault{}, false, err
	}
	kv.TenantID, kv.ClientID, kv.ClientSecret = get(EnvTenantID), get(EnvClientID), get(EnvClientSecret)
	if u := strings.TrimSpace(get(EnvKeyVaultURL)); u != "" {
		kv.URL = strings.TrimRight(u, "/") + "/"
		kv.Name = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSuffix(kv.URL, "/"), "https://"), "http://")
		if !strings.HasPrefix(kv.URL, "https://") {
			return kv, true, fmt.Errorf("invalid %s=%q: want https://NAME.vault.azure.net (or your cloud's vault URL)", EnvKeyVaultURL, u)
		}
		return kv, true, nil
	}
	name := strings.TrimSpace(get(EnvKeyVaultName))
	if name == "" {
		name = strings.TrimSpace(get(EnvKeyVaultNameAlt))
	}
	if name == "" {
		return KeyVault{}, false, nil
	}
	if !validVaultName(name) {
		return kv, true, fmt.Errorf("invalid %s=%q: a vault name is 3-24 letters, digits and dashes", EnvKeyVaultName, name)
	}
	kv.Name, kv.URL = name, "https://"+name+".vault.azure.net/"
	return kv, true, nil
}

func validVaultName(s string) bool {
	if len(s) < 3 || len(s) > 24 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// envLookup reads a variable from environ, else from dir/.env.
func envLookup(environ []string, dir string) (func(string) string, error) {
	env := environMap(environ)
	dotenv, err := ReadDotEnv(filepath.Join(dir, ".env"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return dotenv[k]
	}, nil
}

// KeyVaultError says which setting could not be read from which vault. It
// never holds a secret value.
type KeyVaultError struct {
	Setting string // environment name, e.g. MONGO_URI
	Secret  string // secret name in the vault
	Vault   string
	Reason  string
	Err     error
}

func (e *KeyVaultError) Error() string {
	if e.Setting == "" {
		return fmt.Sprintf("Azure Key Vault %s: %s", e.Vault, e.Reason)
	}
	return fmt.Sprintf("%s: cannot read secret %q from Azure Key Vault %s: %s", e.Setting, e.Secret, e.Vault, e.Reason)
}

func (e *KeyVaultError) Unwrap() error { return e.Err }

// ErrSecretNotFound: the vault has no such secret.
var ErrSecretNotFound = errors.New("secret not found")

// SecretReader reads secrets from one vault.
type SecretReader struct {
	kv     KeyVault
	client *azsecrets.Client
}

// NewSecretReader builds the vault client and its credential: client
// secret when AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID are
// all set, else the DefaultAzureCredential chain (environment, workload
// identity, managed identity, Azure CLI).
func NewSecretReader(kv KeyVault, opts KeyVaultOptions) (*SecretReader, error) {
	co := azcore.ClientOptions{Transport: opts.Transport}
	// Few, short retries: a start must fail within a bounded time.
	co.Retry = policy.RetryOptions{MaxRetries: 2, TryTimeout: 5 * time.Second, RetryDelay: 200 * time.Millisecond,
		MaxRetryDelay: time.Second}
	cred := opts.Credential
	var err error
	switch {
	case cred != nil:
	case kv.ClientID != "" && kv.ClientSecret != "" && kv.TenantID != "":
		cred, err = azidentity.NewClientSecretCredential(kv.TenantID, kv.ClientID, kv.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co})
	default:
		cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: co,
			TenantID: kv.TenantID})
	}
	if err != nil {
		return nil, &KeyVaultError{Vault: kv.Name, Reason: "no usable Azure credential: " + firstLine(err.Error()), Err: err}
	}
	client, err := azsecrets.NewClient(kv.URL, cred, &azsecrets.ClientOptions{ClientOptions: co})
	if err != nil {
		return nil, &KeyVaultError{Vault: kv.Name, Reason: err.Error(), Err: err}
	}
	return &SecretReader{kv: kv, client: client}, nil
}

// Get reads the latest version of a secret. A missing secret is
// ErrSecretNotFound; other failures carry a reason fit for an operator.
func (r *SecretReader) Get(ctx context.Context, name string) (string, error) {
	resp, err := r.client.GetSecret(ctx, name, "", nil)
	if err != nil {
		return "", err
	}
	if resp.Value == nil {
		return "", ErrSecretNotFound
	}
	return *resp.Value, nil
}

// Ping checks the vault answers and the credential may read from it, by
// reading a secret that need not exist (a 404 proves both).
func (r *SecretReader) Ping(ctx context.Context) error {
	_, err := r.Get(ctx, "mozaiks-ping")
	if err == nil || isNotFound(err) {
		return nil
	}
	return err
}

func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.Is(err, ErrSecretNotFound) || errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// VaultReason turns a vault or credential error into one line for an
// operator, without response bodies (which may echo request details).
func VaultReason(err error) string {
	var re *azcore.ResponseError
	var af *azidentity.AuthenticationFailedError
	var ne net.Error
	switch {
	case isNotFound(err):
		return "secret not found"
	case errors.As(err, &af):
		return "authentication failed (check AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID or the managed identity)"
	case errors.As(err, &re) && (re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden):
		return fmt.Sprintf("access denied (%d %s): give the identity permission to get secrets", re.StatusCode, re.ErrorCode)
	case errors.As(err, &re):
		return fmt.Sprintf("vault answered %d %s", re.StatusCode, re.ErrorCode)
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time (is the vault name right and reachable from here?)"
	case errors.As(err, &ne):
		return "unreachable: " + firstLine(err.Error())
	default:
		// The credential chain found nothing to use, among others.
		return firstLine(err.Error())
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// applyKeyVault fills secret settings not set explicitly from the vault
// named in the environment, if any.
func applyKeyVault(opts LoadOptions, vals map[string]string, src map[string]Source) error {
	kv, ok, err := KeyVaultFromEnv(opts.Environ, opts.Dir)
	if err != nil || !ok {
		return err
	}
	var want []VaultSecret
	for _, vs := range VaultSecrets {
		if src[vs.Key] == SourceDefault {
			want = append(want, vs)
		}
	}
	if len(want) == 0 {
		return nil
	}
	kvo := KeyVaultOptions{}
	if opts.KeyVault != nil {
		kvo = *opts.KeyVault
	}
	if kvo.Timeout <= 0 {
		kvo.Timeout = DefaultKeyVaultTimeout
	}
	r, err := NewSecretReader(kv, kvo)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), kvo.Timeout)
	defer cancel()
	for _, vs := range want {
		setting, _ := SettingByKey(vs.Key)
		v, err := r.Get(ctx, vs.Secret)
		if err != nil {
			if isNotFound(err) && !vs.Needed(vals) {
				continue
			}
			if ctx.Err() != nil {
				err = context.DeadlineExceeded
			}
			return &KeyVaultError{Setting: setting.Env, Secret: vs.Secret, Vault: kv.Name, Reason: VaultReason(err), Err: err}
		}
		vals[vs.Key], src[vs.Key] = v, SourceKeyVault
	}
	return nil
}

// environMap turns KEY=VALUE pairs (nil: the process environment) into a map.
func environMap(environ []string) map[string]string {
	if environ == nil {
		environ = os.Environ()
	}
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}
