{{/* Name of the chart. */}}
{{- define "floe-guard.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Base name of every object: the release name when it contains the chart name. */}}
{{- define "floe-guard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Common labels. */}}
{{- define "floe-guard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "floe-guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels; call with (dict "ctx" $ "component" "webhook"). */}}
{{- define "floe-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "floe-guard.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The container image. */}}
{{- define "floe-guard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Namespaces whose pods are hardened: floe-jobs and one per domain. */}}
{{- define "floe-guard.jobNamespaces" -}}
{{- $out := list "floe-jobs" -}}
{{- range .Values.domains -}}
{{- $out = append $out (printf "floe-%s-domain" .) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Namespaces never sent to floe-guard. */}}
{{- define "floe-guard.excludedNamespaces" -}}
{{- toJson (list "kube-system" .Release.Namespace) -}}
{{- end -}}

{{/* The restricted pod securityContext shared by every pod. */}}
{{- define "floe-guard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The restricted container securityContext shared by every container. */}}
{{- define "floe-guard.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Pod scheduling settings shared by every pod. */}}
{{- define "floe-guard.scheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The floe manifest.yaml rendered from values. */}}
{{- define "floe-guard.manifest" -}}
domains: {{ toJson .Values.domains }}
security:
  {{- if .Values.security }}
  {{- toYaml .Values.security | nindent 2 }}
  {{- else }} {}
  {{- end }}
{{- end -}}
