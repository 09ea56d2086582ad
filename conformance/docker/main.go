// Command docker-mode runs the conformance matrix against klite in a Docker container
// (docker/klite.Dockerfile), for users who have a Docker engine. The drivers still run natively.
// Where no engine answers it says so and exits 0 without running anything: the native mode
// (`make conformance`) is the default and what CI runs.
//
//	make conformance-docker [SCENARIO=...] [CLIENT=...]
//
// It lives in a module of its own so the Docker client's dependencies stay out of klite's.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
)

func main() {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fail(err)
	}
	pool, err := dockertest.NewPool("")
	if err == nil {
		pool.MaxWait = 60 * time.Second
		err = pool.Client.Ping()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "docker mode: skipped: no Docker engine answers (%v).\n"+
			"Start Docker (or set DOCKER_HOST), or use the native mode: make conformance\n", err)
		return
	}
	res, err := pool.BuildAndRunWithBuildOptions(&dockertest.BuildOptions{
		ContextDir: root,
		Dockerfile: "docker/klite.Dockerfile",
	}, &dockertest.RunOptions{
		Name: fmt.Sprintf("klite-conformance-%d", os.Getpid()),
		// The retention check and compaction backoff of the native klite target
		// (conformance/target.go), so the retention and compaction scenarios finish in seconds.
		Env: []string{"KLITE_ADVERTISED_ADDR=127.0.0.1:19192",
			"KLITE_RETENTION_CHECK_INTERVAL=1s", "KLITE_COMPACTION_BACKOFF=1s"},
		PortBindings: map[docker.Port][]docker.PortBinding{
			"9092/tcp": {{HostIP: "127.0.0.1", HostPort: "19192"}},
		},
	}, func(hc *docker.HostConfig) { hc.AutoRemove = true })
	if err != nil {
		fail(fmt.Errorf("building or starting the klite container: %w", err))
	}
	defer pool.Purge(res)
	args := append([]string{"run", "--klite-addr", "127.0.0.1:19192", "--target", "klite", "--doc=false"}, os.Args[1:]...)
	cmd := exec.Command(filepath.Join(root, "bin", "klite-conformance"), args...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		pool.Purge(res)
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "docker mode:", err)
	os.Exit(1)
}
