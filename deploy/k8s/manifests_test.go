// Package k8s holds ringtrain's Kubernetes manifests (a Kustomize base,
// overlays, a pod to fetch the outputs) and the tests that keep them
// consistent with the binaries.
package k8s

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"ringtrain/internal/cli"
	"ringtrain/internal/coordinator"
	"ringtrain/internal/membership"
	"ringtrain/internal/metrics"
	"ringtrain/internal/transportsec"
	"ringtrain/internal/worker"
)

// objects is a built kustomization, decoded into Kubernetes types.
type objects struct {
	coordinator *batchv1.Job
	workers     *batchv1.Job
	pdbs        map[string]*policyv1.PodDisruptionBudget
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	pvcs        map[string]*corev1.PersistentVolumeClaim
	namespaces  []string
}

// build runs kustomize on dir and decodes every resource strictly.
func build(t *testing.T, dir string) *objects {
	t.Helper()
	docs, err := kustomize(dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return decode(t, dir, docs)
}

// built holds the kustomize builds of the directories, which the tests
// (in parallel) build more than once. Its lock also keeps the builds one
// at a time: kustomize's library races with itself on the OpenAPI schema
// it keeps in a global (kubernetes-sigs/kustomize#5805).
var built struct {
	mu   sync.Mutex
	docs map[string][][]byte
}

// kustomize returns the resources kustomize builds from dir, as YAML.
func kustomize(dir string) ([][]byte, error) {
	built.mu.Lock()
	defer built.mu.Unlock()
	if docs, ok := built.docs[dir]; ok {
		return docs, nil
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	var docs [][]byte
	for _, res := range resMap.Resources() {
		b, err := res.AsYAML()
		if err != nil {
			return nil, err
		}
		docs = append(docs, b)
	}
	if built.docs == nil {
		built.docs = map[string][][]byte{}
	}
	built.docs[dir] = docs
	return docs, nil
}

// decode decodes built resources strictly: a field the Kubernetes types do
// not know fails the test.
func decode(t *testing.T, dir string, docs [][]byte) *objects {
	t.Helper()
	o := &objects{pdbs: map[string]*policyv1.PodDisruptionBudget{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, pvcs: map[string]*corev1.PersistentVolumeClaim{}}
	for _, b := range docs {
		var meta struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := yaml.Unmarshal(b, &meta); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		name := meta.Metadata.Name
		var target any
		switch meta.Kind {
		case "Job":
			j := &batchv1.Job{}
			switch name {
			case "ringtrain-coordinator":
				o.coordinator = j
			case "ringtrain-worker":
				o.workers = j
			default:
				t.Fatalf("%s: unexpected Job %s", dir, name)
			}
			target = j
		case "PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			o.pdbs[name] = p
			target = p
		case "Service":
			s := &corev1.Service{}
			o.services[name] = s
			target = s
		case "ConfigMap":
			c := &corev1.ConfigMap{}
			o.configMaps[strings.TrimRight(strings.TrimRight(name, "0123456789abcdefghijklmnopqrstuvwxyz"), "-")] = c
			target = c
		case "PersistentVolumeClaim":
			p := &corev1.PersistentVolumeClaim{}
			o.pvcs[name] = p
			target = p
		case "Namespace":
			o.namespaces = append(o.namespaces, name)
			target = &corev1.Namespace{}
		default:
			t.Fatalf("%s: unexpected kind %s", dir, meta.Kind)
		}
		if err := yaml.UnmarshalStrict(b, target); err != nil {
			t.Fatalf("%s %s: %v", meta.Kind, name, err)
		}
	}
	if o.coordinator == nil || o.workers == nil {
		t.Fatalf("%s: no coordinator Job or worker Job", dir)
	}
	return o
}

// TestSourcesDecodeStrictly decodes every manifest file and the
// kustomizations as written, before kustomize touches them.
func TestSourcesDecodeStrictly(t *testing.T) {
	t.Parallel()
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
				"PodDisruptionBudget": &policyv1.PodDisruptionBudget{}, "Namespace": &corev1.Namespace{}, "Pod": &corev1.Pod{},
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
	t.Parallel()
	o := build(t, ".")
	roles := []role{
		{name: "coordinator", flags: cli.FlagNames("coordinator"), pod: o.coordinator.Spec.Template,
			config: o.configMaps["ringtrain-coordinator"], grpcPort: coordinator.DefaultPort, gRPCName: "grpc", checkDirs: true},
		{name: "worker", flags: cli.FlagNames("worker"), pod: o.workers.Spec.Template,
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
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
				t.Error("the service-account token is mounted, though nothing uses it")
			}
			if r.pod.Labels["app.kubernetes.io/part-of"] != "ringtrain" {
				t.Errorf("pod labels %v lack app.kubernetes.io/part-of=ringtrain: kubectl get pods -l finds nothing", r.pod.Labels)
			}
		})
	}
	if len(images) != 1 {
		t.Errorf("the pods use different images: %v", images)
	}
	checkServices(t, o)
	if svc := o.services["ringtrain-workers"]; svc == nil || svc.Spec.ClusterIP != "None" || !svc.Spec.PublishNotReadyAddresses {
		t.Error("the workers' service must be headless and list workers before they are ready")
	}
	checkJobsEnd(t, o)
	checkFailurePolicies(t, o)
	checkDisruptionBudget(t, o)
}

// checkJobsEnd requires the workers to end with the job: an elastic
// Indexed Job (parallelism = completions, which patching changes
// together) whose pods are not restarted in place once released, sized as
// the ring the coordinator starts with.
func checkJobsEnd(t *testing.T, o *objects) {
	t.Helper()
	w := o.workers.Spec
	if w.CompletionMode == nil || *w.CompletionMode != batchv1.IndexedCompletion || w.Parallelism == nil || w.Completions == nil ||
		*w.Parallelism != *w.Completions {
		t.Errorf("the workers must be an elastic Indexed Job (parallelism = completions): mode %v, parallelism %v, completions %v",
			w.CompletionMode, w.Parallelism, w.Completions)
	} else if want := o.configMaps["ringtrain-coordinator"].Data["RINGTRAIN_WORKERS"]; fmt.Sprint(*w.Parallelism) != want {
		t.Errorf("%d worker pods, but the coordinator waits for RINGTRAIN_WORKERS=%s", *w.Parallelism, want)
	}
	for name, j := range map[string]*batchv1.Job{"coordinator": o.coordinator, "workers": o.workers} {
		if p := j.Spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyNever {
			t.Errorf("the %s' restart policy is %s, want Never (a pod failure policy needs it; a failed pod is replaced)", name, p)
		}
	}
}

// checkFailurePolicies requires the coordinator's exit status 3 (SIGTERM:
// checkpointed, start me again; TestCoordinatorMetricsAndShutdown in
// cmd/coordinator holds it) and evictions not to count against backoffLimit, and a
// configuration mistake (exit status 2) to fail the job at once.
func checkFailurePolicies(t *testing.T, o *objects) {
	t.Helper()
	for _, c := range []struct {
		name   string
		job    *batchv1.Job
		ignore []int32
	}{{"coordinator", o.coordinator, []int32{3}}, {"worker", o.workers, nil}} {
		p := c.job.Spec.PodFailurePolicy
		if p == nil {
			t.Errorf("the %s Job has no pod failure policy", c.name)
			continue
		}
		action := func(code int32) batchv1.PodFailurePolicyAction {
			for _, r := range p.Rules {
				if e := r.OnExitCodes; e != nil && e.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && slices.Contains(e.Values, code) &&
					(e.ContainerName == nil || *e.ContainerName == c.name) {
					return r.Action
				}
			}
			return batchv1.PodFailurePolicyActionCount
		}
		for _, code := range c.ignore {
			if a := action(code); a != batchv1.PodFailurePolicyActionIgnore {
				t.Errorf("the %s's exit status %d counts against backoffLimit (%s)", c.name, code, a)
			}
		}
		if a := action(2); a != batchv1.PodFailurePolicyActionFailJob {
			t.Errorf("the %s's exit status 2 (a configuration mistake) gets %s, want FailJob", c.name, a)
		}
		evictions := slices.ContainsFunc(p.Rules, func(r batchv1.PodFailurePolicyRule) bool {
			return r.Action == batchv1.PodFailurePolicyActionIgnore && slices.ContainsFunc(r.OnPodConditions, func(c batchv1.PodFailurePolicyOnPodConditionsPattern) bool {
				return c.Type == corev1.DisruptionTarget
			})
		})
		if !evictions {
			t.Errorf("evicting a %s counts against backoffLimit", c.name)
		}
	}
}

// checkDisruptionBudget requires a budget that keeps RINGTRAIN_MIN_WORKERS
// workers through voluntary disruptions.
func checkDisruptionBudget(t *testing.T, o *objects) {
	t.Helper()
	pdb := o.pdbs["ringtrain-worker"]
	if pdb == nil || pdb.Spec.MinAvailable == nil || pdb.Spec.Selector == nil {
		t.Fatal("no PodDisruptionBudget ringtrain-worker with minAvailable")
	}
	if want := o.configMaps["ringtrain-coordinator"].Data["RINGTRAIN_MIN_WORKERS"]; pdb.Spec.MinAvailable.String() != want {
		t.Errorf("the budget keeps %s workers, RINGTRAIN_MIN_WORKERS=%s", pdb.Spec.MinAvailable.String(), want)
	}
	if !selects(pdb.Spec.Selector.MatchLabels, o.workers.Spec.Template.Labels) {
		t.Error("the PodDisruptionBudget does not select the worker pods")
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
	pods := []corev1.PodTemplateSpec{o.coordinator.Spec.Template, o.workers.Spec.Template}
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
	t.Parallel()
	o := build(t, "../overlays/example")
	if p, c := o.workers.Spec.Parallelism, o.workers.Spec.Completions; p == nil || c == nil || *p != 8 || *c != 8 {
		t.Errorf("overlay parallelism %v, completions %v, want 8", p, c)
	}
	for _, j := range []*batchv1.Job{o.coordinator, o.workers} {
		if img := j.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/ringtrain:v1" {
			t.Errorf("overlay image %q", img)
		}
		if j.Spec.Template.Labels["app.kubernetes.io/part-of"] != "ringtrain" {
			t.Errorf("%s pods lack the part-of label", j.Name)
		}
	}
	if w := o.configMaps["ringtrain-coordinator"].Data["RINGTRAIN_WORKERS"]; w != "8" {
		t.Errorf("overlay RINGTRAIN_WORKERS=%q, want 8", w)
	}
	if o.workers.Namespace != "ringtrain" || !slices.Contains(o.namespaces, "ringtrain") {
		t.Error("the overlay does not place the job in its namespace")
	}
	checkJobsEnd(t, o)
}

// TestSecureOverlay builds the secure overlay and checks it against what
// the binaries and "coordinator certs" expect: the TLS files named in the
// configuration are those certs writes, in the mounted Secret; the token
// and gossip key come from the same Secret under certs's file names; the
// probes go to the plaintext health port; every key is a flag.
func TestSecureOverlay(t *testing.T) {
	t.Parallel()
	o := build(t, "../overlays/secure")
	dc, err := transportsec.GenerateDevCredentials(t.TempDir(), nil, time.Hour)
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
		{"coordinator", o.coordinator.Spec.Template, o.configMaps["ringtrain-coordinator"]},
		{"worker", o.workers.Spec.Template, o.configMaps["ringtrain-worker"]},
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

// TestKubectlKustomize builds the base and every overlay with kubectl's
// own kustomize, as kubectl apply -k does, where kubectl is installed:
// the output decodes strictly and matches the library's build.
func TestKubectlKustomize(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl not installed: kubectl kustomize test skipped")
	}
	out, err := exec.Command("kubectl", "version", "--client", "-o", "json").Output()
	if err != nil {
		t.Fatalf("kubectl version: %v", err)
	}
	var v struct {
		Kustomize string `json:"kustomizeVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("kubectl version: %v\n%s", err, out)
	}
	var major, minor int
	if _, err := fmt.Sscanf(v.Kustomize, "v%d.%d", &major, &minor); err != nil || major < 4 || major == 4 && minor < 1 {
		t.Skipf("kubectl's kustomize %q predates the labels field the base uses (v4.1, kubectl 1.22): kubectl kustomize test skipped", v.Kustomize)
	}
	overlays, _ := filepath.Glob("../overlays/*")
	dirs := append([]string{"."}, overlays...)
	// kubectl runs on every directory at once, while the library builds.
	outs := make([][]byte, len(dirs))
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	defer wg.Wait() // also when a build fails the test
	for i, dir := range dirs {
		wg.Go(func() { outs[i], errs[i] = exec.Command("kubectl", "kustomize", dir).Output() })
	}
	wants := make([]*objects, len(dirs))
	for i, dir := range dirs {
		wants[i] = build(t, dir)
	}
	wg.Wait()
	for i, dir := range dirs {
		if errs[i] != nil {
			t.Fatalf("kubectl kustomize %s: %v", dir, errs[i])
		}
		got, want := decode(t, dir, bytes.Split(outs[i], []byte("\n---\n"))), wants[i]
		for name, pair := range map[string][2]*batchv1.Job{"coordinator": {got.coordinator, want.coordinator}, "worker": {got.workers, want.workers}} {
			g, w := pair[0].Spec.Template, pair[1].Spec.Template
			if g.Spec.Containers[0].Image != w.Spec.Containers[0].Image || g.Labels["app.kubernetes.io/part-of"] != "ringtrain" ||
				pair[0].Namespace != pair[1].Namespace {
				t.Errorf("%s: kubectl's %s Job (image %s, labels %v, namespace %q) differs from the library's (image %s, namespace %q)",
					dir, name, g.Spec.Containers[0].Image, g.Labels, pair[0].Namespace, w.Spec.Containers[0].Image, pair[1].Namespace)
			}
		}
		if len(got.services) != len(want.services) || len(got.configMaps) != len(want.configMaps) || len(got.pdbs) != len(want.pdbs) {
			t.Errorf("%s: kubectl built %d services, %d config maps, %d budgets; the library %d, %d, %d", dir,
				len(got.services), len(got.configMaps), len(got.pdbs), len(want.services), len(want.configMaps), len(want.pdbs))
		}
	}
}

// TestOverlayOfYourOwn builds the README's way to point the job at an
// image: an overlay of one's own, outside the repository, over the base.
func TestOverlayOfYourOwn(t *testing.T) {
	t.Parallel()
	base, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, base) // kustomize takes relative paths only
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf(`resources:
  - %s
images:
  - name: ringtrain
    newName: registry.example.com/ringtrain
    newTag: v2
`, rel)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	o := build(t, dir)
	for _, j := range []*batchv1.Job{o.coordinator, o.workers} {
		if img := j.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/ringtrain:v2" {
			t.Errorf("%s image %q, want registry.example.com/ringtrain:v2", j.Name, img)
		}
	}
}

// TestFetchPodIsRestricted checks the pod the README fetches the outputs
// with: it passes the restricted Pod Security Standard and mounts the
// coordinator's volume, read-only, where the coordinator writes.
func TestFetchPodIsRestricted(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("fetch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(data, &pod); err != nil {
		t.Fatal(err)
	}
	spec := pod.Spec
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v: want a non-root user and the RuntimeDefault seccomp profile", sc)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container security context %+v: want no privilege escalation and every capability dropped", sc)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the service-account token is mounted")
	}
	o := build(t, ".")
	want := o.coordinator.Spec.Template.Spec
	var claim, mount string
	for _, m := range want.Containers[0].VolumeMounts {
		for _, v := range want.Volumes {
			if v.Name == m.Name && v.PersistentVolumeClaim != nil {
				claim, mount = v.PersistentVolumeClaim.ClaimName, m.MountPath
			}
		}
	}
	found := false
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.PersistentVolumeClaim != nil {
				found = v.PersistentVolumeClaim.ClaimName == claim && m.MountPath == mount && m.ReadOnly
			}
		}
	}
	if !found {
		t.Errorf("the fetch pod does not mount claim %s read-only at %s, as the coordinator has it", claim, mount)
	}
	if got := o.configMaps["ringtrain-coordinator"].Data["RINGTRAIN_CHECKPOINT"]; !bytes.Contains(data, []byte("cat "+got+" ")) {
		t.Errorf("the fetch pod's recipe does not read RINGTRAIN_CHECKPOINT=%s", got)
	}
}
