//go:build !linux

package logstore

const oDirect = 0
