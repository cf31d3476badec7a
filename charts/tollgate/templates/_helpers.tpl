{{- define "tollgate.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tollgate.labels" -}}
app.kubernetes.io/name: tollgate-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tollgate.selectorLabels" -}}
app.kubernetes.io/name: tollgate-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tollgate.operatorImage" -}}
{{- $img := .Values.operator.image -}}
{{- if $img.digest -}}
{{ $img.repository }}@{{ $img.digest }}
{{- else -}}
{{ $img.repository }}:{{ default .Chart.AppVersion $img.tag }}
{{- end -}}
{{- end -}}

{{- define "tollgate.runtimeImage" -}}
{{ .Values.runtimeImage.repository }}:{{ default .Chart.AppVersion .Values.runtimeImage.tag }}
{{- end -}}

{{/*
Names of the chart's imagePullSecrets, comma separated: the operator gives them to the pods of
TollgateRuntimes that name none.
*/}}
{{- define "tollgate.pullSecretNames" -}}
{{- $names := list -}}
{{- range .Values.imagePullSecrets -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}
