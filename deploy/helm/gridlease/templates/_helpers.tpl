{{/* The chart's name (nameOverride-aware), trimmed to 63 characters. */}}
{{- define "gridlease.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-chart, or fullnameOverride; 63 characters at most. */}}
{{- define "gridlease.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, as used by the helm.sh/chart label. */}}
{{- define "gridlease.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "gridlease.labels" -}}
helm.sh/chart: {{ include "gridlease.chart" . }}
{{ include "gridlease.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gridlease
{{- end }}

{{/* Selector labels: name and instance only. */}}
{{- define "gridlease.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gridlease.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
One component's names and labels: call with (dict "root" $ "component" "api"), and "suffix"
("-data", "-test", "-metrics") for the component's other objects. The full name is cut so that
the component and suffix always fit whole (names stay distinct, however long the release name):
63 characters, and 52 for the seeds and the chain node, whose StatefulSet name goes into the 63-character
controller-revision-hash label with an 11-character hash (the headless Service, pods and every
other seed name use the same cut, so they keep matching).
*/}}
{{- define "gridlease.componentName" -}}
{{- $tail := printf "-%s%s" .component (.suffix | default "") }}
{{- $max := ternary 52 63 (has .component (list "seed" "chain")) }}
{{- $base := include "gridlease.fullname" .root | trunc (int (sub $max (len $tail))) | trimSuffix "-" }}
{{- printf "%s%s" $base $tail }}
{{- end }}

{{/* Any other object named after the release: the full name cut so that `suffix` fits whole. */}}
{{- define "gridlease.suffixedName" -}}
{{- $base := include "gridlease.fullname" .root | trunc (int (sub 63 (len .suffix))) | trimSuffix "-" }}
{{- printf "%s%s" $base .suffix }}
{{- end }}

{{- define "gridlease.componentLabels" -}}
{{ include "gridlease.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "gridlease.componentSelectorLabels" -}}
{{ include "gridlease.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* A component's image: repository:tag (tag defaults to the chart's appVersion). */}}
{{- define "gridlease.image" -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}

{{/* Seeds' headless Service, and the gRPC endpoint of every seed pod. */}}
{{- define "gridlease.seed.headless" -}}
{{- include "gridlease.componentName" (dict "root" . "component" "seed") }}
{{- end }}

{{- define "gridlease.seed.endpoints" -}}
{{- $root := . }}
{{- $name := include "gridlease.componentName" (dict "root" . "component" "seed") }}
{{- $eps := list }}
{{- if .Values.seed.enabled }}
{{- range $i := until (int .Values.seed.replicas) }}
{{- $eps = append $eps (printf "%s-%d.%s.%s.svc:%d" $name $i $name $root.Release.Namespace (int $root.Values.seed.port)) }}
{{- end }}
{{- end }}
{{- $eps = concat $eps .Values.seed.externalEndpoints }}
{{- join "," $eps }}
{{- end }}

{{/* The chain RPC URL every component uses: chain.url, else this release's chain node. */}}
{{- define "gridlease.chainUrl" -}}
{{- if .Values.chain.url }}
{{- .Values.chain.url }}
{{- else if .Values.chainNode.enabled }}
{{- $name := include "gridlease.componentName" (dict "root" . "component" "chain") }}
{{- printf "ws://%s-0.%s.%s.svc:%d" $name $name .Release.Namespace (int .Values.chainNode.rpcPort) }}
{{- else }}
{{- fail "chain.url is required: the chain's RPC websocket (ws:// or wss://), or enable chainNode" }}
{{- end }}
{{- end }}

{{/* The chain spec the chain node runs: `dev`, `local`, or the JSON of chainSpecConfigMap. */}}
{{- define "gridlease.chainNode.spec" -}}
{{- if .Values.chainNode.chainSpecConfigMap }}/chain-spec/chain-spec.json{{ else }}{{ .Values.chainNode.chain }}{{ end }}
{{- end }}

{{/* The container security context every Gridlease container runs with. */}}
{{- define "gridlease.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The job label Prometheus gives a component's targets (alerts and dashboards use it). */}}
{{- define "gridlease.metricsJobLabel" -}}
gridlease/metrics-job
{{- end }}
