package doctor

import "github.com/mozaiks/mozaiks/internal/config"

// All is every check, in report order.
func All() []Check {
	return []Check{
		checkConfig(), checkSecrets(), checkMongo(), checkLLM(),
		checkRuntime(), checkCORS(), checkWSUpgrade(), checkWSEcho(), checkWSScheme(), checkWSIdle(),
		checkStream(), checkTLS(), checkDocker(), checkContainers(), checkPorts(), checkHost(),
		checkKeyVault(config.KeyVaultOptions{}),
	}
}

// DefaultRegistry is the registry of All.
func DefaultRegistry() *Registry {
	r, err := NewRegistry(All()...)
	if err != nil {
		panic(err) // a programming error, caught by the tests
	}
	return r
}
