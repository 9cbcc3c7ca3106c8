{{/* Helpers of certs-selfsigned.yaml. */}}

{{/* ServiceAccount + RBAC of `certs install`; (dict "ctx" $ "name" N ["annotations" A]). */}}
{{- define "floe-guard.certsRbac" -}}
{{- $ctx := .ctx }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .name }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "floe-guard.labels" $ctx | nindent 4 }}
    app.kubernetes.io/component: certs
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ .name }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "floe-guard.labels" $ctx | nindent 4 }}
    app.kubernetes.io/component: certs
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
rules:
  # Read the serving Secret and the CA Secret to decide on renewal and
  # rotation, and replace them when renewing; no other Secret.
  - apiGroups: [""]
    resources: [secrets]
    resourceNames: [{{ $ctx.Values.certificates.secretName | quote }}, {{ $ctx.Values.certificates.selfSigned.caSecretName | quote }}]
    verbs: [get, update]
  # Create them on first install (RBAC cannot restrict `create` by name).
  - apiGroups: [""]
    resources: [secrets]
    verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ .name }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "floe-guard.labels" $ctx | nindent 4 }}
    app.kubernetes.io/component: certs
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ .name }}
subjects:
  - kind: ServiceAccount
    name: {{ .name }}
    namespace: {{ $ctx.Release.Namespace }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ .name }}
  labels:
    {{- include "floe-guard.labels" $ctx | nindent 4 }}
    app.kubernetes.io/component: certs
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
rules:
  # Patch caBundle of this release's two webhook configurations, and no other.
  - apiGroups: [admissionregistration.k8s.io]
    resources: [mutatingwebhookconfigurations, validatingwebhookconfigurations]
    resourceNames: [{{ include "floe-guard.fullname" $ctx | quote }}]
    verbs: [get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ .name }}
  labels:
    {{- include "floe-guard.labels" $ctx | nindent 4 }}
    app.kubernetes.io/component: certs
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ .name }}
subjects:
  - kind: ServiceAccount
    name: {{ .name }}
    namespace: {{ $ctx.Release.Namespace }}
{{- end -}}

{{/* Pod template running `certs install`; (dict "ctx" $ "serviceAccount" SA). */}}
{{- define "floe-guard.certsPod" -}}
{{- $ctx := .ctx }}
metadata:
  labels:
    {{- include "floe-guard.selectorLabels" (dict "ctx" $ctx "component" "certs") | nindent 4 }}
spec:
  serviceAccountName: {{ .serviceAccount }}
  restartPolicy: OnFailure
  enableServiceLinks: false
  securityContext:
    {{- include "floe-guard.podSecurityContext" $ctx | nindent 4 }}
  {{- include "floe-guard.scheduling" $ctx | nindent 2 }}
  containers:
    - name: certs
      image: {{ include "floe-guard.image" $ctx }}
      imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
      args:
        - certs
        - install
        - --service={{ include "floe-guard.fullname" $ctx }}
        - --namespace={{ $ctx.Release.Namespace }}
        - --secret={{ $ctx.Values.certificates.secretName }}
        - --webhook={{ include "floe-guard.fullname" $ctx }}
        - --days={{ $ctx.Values.certificates.selfSigned.days }}
        - --ca-secret={{ $ctx.Values.certificates.selfSigned.caSecretName }}
        - --ca-days={{ $ctx.Values.certificates.selfSigned.caDays }}
        - --ca-overlap={{ $ctx.Values.certificates.selfSigned.caOverlap }}
      resources:
        {{- toYaml $ctx.Values.jobResources | nindent 8 }}
      securityContext:
        {{- include "floe-guard.containerSecurityContext" $ctx | nindent 8 }}
{{- end -}}
