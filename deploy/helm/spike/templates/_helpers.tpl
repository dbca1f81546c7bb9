{{/*
Names and labels shared by every template.
*/}}

{{- define "spike.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped base name; component names append to it, so it leaves room for "-keeper-NN". */}}
{{- define "spike.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if contains (include "spike.name" .) .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "spike.name" .) | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "spike.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "spike.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: spike
{{- end }}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "nexus"). */}}
{{- define "spike.selectorLabels" -}}
app.kubernetes.io/name: {{ include "spike.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "spike.componentLabels" -}}
{{ include "spike.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "spike.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The Keepers' per-pod Service names, in shard order. */}}
{{- define "spike.keeperService" -}}
{{ include "spike.fullname" .ctx }}-keeper-{{ .index }}
{{- end }}

{{/* SPIKE_NEXUS_KEEPER_PEERS: Keeper i (from 0) holds shard i+1. */}}
{{- define "spike.keeperPeers" -}}
{{- $peers := list }}
{{- range $i := until (int .Values.shamir.shares) }}
{{- $peers = append $peers (printf "https://%s.%s.svc:%d" (include "spike.keeperService" (dict "ctx" $ "index" $i)) $.Release.Namespace (int $.Values.keeper.port)) }}
{{- end }}
{{- join "," $peers }}
{{- end }}

{{/* The Service Bootstrap and the operator CLI use: it includes Nexus pods that are not ready yet. */}}
{{- define "spike.nexusAdminUrl" -}}
https://{{ include "spike.fullname" . }}-nexus-admin.{{ .Release.Namespace }}.svc:{{ .Values.nexus.port }}
{{- end }}

{{- define "spike.workloadApiSocket" -}}
unix://{{ .Values.spiffe.mountPath }}/{{ .Values.spiffe.socketName }}
{{- end }}

{{/* Environment every role shares: identity and trust domains. */}}
{{- define "spike.commonEnv" -}}
- name: SPIFFE_ENDPOINT_SOCKET
  value: {{ include "spike.workloadApiSocket" . | quote }}
{{- range $var := list "NEXUS" "KEEPER" "PILOT" "BOOTSTRAP" "LITE_WORKLOAD" }}
- name: SPIKE_TRUST_ROOT_{{ $var }}
  value: {{ $.Values.trustDomain | quote }}
{{- end }}
- name: SPIKE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end }}

{{/*
Memory settings of the server roles (lib/config/permissions.ts, SERVER_MEMORY_ENV;
docs/OPERATIONS.md, "Memory"): glibc maps blocks of 16 KiB and more apart and
gives them back when freed. The image's binary is compiled with the matching
V8 flags (--max-semi-space-size=2 and the memory reducer's 1 s delays).
*/}}
{{- define "spike.serverMemoryEnv" -}}
- name: MALLOC_MMAP_THRESHOLD_
  value: "16384"
{{- end }}

{{/* Shard layout Nexus and Bootstrap must agree on. */}}
{{- define "spike.shamirEnv" -}}
- name: SPIKE_NEXUS_KEEPER_PEERS
  value: {{ include "spike.keeperPeers" . | quote }}
- name: SPIKE_NEXUS_SHAMIR_SHARES
  value: {{ .Values.shamir.shares | quote }}
- name: SPIKE_NEXUS_SHAMIR_THRESHOLD
  value: {{ .Values.shamir.threshold | quote }}
{{- end }}

{{/* The SPIFFE Workload API socket, from the SPIFFE CSI driver (the SPIRE agent's socket directory). */}}
{{- define "spike.spiffeVolume" -}}
- name: spiffe-workload-api
  csi:
    driver: {{ .Values.spiffe.csiDriver | quote }}
    readOnly: true
{{- end }}

{{- define "spike.spiffeMount" -}}
- name: spiffe-workload-api
  mountPath: {{ .Values.spiffe.mountPath | quote }}
  readOnly: true
{{- end }}

{{/* Fails the render on settings that cannot work together. */}}
{{- define "spike.validate" -}}
{{- if gt (int .Values.shamir.threshold) (int .Values.shamir.shares) }}
{{- fail (printf "shamir.threshold (%d) is more than shamir.shares (%d)" (int .Values.shamir.threshold) (int .Values.shamir.shares)) }}
{{- end }}
{{- if and (eq .Values.nexus.backend "postgres") (not .Values.nexus.postgres.url) }}
{{- fail "nexus.postgres.url is required when nexus.backend is postgres" }}
{{- end }}
{{- end }}

{{/* SPIFFE ID path of a role (nexus, keeper, bootstrap, pilot-<role>), as lib/spiffe/roles.ts expects. */}}
{{- define "spike.rolePath" -}}
{{- if hasPrefix "pilot-" . }}/spike/pilot/role/{{ trimPrefix "pilot-" . }}{{ else }}/spike/{{ . }}{{ end }}
{{- end }}
