// Package k8s holds ringtrain's Kubernetes manifests (a Kustomize base and
// an example overlay) and the test that keeps them consistent with the
// binaries.
package k8s

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"ringtrain/internal/cli"
	"ringtrain/internal/coordinator"
	"ringtrain/internal/membership"
	"ringtrain/internal/metrics"
	"ringtrain/internal/rpc"
	"ringtrain/internal/worker"
)

// objects is a built kustomization, decoded into Kubernetes types.
type objects struct {
	job         *batchv1.Job
	statefulSet *appsv1.StatefulSet
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	pvcs        map[string]*corev1.PersistentVolumeClaim
	namespaces  []string
}

// build runs kustomize on dir and decodes every resource strictly: a field
// the Kubernetes types do not know fails the test.
func build(t *testing.T, dir string) *objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	o := &objects{services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}, pvcs: map[string]*corev1.PersistentVolumeClaim{}}
	for _, res := range resMap.Resources() {
		b, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var target any
		switch kind := res.GetKind(); kind {
		case "Job":
			o.job = &batchv1.Job{}
			target = o.job
		case "StatefulSet":
			o.statefulSet = &appsv1.StatefulSet{}
			target = o.statefulSet
		case "Service":
			s := &corev1.Service{}
			o.services[res.GetName()] = s
			target = s
		case "ConfigMap":
			c := &corev1.ConfigMap{}
			o.configMaps[strings.TrimRight(strings.TrimRight(res.GetName(), "0123456789abcdefghijklmnopqrstuvwxyz"), "-")] = c
			target = c
		case "PersistentVolumeClaim":
			p := &corev1.PersistentVolumeClaim{}
			o.pvcs[res.GetName()] = p
			target = p
		case "Namespace":
			o.namespaces = append(o.namespaces, res.GetName())
			target = &corev1.Namespace{}
		default:
			t.Fatalf("%s: unexpected kind %s", dir, kind)
		}
		if err := yaml.UnmarshalStrict(b, target); err != nil {
			t.Fatalf("%s %s: %v", res.GetKind(), res.GetName(), err)
		}
	}
	if o.job == nil || o.statefulSet == nil {
		t.Fatalf("%s: no coordinator Job or worker StatefulSet", dir)
	}
	return o
}

// TestSourcesDecodeStrictly decodes every manifest file and the
// kustomizations as written, before kustomize touches them.
func TestSourcesDecodeStrictly(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	overlay, _ := filepath.Glob("../overlays/*/*.yaml")
	for _, f := range append(files, overlay...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f) == "kustomization.yaml" {
			var k types.Kustomization
			if err := yaml.UnmarshalStrict(data, &k); err != nil {
				t.Errorf("%s: %v", f, err)
			}
			continue
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			var meta struct{ Kind string }
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			target := map[string]any{
				"PersistentVolumeClaim": &corev1.PersistentVolumeClaim{}, "Job": &batchv1.Job{}, "Service": &corev1.Service{},
				"StatefulSet": &appsv1.StatefulSet{}, "Namespace": &corev1.Namespace{},
			}[meta.Kind]
			if target == nil {
				t.Fatalf("%s document %d: unexpected kind %q", f, i, meta.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, target); err != nil {
				t.Errorf("%s document %d (%s): %v", f, i, meta.Kind, err)
			}
		}
	}
}

// role is what the test expects of one binary's pods.
type role struct {
	name      string
	flags     []string
	pod       corev1.PodTemplateSpec
	config    *corev1.ConfigMap
	grpcPort  int32 // the port its gRPC health service answers on
	gRPCName  string
	checkDirs bool
}

// TestManifestsMatchBinaries builds the base and checks it against the
// binaries: ports, probes, selectors, image, configuration keys, security.
func TestManifestsMatchBinaries(t *testing.T) {
	o := build(t, ".")
	roles := []role{
		{name: "coordinator", flags: cli.FlagNames("coordinator"), pod: o.job.Spec.Template,
			config: o.configMaps["ringtrain-coordinator"], grpcPort: coordinator.DefaultPort, gRPCName: "grpc", checkDirs: true},
		{name: "worker", flags: cli.FlagNames("worker"), pod: o.statefulSet.Spec.Template,
			config: o.configMaps["ringtrain-worker"], grpcPort: worker.DefaultRingPort, gRPCName: "ring"},
	}
	images := map[string]bool{}
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			if r.config == nil {
				t.Fatalf("no ConfigMap for the %s", r.name)
			}
			spec := r.pod.Spec
			if len(spec.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(spec.Containers))
			}
			c := spec.Containers[0]
			images[c.Image] = true
			checkPorts(t, c, r)
			checkProbes(t, c, r.grpcPort)
			checkSecurity(t, spec, c)
			checkResources(t, c)
			checkConfig(t, c, r)
			if r.checkDirs {
				checkVolumes(t, spec, c, r.config)
			}
			if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds < 10 {
				t.Errorf("termination grace period %v: too short to drain or checkpoint", spec.TerminationGracePeriodSeconds)
			}
		})
	}
	if len(images) != 1 {
		t.Errorf("the pods use different images: %v", images)
	}
	checkServices(t, o)
	if o.statefulSet.Spec.ServiceName != "ringtrain-workers" || o.services["ringtrain-workers"].Spec.ClusterIP != "None" {
		t.Errorf("the StatefulSet's service %q must be the headless ringtrain-workers", o.statefulSet.Spec.ServiceName)
	}
	if o.job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Error("the coordinator Job must restart a failed coordinator (it resumes from its checkpoints)")
	}
}

func checkPorts(t *testing.T, c corev1.Container, r role) {
	want := map[string]corev1.ContainerPort{
		r.gRPCName:   {ContainerPort: r.grpcPort, Protocol: corev1.ProtocolTCP},
		"gossip-tcp": {ContainerPort: membership.DefaultPort, Protocol: corev1.ProtocolTCP},
		"gossip-udp": {ContainerPort: membership.DefaultPort, Protocol: corev1.ProtocolUDP},
		"metrics":    {ContainerPort: metrics.DefaultPort, Protocol: corev1.ProtocolTCP},
	}
	for _, p := range c.Ports {
		w, ok := want[p.Name]
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if !ok || w.ContainerPort != p.ContainerPort || w.Protocol != proto {
			t.Errorf("container port %s %d/%s is not the binary's (%v)", p.Name, p.ContainerPort, proto, w)
		}
		delete(want, p.Name)
	}
	for name := range want {
		t.Errorf("no container port %s", name)
	}
}

func checkProbes(t *testing.T, c corev1.Container, grpcPort int32) {
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.GRPC == nil {
			t.Errorf("%s probe is not a gRPC health probe", name)
			continue
		}
		if p.GRPC.Port != grpcPort {
			t.Errorf("%s probe on port %d; the gRPC health service is on %d", name, p.GRPC.Port, grpcPort)
		}
	}
}

func checkSecurity(t *testing.T, spec corev1.PodSpec, c corev1.Container) {
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("the pod does not require a non-root user")
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the container must have a read-only root file system and no privilege escalation")
	}
}

func checkResources(t *testing.T, c corev1.Container) {
	for _, l := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
		if _, ok := l[corev1.ResourceCPU]; !ok {
			t.Error("missing CPU request or limit")
		}
		if _, ok := l[corev1.ResourceMemory]; !ok {
			t.Error("missing memory request or limit")
		}
	}
}

// checkConfig requires every RINGTRAIN_* variable to be a flag of the
// binary, the listen addresses to match the ports, and the pod's identity
// to come from the downward API.
func checkConfig(t *testing.T, c corev1.Container, r role) {
	vars := map[string]string{}
	for k, v := range r.config.Data {
		vars[k] = v
	}
	downward := map[string]string{}
	for _, e := range c.Env {
		vars[e.Name] = e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			downward[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	for name := range vars {
		flag, ok := strings.CutPrefix(name, "RINGTRAIN_")
		if !ok {
			continue
		}
		flag = strings.ToLower(strings.ReplaceAll(flag, "_", "-"))
		if !slices.Contains(r.flags, flag) {
			t.Errorf("%s sets %s, but the %s has no -%s flag", r.config.Name, name, r.name, flag)
		}
	}
	for flag, port := range map[string]int32{"RINGTRAIN_LISTEN": r.grpcPort, "RINGTRAIN_GOSSIP_LISTEN": membership.DefaultPort, "RINGTRAIN_METRICS_LISTEN": metrics.DefaultPort} {
		if vars[flag] != fmt.Sprintf(":%d", port) {
			t.Errorf("%s=%q, want :%d to match the container port", flag, vars[flag], port)
		}
	}
	if downward["POD_IP"] != "status.podIP" || vars["RINGTRAIN_GOSSIP_ADVERTISE"] != fmt.Sprintf("$(POD_IP):%d", membership.DefaultPort) ||
		vars["RINGTRAIN_ADVERTISE"] != fmt.Sprintf("$(POD_IP):%d", r.grpcPort) {
		t.Errorf("the %s must advertise its pod IP (downward API) on its ports: %v", r.name, vars)
	}
	if r.name == "worker" && (downward["POD_NAME"] != "metadata.name" || vars["RINGTRAIN_ID"] != "$(POD_NAME)") {
		t.Error("a worker must be named after its pod (downward API)")
	}
	if r.name == "worker" && !strings.Contains(vars["RINGTRAIN_JOIN"], "ringtrain-workers") {
		t.Errorf("workers must join through the headless service's DNS name, not %q", vars["RINGTRAIN_JOIN"])
	}
}

// checkVolumes requires the coordinator's outputs to be on its volume.
func checkVolumes(t *testing.T, spec corev1.PodSpec, c corev1.Container, cfg *corev1.ConfigMap) {
	var mount string
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.PersistentVolumeClaim != nil {
				mount = m.MountPath
			}
		}
	}
	if mount == "" {
		t.Fatal("the coordinator has no persistent volume")
	}
	for _, k := range []string{"RINGTRAIN_CHECKPOINT_DIR", "RINGTRAIN_CHECKPOINT", "RINGTRAIN_SUMMARY"} {
		if !strings.HasPrefix(cfg.Data[k], mount+"/") {
			t.Errorf("%s=%q is not on the persistent volume %s", k, cfg.Data[k], mount)
		}
	}
}

// checkServices requires every Service to select pods that exist and to
// point each port at a container port of the same number.
func checkServices(t *testing.T, o *objects) {
	pods := []corev1.PodTemplateSpec{o.job.Spec.Template, o.statefulSet.Spec.Template}
	for name, svc := range o.services {
		var target *corev1.PodTemplateSpec
		for i, p := range pods {
			if selects(svc.Spec.Selector, p.Labels) {
				target = &pods[i]
			}
		}
		if target == nil {
			t.Errorf("service %s selects no pods (%v)", name, svc.Spec.Selector)
			continue
		}
		for _, sp := range svc.Spec.Ports {
			found := false
			for _, cp := range target.Spec.Containers[0].Ports {
				if cp.Name == sp.TargetPort.StrVal && cp.ContainerPort == sp.Port && (cp.Protocol == sp.Protocol || sp.Protocol == "") {
					found = true
				}
			}
			if !found {
				t.Errorf("service %s port %s (%d → %s) matches no container port", name, sp.Name, sp.Port, sp.TargetPort.String())
			}
		}
	}
	for _, name := range []string{"ringtrain-coordinator", "ringtrain-workers"} {
		if o.services[name] == nil {
			t.Errorf("no service %s", name)
		}
	}
	if !selects(o.statefulSet.Spec.Selector.MatchLabels, o.statefulSet.Spec.Template.Labels) {
		t.Error("the StatefulSet's selector does not match its pods")
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestOverlayBuilds builds the example overlay: its knobs reach the
// objects.
func TestOverlayBuilds(t *testing.T) {
	o := build(t, "../overlays/example")
	if got := *o.statefulSet.Spec.Replicas; got != 8 {
		t.Errorf("overlay replicas %d, want 8", got)
	}
	if img := o.statefulSet.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/ringtrain:v1" {
		t.Errorf("overlay image %q", img)
	}
	if w := o.configMaps["ringtrain-coordinator"].Data["RINGTRAIN_WORKERS"]; w != "8" {
		t.Errorf("overlay RINGTRAIN_WORKERS=%q, want 8", w)
	}
	if o.statefulSet.Namespace != "ringtrain" || !slices.Contains(o.namespaces, "ringtrain") {
		t.Error("the overlay does not place the job in its namespace")
	}
}

// TestSecureOverlay builds the secure overlay and checks it against what
// the binaries and "coordinator certs" expect: the TLS files named in the
// configuration are those certs writes, in the mounted Secret; the token
// and gossip key come from the same Secret under certs's file names; the
// probes go to the plaintext health port; every key is a flag.
func TestSecureOverlay(t *testing.T) {
	o := build(t, "../overlays/secure")
	dc, err := rpc.GenerateDevCredentials(t.TempDir(), nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"RINGTRAIN_TLS_CERT": filepath.Base(dc.Cert), "RINGTRAIN_TLS_KEY": filepath.Base(dc.Key),
		"RINGTRAIN_TLS_CA": filepath.Base(dc.CA)}
	secretKeys := map[string]string{"RINGTRAIN_TOKEN": "token", "RINGTRAIN_GOSSIP_KEY": "gossip.key"}
	for _, k := range secretKeys {
		if _, err := os.Stat(filepath.Join(filepath.Dir(dc.CA), k)); err != nil {
			t.Fatalf("certs does not write %s: %v", k, err)
		}
	}
	for _, r := range []struct {
		name   string
		pod    corev1.PodTemplateSpec
		config *corev1.ConfigMap
	}{
		{"coordinator", o.job.Spec.Template, o.configMaps["ringtrain-coordinator"]},
		{"worker", o.statefulSet.Spec.Template, o.configMaps["ringtrain-worker"]},
	} {
		t.Run(r.name, func(t *testing.T) {
			spec, c := r.pod.Spec, r.pod.Spec.Containers[0]
			var secret, dir string
			for _, m := range c.VolumeMounts {
				for _, v := range spec.Volumes {
					if v.Name == m.Name && v.Secret != nil {
						secret, dir = v.Secret.SecretName, m.MountPath
						if !m.ReadOnly {
							t.Error("the credentials are mounted writable")
						}
						if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o007 != 0 {
							t.Error("the credentials are readable by others")
						}
					}
				}
			}
			if secret == "" {
				t.Fatal("no Secret mounted")
			}
			if sc := spec.SecurityContext; sc == nil || sc.FSGroup == nil || sc.RunAsGroup == nil || *sc.FSGroup != *sc.RunAsGroup {
				t.Error("without an fsGroup the non-root user cannot read the credentials")
			}
			for key, base := range files {
				if got := r.config.Data[key]; got != dir+"/"+base {
					t.Errorf("%s=%q, want %s/%s", key, got, dir, base)
				}
			}
			found := map[string]bool{}
			for _, e := range c.Env {
				if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
					if ref.SecretKeyRef.Name != secret || ref.SecretKeyRef.Key != secretKeys[e.Name] {
						t.Errorf("%s from %s/%s, want %s/%s", e.Name, ref.SecretKeyRef.Name, ref.SecretKeyRef.Key, secret, secretKeys[e.Name])
					}
					found[e.Name] = true
				}
			}
			if len(found) != len(secretKeys) {
				t.Errorf("secret variables %v, want %v", found, secretKeys)
			}
			flags := cli.FlagNames(r.name)
			for name := range r.config.Data {
				flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "RINGTRAIN_"), "_", "-"))
				if !slices.Contains(flags, flag) {
					t.Errorf("%s has no -%s flag (%s)", r.name, flag, name)
				}
			}
			var health int32
			if _, err := fmt.Sscanf(r.config.Data["RINGTRAIN_HEALTH_LISTEN"], ":%d", &health); err != nil {
				t.Fatalf("RINGTRAIN_HEALTH_LISTEN=%q", r.config.Data["RINGTRAIN_HEALTH_LISTEN"])
			}
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if p == nil || p.GRPC == nil || p.GRPC.Port != health {
					t.Errorf("probe %+v does not use the health port %d", p, health)
				}
			}
			if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == health }) {
				t.Errorf("no container port %d for the probes", health)
			}
		})
	}
}
