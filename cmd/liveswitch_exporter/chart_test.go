package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/liveswitch-exporter/liveswitch_exporter/dashboards"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

const (
	chartDir = "../../charts/liveswitch-exporter"
	// kubeVersion is the cluster the chart is rendered for (a helm built
	// with `go install` would otherwise assume 1.20).
	kubeVersion = "1.33.0"
	helmModule  = "helm.sh/helm/v3/cmd/helm@v3.21.4"
	// validator checks objects against the Kubernetes and prometheus-operator
	// schemas (scripts/kube-validate, npm ci installs its packages).
	validatorDir = "../../scripts/kube-validate"
)

// TestChartCarriesTheBundledFiles: the chart's files/ are exactly the
// alerts, recording rules and dashboards of dashboards/, which
// scripts/sync-chart.sh copies; nothing more, nothing less.
func TestChartCarriesTheBundledFiles(t *testing.T) {
	want := map[string]string{
		"alerts.yml": "prometheus/alerts.yml",
		"rules.yml":  "prometheus/rules.yml",
	}
	dashboardFiles, err := fs.Glob(dashboards.FS, "grafana/*.json")
	if err != nil || len(dashboardFiles) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	for _, f := range dashboardFiles {
		want["dashboards/"+path.Base(f)] = f
	}
	files := filepath.Join(chartDir, "files")
	var got []string
	err = filepath.WalkDir(files, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(files, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range got {
		src, ok := want[rel]
		if !ok {
			t.Errorf("charts/liveswitch-exporter/files/%s is not a bundled file; run scripts/sync-chart.sh", rel)
			continue
		}
		chart, _ := os.ReadFile(filepath.Join(files, rel))
		shipped, _ := dashboards.FS.ReadFile(src)
		if !bytes.Equal(chart, shipped) {
			t.Errorf("charts/liveswitch-exporter/files/%s differs from dashboards/%s; run scripts/sync-chart.sh", rel, src)
		}
		delete(want, rel)
	}
	for rel, src := range want {
		t.Errorf("the chart lacks files/%s (dashboards/%s); run scripts/sync-chart.sh", rel, src)
	}
}

// helm runs helm and returns its output, or its error with what it said.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := testenv.RequireGoTool(t, "helm", helmModule)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(strings.TrimSpace(stderr.String() + "\n" + err.Error()))
	}
	return stdout.String(), nil
}

// exampleValues are the chart's example values files (ci/*-values.yaml).
func exampleValues(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for _, want := range []string{"embedded-values.yaml", "redis-values.yaml", "gateway-api-values.yaml", "tls-values.yaml"} {
		if !slices.Contains(names, want) {
			t.Errorf("the chart has no example ci/%s", want)
		}
	}
	return files
}

// TestChartLint: helm lint --strict passes with the defaults and each example.
func TestChartLint(t *testing.T) {
	for _, values := range append([]string{""}, exampleValues(t)...) {
		t.Run("values="+filepath.Base(values), func(t *testing.T) {
			t.Parallel()
			args := []string{"lint", "--strict", "--kube-version", kubeVersion, chartDir}
			if values != "" {
				args = append(args, "-f", values)
			}
			if out, err := helm(t, args...); err != nil {
				t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// TestChartRefusesWrongValues: values.schema.json and the chart's own checks
// refuse what cannot work, saying why, before anything is made.
func TestChartRefusesWrongValues(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"replicaCount=3"}, "the embedded store serves one exporter only: set redis.url or redis.existingSecret"},
		{[]string{"replicaCount=two"}, "/replicaCount"},
		{[]string{"replicaCount=0", "redis.url=redis://r:6379"}, "/replicaCount"},
		{[]string{"serviceMonitr.enabled=true"}, "serviceMonitr"},
		{[]string{"serviceMonitor.interval=30"}, "/serviceMonitor/interval"},
		{[]string{"persistence.onDamage=ignore"}, "/persistence/onDamage"},
		{[]string{"redis.url=localhost:6379"}, "/redis/url"},
		{[]string{"gatewayAPI.interval=15"}, "/gatewayAPI/interval"},
		{[]string{"gatewayAPI.key=k"}, "need gatewayAPI.url"},
		{[]string{"probes.port=webhook"}, "needs webhook.listener.enabled"},
		{[]string{"webConfig.tls_config.cert_file=x"}, "tls_config"},
		{[]string{"extraArgs[0]=storage.path=/x"}, "/extraArgs/0"},
		{[]string{"webhook.ingress.enabled=true"}, "needs at least one webhook.ingress.hosts"},
	} {
		t.Run(strings.Join(tc.set, ","), func(t *testing.T) {
			t.Parallel()
			args := []string{"template", "t", chartDir, "--kube-version", kubeVersion}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := helm(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("--set %v: want a refusal naming %q, got %v\n%.500s", tc.set, tc.want, err, out)
			}
		})
	}
}

// object is a rendered Kubernetes object, with the fields the tests read.
type object struct {
	APIVersion string
	Kind       string
	Metadata   struct {
		Name, Namespace     string
		Labels, Annotations map[string]string
	}
	raw  map[string]any
	json []byte
}

func (o object) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(o.json, v); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Metadata.Name, err)
	}
}

// render runs helm template with values and returns the objects.
func render(t *testing.T, values string) []object {
	t.Helper()
	out, err := helm(t, "template", "t", chartDir, "--namespace", "liveswitch", "--kube-version", kubeVersion, "-f", values)
	if err != nil {
		t.Fatalf("helm template -f %s: %v", filepath.Base(values), err)
	}
	dec := yaml.NewDecoder(strings.NewReader(out))
	var objs []object
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if doc == nil {
			continue
		}
		raw, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		o := object{raw: doc, json: raw}
		o.decode(t, &o)
		objs = append(objs, o)
	}
	return objs
}

// schemaErrors checks every object against the Kubernetes and
// prometheus-operator schemas, offline, and returns what they refuse.
func schemaErrors(t *testing.T, objs []object) []string {
	t.Helper()
	node := testenv.RequireTool(t, "node", "nodejs")
	if _, err := os.Stat(filepath.Join(validatorDir, "node_modules", "kubernetes-models")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("scripts/kube-validate has no node_modules; .ci/run must run npm ci --prefix scripts/kube-validate")
		}
		t.Skip("the schemas are not installed: npm ci --prefix scripts/kube-validate")
	}
	var docs []json.RawMessage
	for _, o := range objs {
		docs = append(docs, o.json)
	}
	input, _ := json.Marshal(docs)
	cmd := exec.Command(node, filepath.Join(validatorDir, "validate.mjs"))
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("validate.mjs: %v\n%s", err, stderr.String())
	}
	var problems []string
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			Kind, Name string
			Errors     []string
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("validate.mjs printed %q", sc.Text())
		}
		for _, e := range r.Errors {
			problems = append(problems, r.Kind+" "+r.Name+": "+e)
		}
		n++
	}
	if n != len(objs) {
		t.Fatalf("validate.mjs judged %d objects of %d", n, len(objs))
	}
	return problems
}

// TestChartValidatorCatches: the schema check refuses a container without a
// name and a port that is a string, and a ServiceMonitor scheme that is not
// http or https.
func TestChartValidatorCatches(t *testing.T) {
	objs := render(t, filepath.Join(chartDir, "ci", "embedded-values.yaml"))
	var bad []object
	for _, o := range objs {
		var doc map[string]any
		_ = json.Unmarshal(o.json, &doc)
		switch o.Kind {
		case "StatefulSet":
			c := doc["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
			delete(c, "name")
		case "ServiceMonitor":
			doc["spec"].(map[string]any)["endpoints"].([]any)[0].(map[string]any)["scheme"] = "ftp"
		default:
			continue
		}
		raw, _ := json.Marshal(doc)
		bad = append(bad, object{Kind: o.Kind, json: raw})
	}
	problems := schemaErrors(t, bad)
	if len(bad) != 2 || len(problems) != 2 {
		t.Errorf("%d broken objects, the schemas refused %d: %v", len(bad), len(problems), problems)
	}
}

// workload is the part of a StatefulSet or Deployment the tests read.
type workload struct {
	Spec struct {
		Replicas             int
		Selector             struct{ MatchLabels map[string]string }
		VolumeClaimTemplates []struct {
			Metadata struct{ Name string }
		}
		Template struct {
			Metadata struct{ Labels map[string]string }
			Spec     podSpec
		}
	}
}

type podSpec struct {
	AutomountServiceAccountToken *bool
	SecurityContext              struct {
		RunAsNonRoot   *bool
		RunAsUser      *int
		SeccompProfile struct{ Type string }
	}
	Containers []container
	Volumes    []volume
}

type container struct {
	Name                          string
	Args                          []string
	Env                           []envVar
	Ports                         []containerPort
	LivenessProbe, ReadinessProbe *struct {
		HTTPGet *struct{ Path, Port, Scheme string }
	}
	SecurityContext struct {
		ReadOnlyRootFilesystem, AllowPrivilegeEscalation, RunAsNonRoot *bool
		Capabilities                                                   struct{ Drop []string }
	}
	VolumeMounts []volumeMount
}

type containerPort struct {
	Name          string
	ContainerPort int
}

type volumeMount struct {
	Name, MountPath, SubPath string
	ReadOnly                 bool
}

type envVar struct {
	Name, Value string
	ValueFrom   *struct {
		SecretKeyRef *struct{ Name, Key string }
	}
}

type keyPath struct{ Key, Path string }

type volume struct {
	Name   string
	Secret *struct {
		SecretName string
		Items      []keyPath
	}
	ConfigMap *struct {
		Name  string
		Items []keyPath
	}
	EmptyDir *struct{}
}

// chartValues is the part of an example values file the tests compare with.
type chartValues struct {
	ReplicaCount int
	Redis        struct {
		URL, ExistingSecret string
		WaitReplicas        int
	}
	Webhook struct {
		Token, ExistingSecret string
		AllowedCIDRs          []string
		Listener              struct{ Enabled bool }
		Ingress               struct{ Enabled bool }
	}
	GatewayAPI struct {
		URL, Key, ExistingSecret string
		CA                       struct{ ConfigMap, Secret string }
	}
	Applications struct {
		Secrets        map[string]string
		ExistingSecret string
	}
	WebConfig      map[string]any
	ServiceMonitor struct {
		Enabled          bool
		Scheme           string
		AdditionalLabels map[string]string
	}
	PrometheusRule struct {
		Enabled          bool
		AdditionalLabels map[string]string
	}
	GrafanaDashboards struct {
		Enabled   bool
		Namespace string
	}
	NetworkPolicy struct{ Enabled bool }
}

// yamlAsJSON decodes YAML into v as encoding/json would decode its JSON
// (field names matched without regard to case).
func yamlAsJSON(t *testing.T, raw []byte, v any) {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func readValues(t *testing.T, file string) chartValues {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	v := chartValues{ReplicaCount: 1}
	yamlAsJSON(t, raw, &v)
	return v
}

func (v chartValues) redis() bool { return v.Redis.URL != "" || v.Redis.ExistingSecret != "" }

// secrets are the secret strings the values give the chart itself.
func (v chartValues) secrets() []string {
	out := []string{v.Webhook.Token, v.GatewayAPI.Key, v.Redis.URL}
	for _, s := range v.Applications.Secrets {
		out = append(out, s)
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// inSecret tells whether the Secret holds secret as one of its values, or
// in the application secrets file.
func (v chartValues) inSecret(t *testing.T, o object, secret string) bool {
	t.Helper()
	var sec struct{ Data map[string]string }
	o.decode(t, &sec)
	for _, b64 := range sec.Data {
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		if string(raw) == secret {
			return true
		}
		var apps map[string]string
		if yaml.Unmarshal(raw, &apps) == nil && slices.Contains(slices.Collect(maps.Values(apps)), secret) {
			return true
		}
	}
	return false
}

func byKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the only object of kind, failing the test when there is not
// exactly one.
func one(t *testing.T, objs []object, kind string) object {
	t.Helper()
	found := byKind(objs, kind)
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(found), kind)
	}
	return found[0]
}

// TestChartExamples renders each example values file (embedded store,
// Redis, the Gateway's API, TLS) and holds the objects to the Kubernetes and
// prometheus-operator schemas, to the exporter's real command line, and to
// what kube-prometheus-stack selects.
func TestChartExamples(t *testing.T) {
	for _, file := range exampleValues(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			values := readValues(t, file)
			objs := render(t, file)
			for _, p := range schemaErrors(t, objs) {
				t.Error(p)
			}
			for _, o := range objs {
				l := o.Metadata.Labels
				if l["app.kubernetes.io/name"] != "liveswitch-exporter" || l["app.kubernetes.io/instance"] != "t" ||
					l["app.kubernetes.io/managed-by"] != "Helm" || !strings.HasPrefix(l["helm.sh/chart"], "liveswitch-exporter-") ||
					o.Metadata.Namespace == "" {
					t.Errorf("%s %s: namespace %q, labels %v: the recommended labels and a namespace are required",
						o.Kind, o.Metadata.Name, o.Metadata.Namespace, l)
				}
			}
			pod := checkWorkload(t, objs, values)
			checkSecretFiles(t, objs, pod, values)
			checkMonitoring(t, objs, pod, values)
		})
	}
}

// checkWorkload: a StatefulSet of one with a PVC for the embedded store, a
// Deployment of replicaCount with a PodDisruptionBudget for Redis; the pod
// non-root on a read-only root file system; probes on /-/healthy and
// /-/ready. It returns the pod's spec.
func checkWorkload(t *testing.T, objs []object, v chartValues) podSpec {
	t.Helper()
	var w workload
	if v.redis() {
		if len(byKind(objs, "StatefulSet")) > 0 {
			t.Error("Redis mode renders a StatefulSet")
		}
		one(t, objs, "Deployment").decode(t, &w)
		if w.Spec.Replicas != v.ReplicaCount {
			t.Errorf("replicas %d, want %d", w.Spec.Replicas, v.ReplicaCount)
		}
		var pdb struct {
			Spec struct {
				Selector struct{ MatchLabels map[string]string }
			}
		}
		one(t, objs, "PodDisruptionBudget").decode(t, &pdb)
		if !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, w.Spec.Selector.MatchLabels) {
			t.Errorf("the PodDisruptionBudget selects %v, the pods are %v", pdb.Spec.Selector.MatchLabels, w.Spec.Selector.MatchLabels)
		}
	} else {
		if len(byKind(objs, "Deployment"))+len(byKind(objs, "PodDisruptionBudget")) > 0 {
			t.Error("the embedded store renders a Deployment or a PodDisruptionBudget")
		}
		one(t, objs, "StatefulSet").decode(t, &w)
		if w.Spec.Replicas != 1 || len(w.Spec.VolumeClaimTemplates) != 1 || w.Spec.VolumeClaimTemplates[0].Metadata.Name != "data" {
			t.Errorf("the StatefulSet: %d replicas, claims %+v; want 1 and one claim named data", w.Spec.Replicas, w.Spec.VolumeClaimTemplates)
		}
	}
	for k, val := range w.Spec.Selector.MatchLabels {
		if w.Spec.Template.Metadata.Labels[k] != val {
			t.Errorf("the pods' labels %v do not match the selector %v", w.Spec.Template.Metadata.Labels, w.Spec.Selector.MatchLabels)
		}
	}
	pod := w.Spec.Template.Spec
	sc := pod.SecurityContext
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken ||
		sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != imageUser || sc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod: automount %v, securityContext %+v: want no token, non-root %d, seccomp RuntimeDefault",
			pod.AutomountServiceAccountToken, sc, imageUser)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	csc := c.SecurityContext
	if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem || csc.AllowPrivilegeEscalation == nil ||
		*csc.AllowPrivilegeEscalation || csc.RunAsNonRoot == nil || !*csc.RunAsNonRoot || !slices.Equal(csc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("container securityContext %+v: want a read-only root, no privilege escalation, non-root, every capability dropped", csc)
	}
	ports := map[string]bool{}
	for _, p := range c.Ports {
		ports[p.Name] = true
	}
	for probe, want := range map[string]string{"liveness": "/-/healthy", "readiness": "/-/ready"} {
		p := c.LivenessProbe
		if probe == "readiness" {
			p = c.ReadinessProbe
		}
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || !ports[p.HTTPGet.Port] {
			t.Errorf("%s probe %+v: want GET %s on a port of the container %v", probe, p, want, c.Ports)
		}
	}
	mountedData := slices.ContainsFunc(c.VolumeMounts, func(m volumeMount) bool {
		return m.Name == "data" && m.MountPath == "/data" && !m.ReadOnly
	})
	if mountedData == v.redis() {
		t.Errorf("data volume at /data: %v; the store is %s", mountedData, map[bool]string{true: "Redis", false: "embedded"}[v.redis()])
	}
	return pod
}

// checkSecretFiles parses the container's command line and environment with
// the exporter's own flags (on top of the image's environment), and checks
// that every secret reaches it as a read-only file of a Secret, never as an
// environment value (but the Redis URL, which has no -file flag: from its
// Secret by secretKeyRef).
func checkSecretFiles(t *testing.T, objs []object, pod podSpec, v chartValues) {
	t.Helper()
	c := pod.Containers[0]
	env := maps.Clone(readImage(t, "../../Dockerfile").env)
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			if e.Name != envPrefix+"_STORAGE_REDIS_URL" {
				t.Errorf("env %s comes from a Secret: secrets go in as files (*-file flags)", e.Name)
			}
			env[e.Name] = "redis://redis.example:6379/0"
		default:
			env[e.Name] = e.Value
		}
	}
	cli, _, err := parseWithEnv(t, env, c.Args)
	if err != nil {
		t.Fatalf("the exporter refuses the chart's command line %q (env %v): %v", c.Args, env, err)
	}
	s := cli.Serve
	if v.redis() != (s.RedisURL != "") || (!v.redis() && s.StoragePath != "/data") {
		t.Errorf("store: redis %q, path %q; the values ask for %s", s.RedisURL, s.StoragePath, map[bool]string{true: "Redis", false: "the embedded store"}[v.redis()])
	}
	for _, f := range []struct {
		flag, path string
		want       bool
	}{
		{"--webhook.token-file", s.WebhookTokenFile, v.Webhook.Token != "" || v.Webhook.ExistingSecret != ""},
		{"--liveswitch.api-key-file", s.Gateway.KeyFile, v.GatewayAPI.Key != "" || v.GatewayAPI.ExistingSecret != ""},
		{"--liveswitch.api-ca-file", s.Gateway.CAFile, v.GatewayAPI.CA.ConfigMap != "" || v.GatewayAPI.CA.Secret != ""},
		{"--webhook.application-secrets-file", s.Applications.SecretsFile, len(v.Applications.Secrets) > 0 || v.Applications.ExistingSecret != ""},
		{"--web.config.file", s.WebConfigFile, len(v.WebConfig) > 0},
	} {
		if (f.path != "") != f.want {
			t.Errorf("%s=%q; the values give it: %v", f.flag, f.path, f.want)
			continue
		}
		if f.path == "" {
			continue
		}
		kind, name, key := fileSource(t, pod, f.path)
		if kind != "Secret" && !(kind == "ConfigMap" && f.flag == "--liveswitch.api-ca-file") {
			t.Errorf("%s=%s comes from a %s, not a Secret", f.flag, f.path, kind)
		}
		if name == "t-liveswitch-exporter" {
			var own struct{ Data map[string]string }
			one(t, objs, "Secret").decode(t, &own)
			if _, ok := own.Data[key]; !ok {
				t.Errorf("%s=%s: the chart's Secret has no key %s", f.flag, f.path, key)
			}
		}
	}
	// No secret of the values anywhere but in the chart's Secret.
	for _, o := range objs {
		for _, secret := range v.secrets() {
			if o.Kind != "Secret" && bytes.Contains(o.json, []byte(secret)) {
				t.Errorf("%s %s holds a secret of the values in clear", o.Kind, o.Metadata.Name)
			}
			if o.Kind == "Secret" && !v.inSecret(t, o, secret) {
				t.Errorf("the chart's Secret lacks a secret of the values")
			}
		}
	}
}

// fileSource tells which Secret or ConfigMap key a file of the container
// is, through its read-only mount (whole volume, not subPath, so that a
// changed Secret reaches the running exporter).
func fileSource(t *testing.T, pod podSpec, file string) (kind, name, key string) {
	t.Helper()
	c := pod.Containers[0]
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, m.MountPath+"/")
		if !ok {
			continue
		}
		if !m.ReadOnly || m.SubPath != "" {
			t.Errorf("%s: mounted by %s read-only %v, subPath %q: want read-only, no subPath", file, m.Name, m.ReadOnly, m.SubPath)
		}
		for _, vol := range pod.Volumes {
			if vol.Name != m.Name {
				continue
			}
			var items []keyPath
			switch {
			case vol.Secret != nil:
				kind, name, items = "Secret", vol.Secret.SecretName, vol.Secret.Items
			case vol.ConfigMap != nil:
				kind, name, items = "ConfigMap", vol.ConfigMap.Name, vol.ConfigMap.Items
			default:
				t.Fatalf("%s is on volume %s, neither a Secret nor a ConfigMap", file, vol.Name)
			}
			key = rel
			if len(items) > 0 {
				i := slices.IndexFunc(items, func(kp keyPath) bool { return kp.Path == rel })
				if i < 0 {
					t.Fatalf("%s: volume %s has no item at %s", file, vol.Name, rel)
				}
				key = items[i].Key
			}
			return kind, name, key
		}
	}
	t.Fatalf("%s is on no volume of the container", file)
	return "", "", ""
}

// checkMonitoring: the Service, the ServiceMonitor kube-prometheus-stack
// selects (release label, job "liveswitch"), the PrometheusRule and the
// dashboards' ConfigMaps carrying exactly the bundled files, the Ingress of
// the webhook, the NetworkPolicy.
func checkMonitoring(t *testing.T, objs []object, pod podSpec, v chartValues) {
	t.Helper()
	svc := one(t, objs, "Service")
	var service struct {
		Spec struct {
			Selector map[string]string
			Ports    []struct{ Name, TargetPort string }
		}
	}
	svc.decode(t, &service)
	servicePorts := map[string]bool{}
	for _, p := range service.Spec.Ports {
		servicePorts[p.Name] = true
	}
	if svc.Metadata.Labels["jobLabel"] != "liveswitch" || !servicePorts["web"] || servicePorts["webhook"] != v.Webhook.Listener.Enabled {
		t.Errorf("Service: labels %v, ports %v: want jobLabel=liveswitch, web, and webhook when its listener is on", svc.Metadata.Labels, service.Spec.Ports)
	}
	if sms := byKind(objs, "ServiceMonitor"); v.ServiceMonitor.Enabled {
		var sm struct {
			Spec struct {
				JobLabel  string
				Selector  struct{ MatchLabels map[string]string }
				Endpoints []struct {
					Port, Scheme string
					Relabelings  []struct{ Action, Regex string }
				}
			}
		}
		one(t, objs, "ServiceMonitor").decode(t, &sm)
		for k, val := range v.ServiceMonitor.AdditionalLabels {
			if sms[0].Metadata.Labels[k] != val {
				t.Errorf("ServiceMonitor labels %v lack %s=%s (kube-prometheus-stack selects on it)", sms[0].Metadata.Labels, k, val)
			}
		}
		for k, val := range sm.Spec.Selector.MatchLabels {
			if svc.Metadata.Labels[k] != val {
				t.Errorf("the ServiceMonitor selects %v; the Service is %v", sm.Spec.Selector.MatchLabels, svc.Metadata.Labels)
			}
		}
		ep := sm.Spec.Endpoints[0]
		wantScheme := "http"
		if v.WebConfig["tls_server_config"] != nil {
			wantScheme = "https"
		}
		if sm.Spec.JobLabel != "jobLabel" || ep.Port != "web" || ep.Scheme != wantScheme ||
			len(ep.Relabelings) == 0 || ep.Relabelings[0].Action != "labeldrop" || ep.Relabelings[0].Regex != "pod" {
			t.Errorf("ServiceMonitor %+v: want jobLabel from the Service, port web over %s, the pod label dropped", sm.Spec, wantScheme)
		}
	} else if len(sms) > 0 {
		t.Error("a ServiceMonitor without serviceMonitor.enabled")
	}
	if v.PrometheusRule.Enabled {
		checkPrometheusRule(t, one(t, objs, "PrometheusRule"), v)
	}
	if v.GrafanaDashboards.Enabled {
		checkDashboardConfigMaps(t, objs, v)
	}
	if v.Webhook.Ingress.Enabled {
		var ing struct {
			Spec struct {
				Rules []struct {
					HTTP struct {
						Paths []struct {
							Path    string
							Backend struct {
								Service struct {
									Name string
									Port struct{ Name string }
								}
							}
						}
					}
				}
			}
		}
		o := one(t, objs, "Ingress")
		o.decode(t, &ing)
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				if p.Path != "/webhook" || p.Backend.Service.Name != svc.Metadata.Name || !servicePorts[p.Backend.Service.Port.Name] {
					t.Errorf("Ingress path %+v: want /webhook to a port of the Service", p)
				}
			}
		}
	}
	if v.NetworkPolicy.Enabled {
		var np struct {
			Spec struct {
				Ingress []struct {
					Ports []struct{ Port string }
				}
			}
		}
		one(t, objs, "NetworkPolicy").decode(t, &np)
		for _, in := range np.Spec.Ingress {
			for _, p := range in.Ports {
				if !slices.ContainsFunc(pod.Containers[0].Ports, func(cp containerPort) bool { return cp.Name == p.Port }) {
					t.Errorf("NetworkPolicy lets in port %s, which the container does not have", p.Port)
				}
			}
		}
	}
}

// checkPrometheusRule: exactly the bundled recording rules and alerts.
func checkPrometheusRule(t *testing.T, o object, v chartValues) {
	t.Helper()
	for k, val := range v.PrometheusRule.AdditionalLabels {
		if o.Metadata.Labels[k] != val {
			t.Errorf("PrometheusRule labels %v lack %s=%s", o.Metadata.Labels, k, val)
		}
	}
	var want []any
	for _, f := range []string{"prometheus/rules.yml", "prometheus/alerts.yml"} {
		raw, err := dashboards.FS.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var file struct{ Groups []any }
		yamlAsJSON(t, raw, &file)
		want = append(want, file.Groups...)
	}
	var got struct{ Spec struct{ Groups []any } }
	o.decode(t, &got)
	if !reflect.DeepEqual(got.Spec.Groups, want) {
		t.Error("the PrometheusRule's groups are not exactly dashboards/prometheus/rules.yml and alerts.yml")
	}
}

// checkDashboardConfigMaps: one ConfigMap per bundled dashboard, its JSON
// byte for byte, labelled for Grafana's sidecar.
func checkDashboardConfigMaps(t *testing.T, objs []object, v chartValues) {
	t.Helper()
	files, _ := fs.Glob(dashboards.FS, "grafana/*.json")
	seen := 0
	for _, o := range byKind(objs, "ConfigMap") {
		var cm struct{ Data map[string]string }
		o.decode(t, &cm)
		for name, content := range cm.Data {
			want, err := dashboards.FS.ReadFile("grafana/" + name)
			if err != nil {
				t.Errorf("ConfigMap %s holds %s, not a bundled dashboard", o.Metadata.Name, name)
				continue
			}
			if strings.TrimSpace(content) != strings.TrimSpace(string(want)) {
				t.Errorf("ConfigMap %s: %s differs from dashboards/grafana/%s", o.Metadata.Name, name, name)
			}
			if o.Metadata.Labels["grafana_dashboard"] != "1" || (v.GrafanaDashboards.Namespace != "" && o.Metadata.Namespace != v.GrafanaDashboards.Namespace) {
				t.Errorf("ConfigMap %s: labels %v, namespace %s", o.Metadata.Name, o.Metadata.Labels, o.Metadata.Namespace)
			}
			seen++
		}
	}
	if seen != len(files) {
		t.Errorf("%d dashboards in ConfigMaps, %d bundled", seen, len(files))
	}
}

// TestChartPodsStartTheExporter runs the real exporter as each example's pod
// would: its rendered arguments and environment on top of the image's, every
// mounted Secret written where the kubelet would put it (the chart's own
// Secret decoded; an existing Secret given test contents), the Gateway's API
// a simulated one on loopback, Redis a real redis-server. The exporter must
// start and be ready, a webhook without the token be refused and with it be
// taken, and with the Gateway's API the key must open it.
func TestChartPodsStartTheExporter(t *testing.T) {
	for _, file := range exampleValues(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			values := readValues(t, file)
			objs := render(t, file)
			var w workload
			if values.redis() {
				one(t, objs, "Deployment").decode(t, &w)
			} else {
				one(t, objs, "StatefulSet").decode(t, &w)
			}
			pod := w.Spec.Template.Spec
			root := t.TempDir()
			pki := testenv.NewPKI(t)
			external := externalSecretFiles(t, pki)
			var own struct{ Data map[string]string }
			if secrets := byKind(objs, "Secret"); len(secrets) == 1 {
				secrets[0].decode(t, &own)
			}
			rooted := strings.NewReplacer("/etc/liveswitch-exporter/", root+"/etc/liveswitch-exporter/")
			for _, m := range pod.Containers[0].VolumeMounts {
				dir := filepath.Join(root, m.MountPath)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				i := slices.IndexFunc(pod.Volumes, func(v volume) bool { return v.Name == m.Name })
				if i < 0 && m.Name == "data" {
					continue // the StatefulSet's claim: an empty volume
				} else if i < 0 {
					t.Fatalf("volume mount %s has no volume", m.Name)
				}
				for name, content := range mountedFiles(t, pod.Volumes[i], own.Data, external) {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(rooted.Replace(content)), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			env := []string{envPrefix + "_STORAGE_PATH=" + filepath.Join(root, "data")}
			if values.redis() {
				primary := testenv.StartRedis(t)
				if values.Redis.WaitReplicas > 0 { // WAIT needs a replica to answer
					host, port, _ := strings.Cut(primary.Addr, ":")
					testenv.StartRedisWith(t, testenv.RedisOptions{Args: []string{"--replicaof", host, port}})
				}
				env = append(env, envPrefix+"_STORAGE_REDIS_URL=redis://"+primary.Addr+"/0")
			}
			for _, e := range pod.Containers[0].Env {
				if e.ValueFrom == nil {
					env = append(env, e.Name+"="+e.Value)
				}
			}
			var gatewayURL string
			var args []string
			for _, a := range pod.Containers[0].Args {
				switch flag, val, _ := strings.Cut(a, "="); flag {
				case "--web.listen-address", "--webhook.listen-address":
					a = flag + "=127.0.0.1:0"
				case "--storage.path":
					a = flag + "=" + filepath.Join(root, val)
				case "--liveswitch.api-url":
					gatewayURL = simulatedGateway(t, 50, simulate.GatewayConfig{Key: mustDecode(t, own.Data["api-key"])}) + "/admin/api"
					a = flag + "=" + gatewayURL
				case "--liveswitch.api-interval":
					a = flag + "=1s"
				}
				args = append(args, rooted.Replace(a))
			}
			p := startExporterEnv(t, env, args...)
			if len(values.WebConfig) > 0 || values.Webhook.Listener.Enabled {
				// TLS on both listeners: a handshake with the test's CA.
				addrs := p.listeners(t, 2)
				resp, err := pki.Client(true).Get("https://" + addrs[len(addrs)-1] + "/-/ready")
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("the webhook listener over TLS: %v %v", err, resp)
				}
				resp.Body.Close()
				return
			}
			body, err := os.ReadFile("../../collector/event/testdata/mediaserver-registered.json")
			if err != nil {
				t.Fatal(err)
			}
			token := external["webhook-token"]["token"]
			if values.Webhook.Token != "" {
				token = values.Webhook.Token
			}
			switch {
			case len(values.Webhook.AllowedCIDRs) > 0: // the test posts from 127.0.0.1, outside them
				if code := post(t, p.url("/webhook?token="+token), body); code != 403 {
					t.Errorf("a webhook from outside webhook.allowedCIDRs: %d, want 403", code)
				}
			default:
				if code := post(t, p.url("/webhook"), body); code != 401 {
					t.Errorf("a webhook without the token: %d, want 401", code)
				}
				if code := post(t, p.url("/webhook?token="+token), body); code != 204 {
					t.Errorf("a webhook with the token: %d, want 204", code)
				}
			}
			if gatewayURL != "" {
				testenv.WaitFor(t, 30*time.Second, "a poll of the Gateway's API with the chart's key", func() bool {
					_, metrics := get(p.url("/metrics"))
					return strings.Contains(metrics, "\nliveswitch_api_up 1")
				})
			}
		})
	}
}

func mustDecode(t *testing.T, b64 string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// externalSecretFiles are the contents the test gives the Secrets and
// ConfigMaps the examples name but do not make, by volume name.
func externalSecretFiles(t *testing.T, pki *testenv.PKI) map[string]map[string]string {
	t.Helper()
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return map[string]map[string]string{
		"webhook-token":       {"token": "external-webhook-token"},
		"gateway-api-key":     {"api-key": "external-api-key"},
		"gateway-api-ca":      {"ca.crt": read(pki.CAFile)},
		"application-secrets": {"secrets.yml": "app-1: external-app-secret\n"},
		"tls":                 {"tls.crt": read(pki.CertFile), "tls.key": read(pki.KeyFile), "ca.crt": read(pki.CAFile)},
	}
}

// mountedFiles are the files a volume shows in the pod: the items of the
// chart's own Secret, or the test's contents for another Secret or a
// ConfigMap; none for the store's volume.
func mountedFiles(t *testing.T, vol volume, own map[string]string, external map[string]map[string]string) map[string]string {
	t.Helper()
	files := map[string]string{}
	switch {
	case vol.Secret != nil && vol.Secret.SecretName == "t-liveswitch-exporter":
		for _, it := range vol.Secret.Items {
			files[it.Path] = mustDecode(t, own[it.Key])
		}
	case vol.Secret != nil || vol.ConfigMap != nil:
		if external[vol.Name] == nil {
			t.Fatalf("volume %s: the test has no contents for it", vol.Name)
		}
		files = external[vol.Name]
	}
	return files
}
