package motoserver

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func get(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// The server answers S3 on loopback, keeps a bucket across Pause/Resume, does not answer
// while paused, and is gone after Stop.
func TestStartPauseResumeStop(t *testing.T) {
	s := Start(t)
	s.CreateBucket(t, "bucket")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code, err := get(ctx, s.Endpoint+"/bucket"); err != nil || code != http.StatusOK {
		t.Fatalf("GET bucket: %d, %v", code, err)
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := get(short, s.Endpoint+"/bucket")
	cancelShort()
	if err == nil {
		t.Fatal("a paused server answered")
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if code, err := get(ctx, s.Endpoint+"/bucket"); err != nil || code != http.StatusOK {
		t.Fatalf("GET bucket after Resume: %d, %v", code, err)
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop of a paused server: %v", err)
	}
	if _, err := get(ctx, s.Endpoint+"/bucket"); err == nil {
		t.Fatal("a stopped server answered")
	}
}
