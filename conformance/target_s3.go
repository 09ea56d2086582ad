package conformance

// The klite-s3 target: klite with its S3 tier on, against a moto S3 server on loopback
// (internal/motoserver; `make moto` installs it). A short flush interval (1 s) and the
// smallest object size (1 MiB) make a scenario's data and metadata reach S3 (sealed,
// uploaded, the metadata snapshot written) within about a second, as the scenario goes on;
// reads stay local (the default local budget). Every klite-s3 process of a run (the plain
// target and its SASL, ACL and TLS variants) shares one moto server and bucket, each under
// its own prefix (one writer per prefix: the lease). Known gaps declared for klite apply to klite-s3 too (results.go).

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/klite/klite/internal/motoserver"
)

// S3TargetName is the S3-backed klite target.
const S3TargetName = "klite-s3"

// isKlite reports whether a target runs this tree's klite (with or without S3).
func isKlite(name string) bool { return name == "klite" || name == S3TargetName }

const s3TargetBucket = "klite-conformance"

// s3Moto is the moto server shared by the run's klite-s3 processes.
var s3Moto struct {
	mu       sync.Mutex
	srv      *motoserver.Server
	refs     int
	prefixes int
}

// s3TargetArgs starts (or joins) the shared moto server and returns the klite flags and
// environment of one klite-s3 process; release drops the process's hold on the server.
func s3TargetArgs(mode string) (args, env []string, release func(), err error) {
	s3Moto.mu.Lock()
	defer s3Moto.mu.Unlock()
	if s3Moto.srv == nil {
		srv, err := motoserver.StartServer()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("klite-s3 target: %w", err)
		}
		if err := srv.MakeBucket(s3TargetBucket); err != nil {
			srv.Stop()
			return nil, nil, nil, fmt.Errorf("klite-s3 target: %w", err)
		}
		s3Moto.srv = srv
	}
	s3Moto.refs++
	s3Moto.prefixes++
	if mode == "" {
		mode = "plaintext"
	}
	prefix := fmt.Sprintf("conformance/%s-%d", mode, s3Moto.prefixes)
	args = []string{"--s3-bucket", s3TargetBucket, "--s3-endpoint", s3Moto.srv.Endpoint, "--s3-region", motoserver.Region,
		"--s3-prefix", prefix, "--s3-flush-interval", "1s", "--s3-target-object-bytes", "1048576"}
	env = []string{"AWS_ACCESS_KEY_ID=" + motoserver.AccessKey, "AWS_SECRET_ACCESS_KEY=" + motoserver.SecretKey,
		"AWS_EC2_METADATA_DISABLED=true"}
	var once sync.Once
	release = func() {
		once.Do(func() {
			s3Moto.mu.Lock()
			defer s3Moto.mu.Unlock()
			if s3Moto.refs--; s3Moto.refs == 0 && s3Moto.srv != nil {
				s3Moto.srv.Stop()
				s3Moto.srv = nil
			}
		})
	}
	return args, env, release, nil
}

// motoVersion is the moto release pinned in internal/motoserver/requirements.txt.
func motoVersion(root string) string {
	data, err := os.ReadFile(filepath.Join(root, "internal", "motoserver", "requirements.txt"))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "moto[server]=="); ok {
			return v
		}
	}
	return "?"
}
