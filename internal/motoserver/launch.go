package motoserver

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Launch starts moto_server on a free loopback port outside a test (the chaos CLI); the
// caller stops it.
func Launch() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	return start(bin)
}

// MakeBucket creates a bucket through moto's plain REST API (CreateBucket outside a test).
func (s *Server) MakeBucket(bucket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.Endpoint+"/"+bucket, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("create bucket %s: %s", bucket, resp.Status)
	}
	return nil
}
