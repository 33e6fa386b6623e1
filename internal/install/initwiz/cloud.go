package initwiz

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/charmbracelet/huh"
)

// Managed container platforms: `--cloud-run` writes cloudrun/service.yaml (a
// Knative Service for `gcloud run services replace`), `--container-apps`
// writes azure/containerapp.yaml (for `az containerapp create --yaml`). Both
// run the runtime image on port 8080 with the probes of DEPLOYMENT.md, and
// take every secret by reference (Secret Manager, Key Vault), never by value.

// Env names of the cloud answers.
const (
	EnvCloudRun      = "MOZAIKS_CLOUD_RUN"
	EnvContainerApps = "MOZAIKS_CONTAINER_APPS"
)

// validateCloud adds the problems of the cloud answers to bad.
func (a Answers) validateCloud(bad func(env string, err error)) {
	// Instances come and go and share nothing: no bundled Mongo container,
	// no embedded store on a disk that outlives them.
	if a.CloudRun && a.Database != "external" {
		bad(EnvCloudRun, fmt.Errorf("the Cloud Run service needs --database external (instances run no bundled Mongo and keep no disk for an embedded store)"))
	}
	if a.ContainerApps && a.Database != "external" {
		bad(EnvContainerApps, fmt.Errorf("the Container App needs --database external (replicas run no bundled Mongo and cannot share an embedded store)"))
	}
}

// printCloudSteps prints the deploy command of each cloud file written.
func printCloudSteps(w io.Writer, dir string, a Answers) {
	if a.CloudRun {
		fmt.Fprintf(w, "  gcloud run services replace %s --region REGION   (create the Secret Manager secrets first: see the file)\n",
			filepath.Join(dir, "cloudrun", "service.yaml"))
	}
	if a.ContainerApps {
		fmt.Fprintf(w, "  envsubst < %s > containerapp.yaml && az containerapp create --name mozaiksai-runtime "+
			"--resource-group \"$AZURE_RESOURCE_GROUP\" --yaml containerapp.yaml   (variables and Key Vault secrets: see the file)\n",
			filepath.Join(dir, "azure", "containerapp.yaml"))
	}
}

// cloudPage asks for the managed-platform files (external database only).
func cloudPage(work *Answers) page {
	return page{title: "Managed platforms", hide: func() bool { return work.Database != "external" }, fields: []huh.Field{
		huh.NewConfirm().Title("Also write cloudrun/service.yaml for Google Cloud Run?").Value(&work.CloudRun),
		huh.NewConfirm().Title("Also write azure/containerapp.yaml for Azure Container Apps?").Value(&work.ContainerApps),
	}}
}
