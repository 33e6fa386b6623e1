package initwiz

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// Minimal mirrors of the Kubernetes API types the manifests use, with the
// same field names. Decoding with KnownFields fails on any field the real
// type does not have here (a typo, a wrong nesting), which is what a strict
// `kubectl apply --validate=strict` would catch. k8s.io/api itself is not a
// dependency: it would be by far the heaviest module in go.mod.
type (
	typeMeta struct {
		APIVersion string     `yaml:"apiVersion"`
		Kind       string     `yaml:"kind"`
		Metadata   objectMeta `yaml:"metadata"`
	}
	objectMeta struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	k8sDeployment struct {
		typeMeta `yaml:",inline"`
		Spec     struct {
			Replicas int32         `yaml:"replicas"`
			Selector labelSelector `yaml:"selector"`
			Template struct {
				Metadata objectMeta `yaml:"metadata"`
				Spec     podSpec    `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds int64 `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot bool  `yaml:"runAsNonRoot"`
			RunAsUser    int64 `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
	}
	container struct {
		Name  string `yaml:"name"`
		Image string `yaml:"image"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int32  `yaml:"containerPort"`
		} `yaml:"ports"`
		Env            []envVar `yaml:"env"`
		LivenessProbe  probe    `yaml:"livenessProbe"`
		ReadinessProbe probe    `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
	}
	envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	}
	probe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port int    `yaml:"port"`
		} `yaml:"httpGet"`
		InitialDelaySeconds int32 `yaml:"initialDelaySeconds"`
		PeriodSeconds       int32 `yaml:"periodSeconds"`
	}
	k8sService struct {
		typeMeta `yaml:",inline"`
		Spec     struct {
			Type     string            `yaml:"type"`
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string `yaml:"name"`
				Port       int32  `yaml:"port"`
				TargetPort string `yaml:"targetPort"`
				Protocol   string `yaml:"protocol"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	k8sSecret struct {
		typeMeta   `yaml:",inline"`
		Type       string            `yaml:"type"`
		StringData map[string]string `yaml:"stringData"`
	}
	k8sHPA struct {
		typeMeta `yaml:",inline"`
		Spec     struct {
			ScaleTargetRef struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Name       string `yaml:"name"`
			} `yaml:"scaleTargetRef"`
			MinReplicas int32 `yaml:"minReplicas"`
			MaxReplicas int32 `yaml:"maxReplicas"`
			Metrics     []struct {
				Type     string `yaml:"type"`
				Resource struct {
					Name   string `yaml:"name"`
					Target struct {
						Type               string `yaml:"type"`
						AverageUtilization int32  `yaml:"averageUtilization"`
					} `yaml:"target"`
				} `yaml:"resource"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	k8sPDB struct {
		typeMeta `yaml:",inline"`
		Spec     struct {
			MaxUnavailable int           `yaml:"maxUnavailable"`
			Selector       labelSelector `yaml:"selector"`
		} `yaml:"spec"`
	}
)

func decodeStrict(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s does not decode strictly: %v", path, err)
	}
}

func TestK8sManifestsDecodeStrictly(t *testing.T) {
	t.Parallel()
	for _, c := range renderCases {
		if !c.answers.K8s {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a, _ := c.answers.Normalize()
			dir := filepath.Join(writeFiles(t, renderFor(t, c, RenderOptions{ImageTag: "1.2.3"})), "k8s")
			var (
				dep k8sDeployment
				svc k8sService
				sec k8sSecret
				hpa k8sHPA
				pdb k8sPDB
			)
			decodeStrict(t, filepath.Join(dir, "deployment.yaml"), &dep)
			decodeStrict(t, filepath.Join(dir, "service.yaml"), &svc)
			decodeStrict(t, filepath.Join(dir, "secret.yaml"), &sec)
			decodeStrict(t, filepath.Join(dir, "hpa.yaml"), &hpa)
			decodeStrict(t, filepath.Join(dir, "pdb.yaml"), &pdb)

			kinds := []typeMeta{dep.typeMeta, svc.typeMeta, sec.typeMeta, hpa.typeMeta, pdb.typeMeta}
			want := [][2]string{{"apps/v1", "Deployment"}, {"v1", "Service"}, {"v1", "Secret"}, {"autoscaling/v2", "HorizontalPodAutoscaler"}, {"policy/v1", "PodDisruptionBudget"}}
			for i, k := range kinds {
				if k.APIVersion != want[i][0] || k.Kind != want[i][1] {
					t.Errorf("manifest %d is %s/%s, want %s/%s", i, k.APIVersion, k.Kind, want[i][0], want[i][1])
				}
			}
			app := dep.Spec.Template.Metadata.Labels["app"]
			if app == "" || dep.Spec.Selector.MatchLabels["app"] != app || svc.Spec.Selector["app"] != app || pdb.Spec.Selector.MatchLabels["app"] != app {
				t.Errorf("selectors do not match the pod labels %v", dep.Spec.Template.Metadata.Labels)
			}
			if hpa.Spec.ScaleTargetRef.Name != dep.Metadata.Name || hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.MinReplicas < 2 {
				t.Errorf("hpa: %+v", hpa.Spec)
			}
			ctr := dep.Spec.Template.Spec.Containers[0]
			if ctr.Image != "mozaiks/runtime:1.2.3" || ctr.Ports[0].ContainerPort != 8000 || svc.Spec.Ports[0].TargetPort != ctr.Ports[0].Name {
				t.Errorf("container: %+v, service ports %+v", ctr, svc.Spec.Ports)
			}
			if ctr.LivenessProbe.HTTPGet.Path != "/api/health" || ctr.LivenessProbe.InitialDelaySeconds != 15 || ctr.LivenessProbe.PeriodSeconds != 30 {
				t.Errorf("liveness: %+v", ctr.LivenessProbe)
			}
			if ctr.ReadinessProbe.HTTPGet.Path != "/api/ready" || ctr.ReadinessProbe.HTTPGet.Port != 8000 {
				t.Errorf("readiness: %+v", ctr.ReadinessProbe)
			}
			if ctr.Resources.Requests["memory"] != "512Mi" || ctr.Resources.Requests["cpu"] != "250m" || ctr.Resources.Limits["memory"] != "2Gi" || ctr.Resources.Limits["cpu"] != "1000m" {
				t.Errorf("resources: %+v", ctr.Resources)
			}
			// Every secret reference resolves, and the secret holds the answers.
			env := map[string]string{}
			for _, e := range ctr.Env {
				if e.ValueFrom != nil {
					ref := e.ValueFrom.SecretKeyRef
					if ref.Name != sec.Metadata.Name {
						t.Errorf("%s refers to secret %q", e.Name, ref.Name)
					}
					v, ok := sec.StringData[ref.Key]
					if !ok {
						t.Errorf("%s refers to missing secret key %q", e.Name, ref.Key)
					}
					env[e.Name] = v
				} else {
					env[e.Name] = e.Value
				}
			}
			for k, v := range map[string]string{"MONGO_URI": a.MongoURI, "OPENAI_API_KEY": a.OpenAIAPIKey, "AUTH_JWT_SECRET": testSecrets.JWTSecret,
				"CORS_ORIGINS": a.CORSOrigins, "DEFAULT_APP_ID": a.AppID, "OPENAI_BASE_URL": a.OpenAIBaseURL, "AUTH_ENABLED": "true"} {
				if env[k] != v {
					t.Errorf("env %s = %q, want %q", k, env[k], v)
				}
			}
		})
	}
}
