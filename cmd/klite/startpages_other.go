//go:build !linux

package main

// releaseStartupPages: only Linux's /proc/self/maps tells where the executable is mapped.
func releaseStartupPages() {}
