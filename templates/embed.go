// Package templates holds the files `mozaiks init` renders (compose files, .env,
// reverse-proxy configs, Kubernetes manifests), embedded so the binary carries them.
// They are text/template sources executed with missingkey=error.
package templates

import "embed"

// FS holds every template, by path relative to this directory.
//
//go:embed env.tmpl compose proxy k8s cloudrun azure
var FS embed.FS
