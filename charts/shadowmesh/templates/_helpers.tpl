{{/*
The chart name: `app.kubernetes.io/name` and the base of resource names.
*/}}
{{- define "shadowmesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name. The release name alone when it already contains the chart name
(`helm install shadowmesh charts/shadowmesh` gives `shadowmesh-model-service`, not `shadowmesh-shadowmesh-…`).
Truncated to 40 characters so that the suffix `-model-service-primary` (22) still fits in 63; a candidate's resources
are `<fullname>-model-service-<candidate>` and the render fails when one is longer than 63.
*/}}
{{- define "shadowmesh.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version for the `helm.sh/chart` label.
*/}}
{{- define "shadowmesh.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object. Call with (dict "ctx" $ "component" "model-service") or, for objects that belong to no
single component, (dict "ctx" $).
*/}}
{{- define "shadowmesh.labels" -}}
{{- $ctx := .ctx -}}
helm.sh/chart: {{ include "shadowmesh.chart" $ctx }}
{{ include "shadowmesh.selectorLabels" . }}
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
app.kubernetes.io/part-of: shadowmesh
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels: name and instance, plus the component and (for model-service) the role and the candidate when given. Selectors
never include `version`: a Deployment's selector is immutable, and promoting a model changes its version.
*/}}
{{- define "shadowmesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shadowmesh.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- with .role }}
shadowmesh.io/role: {{ . }}
{{- end }}
{{- with .candidate }}
shadowmesh.io/candidate: {{ . }}
{{- end }}
{{- end }}

{{/*
Pod labels: the selector labels, plus what Istio and Kiali read: `app` (the Service's name) and `version` (the
DestinationRule subsets select on it), and the canonical service labels (otherwise Istio would take
`app.kubernetes.io/name`, which is the same for every component, as the service name in telemetry).
Call with (dict "ctx" $ "component" "model-service" "role" "primary" "version" "v1").
*/}}
{{- define "shadowmesh.podLabels" -}}
{{- $app := printf "%s-%s" (include "shadowmesh.fullname" .ctx) .component -}}
{{ include "shadowmesh.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: shadowmesh
app: {{ $app }}
version: {{ .version | quote }}
service.istio.io/canonical-name: {{ $app }}
service.istio.io/canonical-revision: {{ .version | quote }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The image reference of a workload: repository:tag, the tag defaulting to the chart's appVersion.
Call with (dict "ctx" $ "image" .Values.appService.image).
*/}}
{{- define "shadowmesh.image" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}

{{/*
The `version` label of app-service and metrics-service pods: their image tag.
*/}}
{{- define "shadowmesh.imageVersion" -}}
{{- default .ctx.Chart.AppVersion .image.tag | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource names, one place for each. */}}
{{- define "shadowmesh.modelService.name" -}}
{{- printf "%s-model-service" (include "shadowmesh.fullname" .) }}
{{- end }}
{{- define "shadowmesh.appService.name" -}}
{{- printf "%s-app-service" (include "shadowmesh.fullname" .) }}
{{- end }}
{{- define "shadowmesh.metricsService.name" -}}
{{- printf "%s-metrics-service" (include "shadowmesh.fullname" .) }}
{{- end }}
{{- define "shadowmesh.test.name" -}}
{{- printf "%s-test" (include "shadowmesh.fullname" .) }}
{{- end }}
{{- define "shadowmesh.feedbackSecret.name" -}}
{{- default (printf "%s-feedback" (include "shadowmesh.fullname" .)) .Values.feedback.existingSecret }}
{{- end }}

{{/*
The candidates, normalised: a JSON list (read it with `include "shadowmesh.candidates" . | fromJsonArray`) of
{name, model, version, replicas, mirrorPercent, resources, podAnnotations, nodeSelector, tolerations, affinity,
topologySpreadConstraints, priorityClassName, serviceAccountAnnotations}, every optional field filled from
`mirrorPercentage` and `modelService.shadow`. The former single-shadow keys still work: `modelService.shadow.enabled:
false` means no candidate; `modelService.shadow.version`, `.modelDir` (the name becomes the directory's base name) and
`.replicaCount` override the first candidate's. What the schema cannot refuse (duplicate names or versions, …) is
refused by `shadowmesh.checkCandidates`.
*/}}
{{- define "shadowmesh.candidates" -}}
{{- $v := .Values }}
{{- $shared := $v.modelService.shadow }}
{{- $list := list }}
{{- if not (eq (toString $shared.enabled) "false") }}
{{- range $i, $c := $v.candidates }}
{{- $c = deepCopy $c }}
{{- if eq $i 0 }}
{{- with $shared.modelDir }}{{- $_ := set $c "model" . }}{{- $_ := set $c "name" (base .) }}{{- end }}
{{- with $shared.version }}{{- $_ := set $c "version" . }}{{- end }}
{{- with $shared.replicaCount }}{{- $_ := set $c "replicas" . }}{{- end }}
{{- end }}
{{- $out := dict "name" (toString $c.name) "model" $c.model "version" (toString $c.version) }}
{{- $_ := set $out "replicas" (default 1 $c.replicas) }}
{{- $_ := set $out "mirrorPercent" (ternary $v.mirrorPercentage $c.mirrorPercent (kindIs "invalid" $c.mirrorPercent)) }}
{{- range $key := list "resources" "podAnnotations" "nodeSelector" "tolerations" "affinity" "topologySpreadConstraints" "priorityClassName" "serviceAccountAnnotations" }}
{{- $_ := set $out $key (ternary (index $shared $key) (index $c $key) (not (hasKey $c $key))) }}
{{- end }}
{{- $list = append $list $out }}
{{- end }}
{{- end }}
{{- $list | toJson }}
{{- end }}

{{/*
The model-service workloads, in order: the primary, then one per candidate. A JSON list (`fromJsonArray`) of
{name (Deployment, ServiceAccount and role-only Service), role (`primary` | `shadow`), candidate (empty for the
primary), version, modelDir, replicaCount, autoscaling, values (the pod settings: resources, scheduling,
annotations)}.
*/}}
{{- define "shadowmesh.modelService.workloads" -}}
{{- $ms := include "shadowmesh.modelService.name" . }}
{{- $p := .Values.modelService.primary }}
{{- $list := list (dict "name" (printf "%s-primary" $ms) "role" "primary" "candidate" "" "version" (toString $p.version) "modelDir" $p.modelDir "replicaCount" $p.replicaCount "autoscaling" $p.autoscaling "values" $p) }}
{{- range include "shadowmesh.candidates" . | fromJsonArray }}
{{- $list = append $list (dict "name" (printf "%s-%s" $ms .name) "role" "shadow" "candidate" .name "version" .version "modelDir" .model "replicaCount" .replicas "autoscaling" (dict "enabled" false) "values" .) }}
{{- end }}
{{- $list | toJson }}
{{- end }}

{{/*
Fails the render, saying why, when the candidates cannot be told apart or do not fit: a name listed twice, a version
used twice or equal to the primary's (the subsets select by version), a resource name over 63 characters, or several
candidates without Istio (app-service mirrors to one address). Called once, by model-service.yaml.
*/}}
{{- define "shadowmesh.checkCandidates" -}}
{{- $ms := include "shadowmesh.modelService.name" . }}
{{- $names := dict }}
{{- $versions := dict (toString .Values.modelService.primary.version) "the primary" }}
{{- $candidates := include "shadowmesh.candidates" . | fromJsonArray }}
{{- range $candidates }}
{{- if hasKey $names .name }}
{{- fail (printf "candidates: the name %q is listed twice; each candidate needs its own name (its model's name)" .name) }}
{{- end }}
{{- $_ := set $names .name true }}
{{- if hasKey $versions .version }}
{{- fail (printf "candidates: %s has version %q, like %s; the DestinationRule subsets select pods by version, so every version must differ" .name .version (get $versions .version)) }}
{{- end }}
{{- $_ := set $versions .version (printf "candidate %s" .name) }}
{{- $resource := printf "%s-%s" $ms .name }}
{{- if gt (len $resource) 63 }}
{{- fail (printf "candidates: %s makes the resource name %q, longer than 63 characters; shorten the candidate's name, the release name or fullnameOverride" .name $resource) }}
{{- end }}
{{- end }}
{{- if and (not .Values.istio.enabled) (gt (len $candidates) 1) }}
{{- fail (printf "candidates: %d candidates with istio.enabled=false, but app-service mirrors to one candidate only (APP_SERVICE_SHADOW_ADDRESS); enable Istio or list one candidate" (len $candidates)) }}
{{- end }}
{{- end }}

{{/*
The Istio identity (SPIFFE principal without the scheme) of a ServiceAccount in the release namespace.
Call with (dict "ctx" $ "sa" "name").
*/}}
{{- define "shadowmesh.principal" -}}
{{- printf "%s/ns/%s/sa/%s" .ctx.Values.istio.trustDomain .ctx.Release.Namespace .sa }}
{{- end }}

{{/*
The mirror share metrics-service expects of a candidate it has no entry for (METRICS_SERVICE_EXPECTED_MIRROR_PERCENT):
the one candidate's share, else 0 (with several, each has its own entry in METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS).
*/}}
{{- define "shadowmesh.expectedMirrorPercent" -}}
{{- $candidates := include "shadowmesh.candidates" . | fromJsonArray }}
{{- if eq (len $candidates) 1 }}{{ (first $candidates).mirrorPercent }}{{ else }}0{{ end }}
{{- end }}

{{/*
Every candidate's expected mirror share, `name=percent,…` (METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS).
*/}}
{{- define "shadowmesh.expectedMirrorPercents" -}}
{{- $entries := list }}
{{- range include "shadowmesh.candidates" . | fromJsonArray }}
{{- $entries = append $entries (printf "%s=%v" .name .mirrorPercent) }}
{{- end }}
{{- join "," $entries }}
{{- end }}

{{/*
Pod-level securityContext (the same for every pod).
*/}}
{{- define "shadowmesh.podSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
{{- with .Values.securityContext.fsGroup }}
fsGroup: {{ . }}
fsGroupChangePolicy: OnRootMismatch
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Container-level securityContext (the same for every container): nothing but the mounted volumes is writable.
*/}}
{{- define "shadowmesh.containerSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Pod annotations shared by every workload: Prometheus scraping (Istio's injector rewrites these to its merged
metrics endpoint on 15020, which Prometheus can scrape without mesh certificates) and explicit probe rewriting
(the kubelet has no mesh certificate; with STRICT mTLS its HTTP and gRPC probes must go through the istio-agent).
Call with (dict "ctx" $ "port" 9101 "extra" .podAnnotations).
*/}}
{{- define "shadowmesh.podAnnotations" -}}
{{- if .ctx.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- if .ctx.Values.istio.enabled }}
sidecar.istio.io/rewriteAppHTTPProbers: "true"
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Scheduling fields of a workload (nodeSelector, tolerations, affinity, topologySpreadConstraints, priorityClassName).
Call with the workload's values.
*/}}
{{- define "shadowmesh.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/*
Fails the render when the pod would be killed before its graceful shutdown can finish.
Call with (dict "name" "app-service" "values" .Values.appService).
*/}}
{{- define "shadowmesh.checkGrace" -}}
{{- $budgetMs := add .values.shutdown.delayMs .values.shutdown.timeoutMs }}
{{- if le (mul .values.terminationGracePeriodSeconds 1000 | int64) ($budgetMs | int64) }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%v s) must exceed shutdown.delayMs + shutdown.timeoutMs (%v ms), or Kubernetes kills the pod mid-shutdown" .name .values.terminationGracePeriodSeconds $budgetMs) }}
{{- end }}
{{- end }}

{{/*
The most pods a workload can run: the HPA's maximum when autoscaling, else replicaCount. A PDB is rendered when it
is above 1. Call with a workload's values that have replicaCount and (optionally) autoscaling.
*/}}
{{- define "shadowmesh.maxReplicas" -}}
{{- if and .autoscaling .autoscaling.enabled }}{{ .autoscaling.maxReplicas }}{{ else }}{{ .replicaCount }}{{ end }}
{{- end }}

{{/*
An Istio HTTPRetry block from values {attempts, perTryTimeout, retryOn}; attempts 0 disables retries (and Istio's
default retry policy with them).
*/}}
{{- define "shadowmesh.istioRetries" -}}
retries:
  attempts: {{ .attempts }}
  {{- if gt (int .attempts) 0 }}
  perTryTimeout: {{ .perTryTimeout }}
  retryOn: {{ .retryOn }}
  {{- end }}
{{- end }}

{{/*
An AuthorizationPolicy rule letting istio.prometheusPrincipals GET /metrics on a metrics port; empty without them.
Call with (dict "ctx" $ "port" 9101).
*/}}
{{- define "shadowmesh.prometheusRule" -}}
{{- with .ctx.Values.istio.prometheusPrincipals }}
# A Prometheus with mesh certificates: /metrics only.
- from:
    - source:
        principals:
          {{- toYaml . | nindent 10 }}
  to:
    - operation:
        ports:
          - {{ $.port | quote }}
        methods:
          - GET
        paths:
          - /metrics
{{- end }}
{{- end }}
