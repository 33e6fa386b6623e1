package app

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// ProbeMongo pings uri the way the store connects (3 pings under timeout)
// and writes the classified result to w as one JSON document
// (mongo.ProbeReport). It backs `mozaiks healthcheck --mongo`, which the
// doctor runs inside the runtime container, where compose names resolve.
func ProbeMongo(ctx context.Context, uri string, timeout time.Duration, w io.Writer) error {
	if uri == "" {
		return uerr.New(uerr.ExitUsage, "MONGO_URI is not set here: the runtime uses the embedded store", "")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	res, err := mongo.Probe(ctx, uri, mongo.ProbeOptions{Pings: 3, Timeout: timeout, AppName: "mozaiks-healthcheck"})
	rep := mongo.Report(res, err)
	if werr := json.NewEncoder(w).Encode(rep); werr != nil {
		return werr
	}
	if !rep.OK {
		return uerr.Wrap(err, uerr.ExitFailed, "MongoDB at "+rep.URI+": "+rep.Message, rep.Hint)
	}
	return nil
}
