package stack

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// Deployment kinds, as `mozaiks init` records them in .env (MOZAIKS_DEPLOYMENT).
const (
	DeploymentDev  = "dev"
	DeploymentProd = "prod"
	// EnvDeployment is the .env key init writes the kind under.
	EnvDeployment = "MOZAIKS_DEPLOYMENT"
)

// DeclaredDeployment is the kind the directory's .env declares: dev, prod,
// or "" when there is no .env or it names none.
func DeclaredDeployment(dir string) (string, error) {
	if dir == "" {
		dir = "."
	}
	env, err := config.ReadDotEnv(filepath.Join(dir, ".env"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", uerr.Wrap(err, uerr.ExitFailed, "cannot read "+filepath.Join(dir, ".env"), "fix it, or re-run mozaiks init")
	}
	return strings.ToLower(strings.TrimSpace(env[EnvDeployment])), nil
}

// FileDeployment is the kind a compose file is for, from the file names init
// writes; "" for any other file (-f custom.yml), which is not judged.
func FileDeployment(o ProjectOptions) string {
	switch {
	case o.Prod:
		return DeploymentProd
	case o.File == "":
		return DeploymentDev
	}
	switch filepath.Base(o.File) {
	case DevFile:
		return DeploymentDev
	case ProdFile:
		return DeploymentProd
	}
	return ""
}

// CheckDeployment refuses to apply the dev compose file in a directory whose
// .env says prod (that would serve the production data with authentication
// off and the ports open), and the prod file where .env says dev, unless the
// operator allowed the mismatch explicitly.
func CheckDeployment(o ProjectOptions, allowMismatch bool) error {
	declared, err := DeclaredDeployment(o.Dir)
	if err != nil || declared == "" || allowMismatch {
		return err
	}
	file := FileDeployment(o)
	if file == "" || file == declared {
		return nil
	}
	envPath := filepath.Join(orDot(o.Dir), ".env")
	dirFlag := ""
	if orDot(o.Dir) != "." {
		dirFlag = " --dir " + o.Dir
	}
	if declared == DeploymentProd {
		return uerr.New(uerr.ExitUsage,
			envPath+" says "+EnvDeployment+"=prod, but this would start the dev compose file ("+DevFile+
				"): authentication off and ports open on every interface, on the production data",
			"run `mozaiks up"+dirFlag+" --prod`; to start the dev file here anyway, add --allow-mismatch")
	}
	return uerr.New(uerr.ExitUsage,
		envPath+" says "+EnvDeployment+"="+declared+", but this would start the production compose file ("+ProdFile+")",
		"run `mozaiks up"+dirFlag+"` without --prod, or re-run `mozaiks init"+dirFlag+" --deployment prod` to set the directory up for production; --allow-mismatch starts it anyway")
}

func orDot(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}
