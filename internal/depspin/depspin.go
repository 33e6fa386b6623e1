// Package depspin pins the project's chosen dependencies in go.mod while the
// packages that use them are being written. Remove once every import is real.
package depspin

import (
	_ "github.com/FerretDB/FerretDB/ferretdb"
	_ "github.com/charmbracelet/huh"
	_ "github.com/compose-spec/compose-go/v2/cli"
	_ "github.com/compose-spec/compose-go/v2/loader"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/gorilla/websocket"
	_ "github.com/moby/moby/client"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/rs/cors"
	_ "github.com/sashabaranov/go-openai"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "go.mongodb.org/mongo-driver/v2/mongo"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)
