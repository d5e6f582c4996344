{{/* Chart name, truncated to the 63-character DNS label limit. */}}
{{- define "esenas.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the release name, plus the chart name unless the release name already holds it. */}}
{{- define "esenas.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object of the chart. */}}
{{- define "esenas.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "esenas.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: esenas
{{- end -}}

{{/* Labels that select the operator pod; never change them in an upgrade. */}}
{{- define "esenas.selectorLabels" -}}
app.kubernetes.io/name: {{ include "esenas.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* The operator's ServiceAccount name. */}}
{{- define "esenas.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "esenas.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image references; tags default to the chart's appVersion so chart and images move together. */}}
{{- define "esenas.operatorImage" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- define "esenas.workerImage" -}}
{{- default (printf "ghcr.io/esenas-fleet/worker:%s" .Chart.AppVersion) .Values.jobImages.worker -}}
{{- end -}}
{{- define "esenas.aggregatorImage" -}}
{{- default (printf "ghcr.io/esenas-fleet/aggregator:%s" .Chart.AppVersion) .Values.jobImages.aggregator -}}
{{- end -}}

{{/* Namespaces the operator watches when not cluster-wide; fails early on an empty list. */}}
{{- define "esenas.watchNamespaces" -}}
{{- if and (not .Values.watch.clusterWide) (empty .Values.watch.namespaces) -}}
{{- fail "watch.namespaces: must list at least one namespace when watch.clusterWide is false" -}}
{{- end -}}
{{- toJson .Values.watch.namespaces -}}
{{- end -}}

{{/* A repository file at this chart's release tag (v<appVersion>), never at main: the CRD and the
examples a user applies must be those of the operator that is installed. Args: (dict "root" . "path" P). */}}
{{- define "esenas.repoFileUrl" -}}
{{- printf "%s/v%s/%s" (replace "https://github.com/" "https://raw.githubusercontent.com/" .root.Chart.Home) .root.Chart.AppVersion .path -}}
{{- end -}}
