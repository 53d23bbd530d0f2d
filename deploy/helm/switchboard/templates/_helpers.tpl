{{/*
Shared pieces of the Switchboard chart. Each service's template (gateway.yaml, ...) only says
what is particular to it; the Deployment and Service every service has are written once here.
*/}}

{{/* The components, their values key, Python module and ports (as `make run` uses them). */}}
{{- define "switchboard.components" -}}
gateway: {key: gateway, module: gateway, grpcPort: 50051, metricsPort: 9101, servingPorts: [50051, 50061]}
identity: {key: identity, module: identity, grpcPort: 50052, metricsPort: 9102, servingPorts: [50052]}
conversation: {key: conversation, module: conversation, grpcPort: 50053, metricsPort: 9103, servingPorts: [50053]}
llm-router: {key: llmRouter, module: llm_router, grpcPort: 50054, metricsPort: 9104, servingPorts: [50054]}
connectors: {key: connectors, module: connectors, grpcPort: 50055, metricsPort: 9105, servingPorts: [50055]}
envoy: {key: envoy, grpcPort: 8080, metricsPort: 9902, servingPorts: [8080]}
{{- end }}

{{/* The gateway's JSON body check, consulted by Envoy over HTTP before transcoding. */}}
{{- define "switchboard.bodyCheckPort" -}}50061{{- end }}

{{- define "switchboard.component" -}}
{{- $root := index . 0 -}}
{{- toYaml (index (include "switchboard.components" $root | fromYaml) (index . 1)) -}}
{{- end }}

{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/*
The prefix of every object: the release name (or fullnameOverride), short enough that
"<prefix>-connectors-headless" is still a valid DNS label.
*/}}
{{- define "switchboard.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 43 | trimSuffix "-" -}}
{{- end }}

{{/* (list $ "gateway") → "<prefix>-gateway" */}}
{{- define "switchboard.componentName" -}}
{{- printf "%s-%s" (include "switchboard.fullname" (index . 0)) (index . 1) -}}
{{- end }}

{{/* (list $ "gateway-headless") → the Service's fully qualified DNS name. */}}
{{- define "switchboard.serviceHost" -}}
{{- $root := index . 0 -}}
{{- printf "%s.%s.svc.%s" (include "switchboard.componentName" .) $root.Release.Namespace $root.Values.global.clusterDomain -}}
{{- end }}

{{/* (list $ "identity") → "<prefix>-identity:50052", what peers put in IDENTITY_ADDR. */}}
{{- define "switchboard.address" -}}
{{- $component := include "switchboard.component" . | fromYaml -}}
{{- printf "%s:%d" (include "switchboard.componentName" .) (int $component.grpcPort) -}}
{{- end }}

{{- define "switchboard.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: switchboard
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
{{ include "switchboard.selectorLabels" . }}
{{- end }}

{{- define "switchboard.instanceLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "switchboard.selectorLabels" -}}
{{ include "switchboard.instanceLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* (list $ valuesOfComponent) → "repository:tag" */}}
{{- define "switchboard.image" -}}
{{- $root := index . 0 -}}
{{- $image := (index . 1).image | default dict -}}
{{- $repository := $image.repository | default $root.Values.global.image.repository -}}
{{- $tag := $image.tag | default $root.Values.global.image.tag | default $root.Chart.AppVersion -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end }}

{{- define "switchboard.imagePullPolicy" -}}
{{- $root := index . 0 -}}
{{- $image := (index . 1).image | default dict -}}
{{- $image.pullPolicy | default $root.Values.global.image.pullPolicy -}}
{{- end }}

{{- define "switchboard.serviceAccountName" -}}
{{- $values := index . 2 -}}
{{- if $values.serviceAccount.create -}}
{{- $values.serviceAccount.name | default (include "switchboard.componentName" .) -}}
{{- else -}}
{{- $values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end }}

{{/* (list $ "gateway" values) → the Secret the service's envFrom names. */}}
{{- define "switchboard.secretName" -}}
{{- (index . 2).secret.existingSecret | default (include "switchboard.componentName" .) -}}
{{- end }}

{{- define "switchboard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "switchboard.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Pod-level lifecycle settings every component shares (list $ "gateway" values). */}}
{{- define "switchboard.podCommon" -}}
{{- $root := index . 0 -}}
{{- $values := index . 2 -}}
{{- $global := $root.Values.global -}}
{{- if le (int $global.terminationGracePeriodSeconds) (add $global.preStopSleepSeconds $global.shutdownGraceSeconds | int) -}}
{{- fail (printf "global.terminationGracePeriodSeconds (%d) must exceed global.preStopSleepSeconds + global.shutdownGraceSeconds (%d): the kubelet would kill the services mid-drain" (int $global.terminationGracePeriodSeconds) (add $global.preStopSleepSeconds $global.shutdownGraceSeconds | int)) -}}
{{- end -}}
serviceAccountName: {{ include "switchboard.serviceAccountName" . }}
# The services never call the Kubernetes API.
automountServiceAccountToken: false
# No Docker-link variables: a Service named like a setting (GRPC_PORT ...) would shadow it.
enableServiceLinks: false
terminationGracePeriodSeconds: {{ $global.terminationGracePeriodSeconds }}
securityContext:
  {{- include "switchboard.podSecurityContext" $root | nindent 2 }}
{{- with $global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $global.topologySpread }}
{{- if .enabled }}
topologySpreadConstraints:
  - maxSkew: {{ .maxSkew }}
    topologyKey: {{ .topologyKey }}
    whenUnsatisfiable: {{ .whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "switchboard.selectorLabels" (list $root (index $ 1)) | nindent 8 }}
{{- end }}
{{- end }}
{{- end }}

{{/* The preStop pause: Endpoints and Envoy stop sending new calls before SIGTERM arrives. */}}
{{- define "switchboard.lifecycle" -}}
preStop:
  sleep:
    seconds: {{ .Values.global.preStopSleepSeconds }}
{{- end }}

{{- define "switchboard.podAnnotations" -}}
{{- $root := index . 0 -}}
{{- $component := include "switchboard.component" (list $root (index . 1)) | fromYaml -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ $component.metricsPort | int | quote }}
prometheus.io/path: {{ index . 3 | quote }}
{{- with (index . 2).podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
A service's Deployment. Arguments (dict):
  root       $
  component  "gateway", "identity", "conversation", "llm-router" or "connectors"
  env        list of extra EnvVars (peers, ...)
  ports      list of extra ContainerPorts
  volumes, volumeMounts   extra volumes (e.g. the router's config)
  annotations             extra pod annotations (checksums)
*/}}
{{- define "switchboard.serviceDeployment" -}}
{{- $root := .root -}}
{{- $name := .component -}}
{{- $component := include "switchboard.component" (list $root $name) | fromYaml -}}
{{- $values := index $root.Values $component.key -}}
{{- $global := $root.Values.global -}}
{{- $grpcPort := int $component.grpcPort -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "switchboard.componentName" (list $root $name) }}
  labels:
    {{- include "switchboard.labels" (list $root $name) | nindent 4 }}
spec:
  {{- if not $values.autoscaling.enabled }}
  replicas: {{ $values.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # A new pod is ready before an old one goes, even with one replica.
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "switchboard.selectorLabels" (list $root $name) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "switchboard.labels" (list $root $name) | nindent 8 }}
      annotations:
        {{- include "switchboard.podAnnotations" (list $root $name $values "/metrics") | nindent 8 }}
        {{- with .annotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- include "switchboard.podCommon" (list $root $name $values) | nindent 6 }}
      containers:
        - name: {{ $name }}
          image: {{ include "switchboard.image" (list $root $values) | quote }}
          imagePullPolicy: {{ include "switchboard.imagePullPolicy" (list $root $values) }}
          command: ["python", "-m", {{ $component.module | quote }}]
          ports:
            - name: grpc
              containerPort: {{ $grpcPort }}
              protocol: TCP
            - name: metrics
              containerPort: {{ $component.metricsPort | int }}
              protocol: TCP
            {{- with .ports }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          env:
            - name: GRPC_HOST
              value: "0.0.0.0"
            - name: GRPC_PORT
              value: {{ $grpcPort | quote }}
            - name: METRICS_HOST
              value: "0.0.0.0"
            - name: METRICS_PORT
              value: {{ $component.metricsPort | int | quote }}
            - name: LOG_LEVEL
              value: {{ $values.logLevel | default $global.logLevel | quote }}
            - name: SHUTDOWN_GRACE_SECONDS
              value: {{ $global.shutdownGraceSeconds | quote }}
            - name: SERVICE_VERSION
              value: {{ $values.image.tag | default $global.image.tag | default $root.Chart.AppVersion | quote }}
            {{- with $global.otelExporterOtlpEndpoint }}
            - name: OTEL_EXPORTER_OTLP_ENDPOINT
              value: {{ . | quote }}
            {{- end }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- range $key, $value := $values.env }}
            - name: {{ $key }}
              value: {{ $value | toString | quote }}
            {{- end }}
          # DATABASE_URL, REDIS_URL, NATS_URL, client secrets, provider keys, ...
          envFrom:
            - secretRef:
                name: {{ include "switchboard.secretName" (list $root $name $values) }}
          # Native gRPC probes ask grpc.health.v1.Health/Check for the whole server ("").
          startupProbe:
            grpc:
              port: {{ $grpcPort }}
            periodSeconds: 2
            timeoutSeconds: 2
            # Migrations run before the server serves: up to two minutes.
            failureThreshold: 60
          readinessProbe:
            grpc:
              port: {{ $grpcPort }}
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          livenessProbe:
            grpc:
              port: {{ $grpcPort }}
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          lifecycle:
            {{- include "switchboard.lifecycle" $root | nindent 12 }}
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          securityContext:
            {{- include "switchboard.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- with .volumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- with .volumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- end }}

{{/*
A service's ClusterIP Service (dict root, component, ports: extra ServicePorts, headless).
The gRPC port is named `grpc`; headless Services let a client (Envoy) balance every call
over the ready pods instead of pinning an HTTP/2 connection to one.
*/}}
{{- define "switchboard.grpcService" -}}
{{- $root := .root -}}
{{- $name := .component -}}
{{- $component := include "switchboard.component" (list $root $name) | fromYaml -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "switchboard.componentName" (list $root $name) }}{{ if .headless }}-headless{{ end }}
  labels:
    {{- include "switchboard.labels" (list $root $name) | nindent 4 }}
spec:
  type: ClusterIP
  {{- if .headless }}
  clusterIP: None
  {{- end }}
  selector:
    {{- include "switchboard.selectorLabels" (list $root $name) | nindent 4 }}
  ports:
    - name: grpc
      port: {{ $component.grpcPort | int }}
      targetPort: grpc
      protocol: TCP
      appProtocol: kubernetes.io/h2c
    {{- with .ports }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
CORS origins for Envoy (files/envoy.yaml) as JSON matchers; the same globs as
switchboard_devstack.envoy_config.origin_regex: `*` is one host label or port, a trailing
`:*` makes the port optional, `*` alone is any origin.
*/}}
{{- define "switchboard.envoy.corsOriginMatchers" -}}
{{- $matchers := list -}}
{{- range .Values.envoy.corsAllowedOrigins -}}
{{- $regex := ".*" -}}
{{- if ne . "*" -}}
{{- $optionalPort := hasSuffix ":*" . -}}
{{- $body := ternary (trimSuffix ":*" .) . $optionalPort -}}
{{- $parts := list -}}
{{- range splitList "*" $body -}}
{{- $parts = append $parts (regexQuoteMeta .) -}}
{{- end -}}
{{- $regex = join "[A-Za-z0-9-]+" $parts -}}
{{- if $optionalPort -}}
{{- $regex = printf "%s(:[0-9]+)?" $regex -}}
{{- end -}}
{{- end -}}
{{- $matchers = append $matchers (dict "safe_regex" (dict "regex" $regex)) -}}
{{- end -}}
{{- toJson $matchers -}}
{{- end }}
