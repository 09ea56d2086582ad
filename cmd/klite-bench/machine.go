package main

// The machine's own limits, measured in the same run as the brokers: sequential read of a
// file that is not in the page cache, and loopback TCP throughput (the disk write+fsync
// probe is diskProbe in diskprobe.go).

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"
)

// seqReadProbe writes size bytes to a new file in dir, fsyncs it and drops it from the page
// cache, then reads it back sequentially in 1 MiB reads and returns MB/s. The drop is
// POSIX_FADV_DONTNEED, so a virtual disk's own host-side cache may still serve part of it:
// the figure is what a reader of this file system sees, as the brokers' catch-up readers do.
func seqReadProbe(dir string, size int64) (float64, error) {
	name := filepath.Join(dir, fmt.Sprintf("readprobe-%d", time.Now().UnixNano()))
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	defer os.Remove(name)
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 13)
	}
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	dropPageCache(f, 0, size)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	start := time.Now()
	var n int64
	for n < size {
		m, err := f.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds() / 1e6, nil
}

// loopbackProbe streams 1 MiB writes over one 127.0.0.1 TCP connection for d and returns the
// MB/s the reader received: the ceiling for any broker's answers to a client on this host.
func loopbackProbe(d time.Duration) (float64, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- 0
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	start := time.Now()
	for time.Since(start) < d {
		if _, err := c.Write(buf); err != nil {
			c.Close()
			return 0, err
		}
	}
	c.Close()
	n := <-got
	return float64(n) / time.Since(start).Seconds() / 1e6, nil
}

// dropDirCache drops every regular file under dir from the page cache (fsync first: dirty
// pages cannot be dropped), so a catch-up reader afterwards reads from the disk.
func dropDirCache(dir string) {
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		_ = f.Sync()
		if st, err := f.Stat(); err == nil {
			dropPageCache(f, 0, st.Size())
		}
		f.Close()
		return nil
	})
}
