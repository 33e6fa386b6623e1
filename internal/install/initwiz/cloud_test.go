package initwiz

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/mozaiks/mozaiks/internal/config"
)

var cloudCases = []renderCase{
	{name: "cloud-prod-external", answers: Answers{Deployment: "prod", Database: "external",
		MongoURI:     "mongodb+srv://app:cl0udpw@cluster0.example.net/MozaiksAI?retryWrites=true",
		OpenAIAPIKey: "sk-test-cloud-0006", OpenAIBaseURL: "https://llm.example.com/v1", Model: "gpt-4o",
		PublicURL: "https://agents.example.com", CORSOrigins: "https://app.example.com", AppID: "acme", Proxy: "none",
		CloudRun: true, ContainerApps: true}},
	{name: "cloud-dev-nokey", answers: Answers{Deployment: "dev", Database: "external", MongoURI: "mongodb://db.internal:27017/mz",
		Model: "gpt-4o-mini", PublicURL: "http://localhost:8000", CORSOrigins: "http://localhost:3000", AppID: "default", Proxy: "none",
		CloudRun: true, ContainerApps: true}},
}

// knativeService mirrors knative.dev/serving/pkg/apis/serving/v1.Service
// field for field, on the real Kubernetes types it is built from (the
// revision spec is a corev1.PodSpec plus Knative's own fields). The knative
// module itself cannot be used here: its knative.dev/networking dependency
// is not available from the module proxy this project builds with.
type knativeService struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Template struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
			Spec     struct {
				corev1.PodSpec              `json:",inline"`
				ContainerConcurrency        *int64 `json:"containerConcurrency,omitempty"`
				TimeoutSeconds              *int64 `json:"timeoutSeconds,omitempty"`
				ResponseStartTimeoutSeconds *int64 `json:"responseStartTimeoutSeconds,omitempty"`
				IdleTimeoutSeconds          *int64 `json:"idleTimeoutSeconds,omitempty"`
			} `json:"spec"`
		} `json:"template"`
		Traffic []struct {
			RevisionName   string `json:"revisionName,omitempty"`
			LatestRevision *bool  `json:"latestRevision,omitempty"`
			Percent        *int64 `json:"percent,omitempty"`
			Tag            string `json:"tag,omitempty"`
		} `json:"traffic,omitempty"`
	} `json:"spec"`
}

// containerApp mirrors the Microsoft.App/containerApps resource (API
// 2024-03-01) as `az containerapp create --yaml` reads it, for the fields a
// mozaiks deployment uses; unknown fields fail the strict decode.
type containerApp struct {
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Location string            `json:"location"`
	Tags     map[string]string `json:"tags,omitempty"`
	Identity struct {
		Type                   string                       `json:"type"`
		UserAssignedIdentities map[string]map[string]string `json:"userAssignedIdentities,omitempty"`
	} `json:"identity"`
	Properties struct {
		ManagedEnvironmentID string `json:"managedEnvironmentId"`
		Configuration        struct {
			ActiveRevisionsMode string `json:"activeRevisionsMode"`
			Ingress             struct {
				External       bool   `json:"external"`
				TargetPort     int32  `json:"targetPort"`
				Transport      string `json:"transport"`
				AllowInsecure  bool   `json:"allowInsecure"`
				StickySessions struct {
					Affinity string `json:"affinity"`
				} `json:"stickySessions"`
			} `json:"ingress"`
			Secrets []struct {
				Name        string `json:"name"`
				Value       string `json:"value,omitempty"`
				KeyVaultURL string `json:"keyVaultUrl,omitempty"`
				Identity    string `json:"identity,omitempty"`
			} `json:"secrets"`
		} `json:"configuration"`
		Template struct {
			TerminationGracePeriodSeconds int64 `json:"terminationGracePeriodSeconds"`
			Containers                    []struct {
				Name  string `json:"name"`
				Image string `json:"image"`
				Env   []struct {
					Name      string `json:"name"`
					Value     string `json:"value,omitempty"`
					SecretRef string `json:"secretRef,omitempty"`
				} `json:"env"`
				Resources struct {
					CPU    float64 `json:"cpu"`
					Memory string  `json:"memory"`
				} `json:"resources"`
				Probes []struct {
					Type    string `json:"type"`
					HTTPGet struct {
						Path string `json:"path"`
						Port int32  `json:"port"`
					} `json:"httpGet"`
					InitialDelaySeconds int32 `json:"initialDelaySeconds,omitempty"`
					PeriodSeconds       int32 `json:"periodSeconds,omitempty"`
					FailureThreshold    int32 `json:"failureThreshold,omitempty"`
				} `json:"probes"`
			} `json:"containers"`
			Scale struct {
				MinReplicas int32 `json:"minReplicas"`
				MaxReplicas int32 `json:"maxReplicas"`
				Rules       []struct {
					Name string `json:"name"`
					HTTP struct {
						Metadata map[string]string `json:"metadata"`
					} `json:"http"`
				} `json:"rules"`
			} `json:"scale"`
		} `json:"template"`
	} `json:"properties"`
}

func TestCloudFilesGoldenStrictAndSecretFree(t *testing.T) {
	t.Parallel()
	for _, c := range cloudCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			files := renderFor(t, c, RenderOptions{ImageTag: "1.2.3"})
			got := map[string][]byte{}
			for _, f := range files {
				got[f.Path] = f.Data
			}
			secrets := []string{testSecrets.JWTSecret, "cl0udpw", c.answers.MongoURI}
			if c.answers.OpenAIAPIKey != "" {
				secrets = append(secrets, c.answers.OpenAIAPIKey)
			}
			for _, path := range []string{"cloudrun/service.yaml", "azure/containerapp.yaml"} {
				data, ok := got[path]
				if !ok {
					t.Fatalf("%s not rendered", path)
				}
				compareGolden(t, filepath.Join("testdata", "golden", c.name, filepath.FromSlash(path)), data)
				for _, s := range secrets {
					if strings.Contains(string(data), s) {
						t.Errorf("%s holds a secret value", path)
					}
				}
			}
			if !strings.Contains(string(got[".env"]), "MOZAIKS_CLOUD_RUN=true") ||
				!strings.Contains(string(got[".env"]), "MOZAIKS_CONTAINER_APPS=true") {
				t.Errorf(".env does not remember the cloud answers")
			}
			withKey := c.answers.OpenAIAPIKey != ""

			// Cloud Run: a Knative Service, strictly.
			cr := got["cloudrun/service.yaml"]
			if !strings.Contains(string(cr), "gcloud run services replace cloudrun/service.yaml") {
				t.Error("service.yaml does not carry its deploy command")
			}
			var ks knativeService
			if err := yaml.UnmarshalStrict(cr, &ks); err != nil {
				t.Fatalf("service.yaml does not decode strictly into a Knative Service: %v", err)
			}
			rs := ks.Spec.Template.Spec
			if ks.APIVersion != "serving.knative.dev/v1" || ks.Kind != "Service" || len(rs.Containers) != 1 {
				t.Fatalf("not a one-container Knative Service: %+v", ks.TypeMeta)
			}
			ctr := rs.Containers[0]
			if len(ctr.Ports) != 1 || ctr.Ports[0].ContainerPort != 8080 {
				t.Errorf("container port %+v, want 8080", ctr.Ports)
			}
			if ctr.StartupProbe == nil || ctr.StartupProbe.HTTPGet.Path != "/api/ready" ||
				ctr.LivenessProbe == nil || ctr.LivenessProbe.HTTPGet.Path != "/api/health" {
				t.Errorf("probes: startup %+v liveness %+v", ctr.StartupProbe, ctr.LivenessProbe)
			}
			if rs.ContainerConcurrency == nil || *rs.ContainerConcurrency != 80 || rs.TimeoutSeconds == nil || *rs.TimeoutSeconds != 3600 {
				t.Errorf("concurrency %v, timeout %v", rs.ContainerConcurrency, rs.TimeoutSeconds)
			}
			ann := ks.Spec.Template.Metadata.Annotations
			if ann["autoscaling.knative.dev/minScale"] != "1" || ann["autoscaling.knative.dev/maxScale"] != "10" {
				t.Errorf("scale annotations %v", ann)
			}
			refs := map[string]string{}
			for _, e := range ctr.Env {
				if e.Name == "PORT" {
					t.Error("PORT is reserved on Cloud Run")
				}
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					refs[e.Name] = e.ValueFrom.SecretKeyRef.Name
				}
			}
			wantRefs := map[string]string{"MONGO_URI": "mozaiks-mongo-uri", "AUTH_JWT_SECRET": "mozaiks-auth-jwt-secret"}
			if withKey {
				wantRefs["OPENAI_API_KEY"] = "mozaiks-openai-api-key"
			}
			if len(refs) != len(wantRefs) {
				t.Errorf("secret refs %v, want %v", refs, wantRefs)
			}
			for k, v := range wantRefs {
				if refs[k] != v {
					t.Errorf("secret ref of %s = %q, want %q", k, refs[k], v)
				}
			}

			// Container Apps, strictly, with the enums the API accepts.
			ca := got["azure/containerapp.yaml"]
			if !strings.Contains(string(ca), "az containerapp create --name mozaiksai-runtime") {
				t.Error("containerapp.yaml does not carry its deploy command")
			}
			var app containerApp
			if err := yaml.UnmarshalStrict(ca, &app); err != nil {
				t.Fatalf("containerapp.yaml does not decode strictly: %v", err)
			}
			in := app.Properties.Configuration.Ingress
			if app.Type != "Microsoft.App/containerApps" || in.TargetPort != 8080 || in.Transport != "auto" || !in.External {
				t.Errorf("type %q ingress %+v", app.Type, in)
			}
			oneOf := func(what, v string, allowed ...string) {
				if !slices.Contains(allowed, v) {
					t.Errorf("%s %q not one of %v", what, v, allowed)
				}
			}
			oneOf("transport", in.Transport, "auto", "http", "http2", "tcp")
			oneOf("affinity", in.StickySessions.Affinity, "none", "sticky")
			oneOf("activeRevisionsMode", app.Properties.Configuration.ActiveRevisionsMode, "Single", "Multiple")
			oneOf("identity type", app.Identity.Type, "None", "SystemAssigned", "UserAssigned", "SystemAssigned,UserAssigned")
			secretNames := map[string]bool{}
			for _, s := range app.Properties.Configuration.Secrets {
				if s.Value != "" || !strings.HasPrefix(s.KeyVaultURL, "https://${AZURE_KEYVAULT_NAME}.vault.azure.net/secrets/") {
					t.Errorf("secret %s is not a Key Vault reference", s.Name)
				}
				secretNames[s.Name] = true
			}
			if len(secretNames) != len(wantRefs) {
				t.Errorf("secrets %v, want %d", secretNames, len(wantRefs))
			}
			ctrs := app.Properties.Template.Containers
			if len(ctrs) != 1 {
				t.Fatalf("%d containers", len(ctrs))
			}
			probes := map[string]string{}
			for _, p := range ctrs[0].Probes {
				oneOf("probe type", p.Type, "Liveness", "Readiness", "Startup")
				probes[p.Type] = p.HTTPGet.Path
				if p.HTTPGet.Port != 8080 {
					t.Errorf("%s probe on port %d", p.Type, p.HTTPGet.Port)
				}
			}
			if probes["Liveness"] != "/api/health" || probes["Readiness"] != "/api/ready" {
				t.Errorf("probes %v", probes)
			}
			for _, e := range ctrs[0].Env {
				if e.SecretRef != "" && !secretNames[e.SecretRef] {
					t.Errorf("env %s refers to undeclared secret %s", e.Name, e.SecretRef)
				}
			}
			sc := app.Properties.Template.Scale
			if sc.MinReplicas != 1 || sc.MaxReplicas != 10 || len(sc.Rules) != 1 || sc.Rules[0].HTTP.Metadata["concurrentRequests"] != "80" {
				t.Errorf("scale %+v", sc)
			}
		})
	}
}

func TestCloudNeedsExternalDatabase(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"bundled", "embedded"} {
		a := cloudCases[0].answers
		a.Database = db
		_, probs := a.Normalize()
		joined := strings.Join(probs, "\n")
		if !strings.Contains(joined, "--cloud-run (MOZAIKS_CLOUD_RUN): the Cloud Run service needs --database external") ||
			!strings.Contains(joined, "--container-apps (MOZAIKS_CONTAINER_APPS): the Container App needs --database external") {
			t.Errorf("database %s: problems %q", db, joined)
		}
	}
}

// `mozaiks init --cloud-run --container-apps` end to end: the files are
// written, the summary names the deploy commands, a re-run keeps the answers.
func TestRunWritesCloudFiles(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "deploy")
	flags := map[string]string{EnvDeployment: "prod", EnvDatabase: "external", EnvMongoURI: "mongodb://db.example:27017/x",
		EnvPublicURL: "https://agents.example.com", EnvCORS: "https://app.example.com", EnvProxy: "none",
		EnvAPIKey: "sk-cloud-test-key-000", EnvCloudRun: "true", EnvContainerApps: "true"}
	r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, SkipChecks: true, Flags: flags})
	if r.e != nil {
		t.Fatalf("init: %v\n%s", r.e, r.err)
	}
	for _, f := range []string{"cloudrun/service.yaml", "azure/containerapp.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	all := r.out + r.err
	if !strings.Contains(all, "gcloud run services replace") || !strings.Contains(all, "az containerapp create") {
		t.Errorf("summary lacks the deploy commands:\n%s", all)
	}
	env, err := config.ReadDotEnv(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	if env[EnvCloudRun] != "true" || env[EnvContainerApps] != "true" {
		t.Errorf(".env cloud answers: %q %q", env[EnvCloudRun], env[EnvContainerApps])
	}
	// A re-run without the flags keeps writing them (the answers come from .env).
	delete(flags, EnvCloudRun)
	delete(flags, EnvContainerApps)
	if err := os.Remove(filepath.Join(dir, "cloudrun", "service.yaml")); err != nil {
		t.Fatal(err)
	}
	r = run(t, context.Background(), Options{Dir: dir, NonInteractive: true, SkipChecks: true, Force: true, Flags: flags})
	if r.e != nil {
		t.Fatalf("re-run: %v\n%s", r.e, r.err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cloudrun", "service.yaml")); err != nil {
		t.Errorf("re-run dropped the Cloud Run answer: %v", err)
	}
}

// The form asks for the cloud files when the database is external.
func TestFormAsksForCloudFiles(t *testing.T) {
	t.Parallel()
	base := fakeLLM(t)
	dir := t.TempDir()
	// prod, external, URI, base URL, key, model default, public URL, CORS default, app id, proxy none,
	// project and host port defaults, k8s no, Cloud Run yes, Container Apps yes
	input := []string{"2", "2", "mongodb://db.example:27017/x", base, testKey, "", "https://agents.example.com", "", "acme", "3",
		"", "", "n", "y", "y"}
	r := run(t, context.Background(), Options{Dir: dir, Interactive: true, Accessible: true, SkipChecks: true,
		In: strings.NewReader(strings.Join(input, "\n") + "\n")})
	if r.e != nil {
		t.Fatalf("%v\n%s", r.e, r.err)
	}
	for _, f := range []string{"cloudrun/service.yaml", "azure/containerapp.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "k8s")); err == nil {
		t.Error("k8s/ written though declined")
	}
}
