package initwiz

import (
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// Every generated manifest decodes strictly (unknown or misplaced fields
// fail) into the real Kubernetes API types, as the API server would read it.
func TestK8sManifestsDecodeIntoAPITypes(t *testing.T) {
	t.Parallel()
	for _, c := range renderCases {
		if !c.answers.K8s {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(writeFiles(t, renderFor(t, c, RenderOptions{ImageTag: "1.2.3"})), "k8s")
			for file, into := range map[string]any{
				"deployment.yaml": &appsv1.Deployment{},
				"service.yaml":    &corev1.Service{},
				"secret.yaml":     &corev1.Secret{},
				"hpa.yaml":        &autoscalingv2.HorizontalPodAutoscaler{},
				"pdb.yaml":        &policyv1.PodDisruptionBudget{},
			} {
				data, err := os.ReadFile(filepath.Join(dir, file))
				if err != nil {
					t.Fatal(err)
				}
				if err := yaml.UnmarshalStrict(data, into); err != nil {
					t.Errorf("%s does not decode strictly into %T: %v", file, into, err)
				}
			}
			var dep appsv1.Deployment
			data, _ := os.ReadFile(filepath.Join(dir, "deployment.yaml"))
			_ = yaml.UnmarshalStrict(data, &dep)
			ctr := dep.Spec.Template.Spec.Containers[0]
			if ctr.LivenessProbe == nil || ctr.LivenessProbe.HTTPGet.Path != "/api/health" ||
				ctr.ReadinessProbe == nil || ctr.ReadinessProbe.HTTPGet.Path != "/api/ready" {
				t.Errorf("probes: liveness %+v readiness %+v", ctr.LivenessProbe, ctr.ReadinessProbe)
			}
			if ctr.Resources.Limits.Memory().String() != "2Gi" || ctr.Resources.Requests.Cpu().String() != "250m" {
				t.Errorf("resources %+v", ctr.Resources)
			}
		})
	}
}
