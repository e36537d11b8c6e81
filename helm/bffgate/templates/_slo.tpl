{{/*
sum by (<by>) (rate(<metric>{<sel>[, <match>]}[<w>])): one term of the SLI rules in
prometheusrule.yaml. Arguments: a dict with sel, by, metric, w and optional match.
*/}}
{{- define "bffgate.rate" -}}
sum by ({{ .by }}) (rate({{ .metric }}{ {{- .sel }}{{ with .match }}, {{ . }}{{ end -}} }[{{ .w }}]))
{{- end }}
