package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"github.com/subosito/gotenv"
)

// LoadOptions says where Load looks.
type LoadOptions struct {
	Flags      *pflag.FlagSet   // flags bound with BindFlags; nil for none
	ConfigFile string           // --config YAML; "" for none
	Dir        string           // where .env is read; "" for the working directory
	Environ    []string         // KEY=VALUE pairs; nil means os.Environ()
	KeyVault   *KeyVaultOptions // Azure Key Vault client tuning (keyvault.go); nil: defaults
}

// BindFlags adds a flag for every setting that has one.
func BindFlags(fs *pflag.FlagSet, keys ...string) {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	for _, s := range Settings {
		if s.Flag == "" || (len(keys) > 0 && !want[s.Key]) || fs.Lookup(s.Flag) != nil {
			continue
		}
		fs.String(s.Flag, s.Default, s.Help+" ("+s.Env+")")
	}
}

// Load resolves every setting by precedence and validates the result.
func Load(opts LoadOptions) (*Config, error) {
	vals, src, err := Resolve(opts)
	if err != nil {
		return nil, err
	}
	if err := applyKeyVault(opts, vals, src); err != nil {
		return nil, err
	}
	return fromValues(vals, src)
}

// Resolve returns the raw value and source of every setting, without validating.
func Resolve(opts LoadOptions) (map[string]string, map[string]Source, error) {
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	dotenvPath := filepath.Join(opts.Dir, ".env")
	dotenv, err := ReadDotEnv(dotenvPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("read %s: %w", dotenvPath, err)
	}
	v := viper.New()
	if opts.ConfigFile != "" {
		v.SetConfigFile(opts.ConfigFile)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, nil, fmt.Errorf("read config file %s: %w", opts.ConfigFile, err)
		}
	}
	vals := map[string]string{}
	src := map[string]Source{}
	for _, s := range Settings {
		switch {
		case s.Flag != "" && opts.Flags != nil && opts.Flags.Lookup(s.Flag) != nil && opts.Flags.Changed(s.Flag):
			vals[s.Key], src[s.Key] = opts.Flags.Lookup(s.Flag).Value.String(), SourceFlag
		case hasKey(env, s.Env):
			vals[s.Key], src[s.Key] = env[s.Env], SourceEnv
		case hasKey(dotenv, s.Env):
			vals[s.Key], src[s.Key] = dotenv[s.Env], SourceDotEnv
		case opts.ConfigFile != "" && v.IsSet(s.Key):
			vals[s.Key], src[s.Key] = configString(v.Get(s.Key)), SourceFile
		default:
			vals[s.Key], src[s.Key] = s.Default, SourceDefault
		}
	}
	return vals, src, nil
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// configString renders a YAML value (string, number, bool or list) as the
// string form the environment would carry.
func configString(x any) string {
	switch t := x.(type) {
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	case nil:
		return ""
	default:
		return fmt.Sprint(t)
	}
}

// ReadDotEnv parses a .env file (KEY=VALUE lines, # comments, optional quotes).
func ReadDotEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := gotenv.StrictParse(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return m, nil
}
