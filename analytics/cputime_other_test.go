//go:build !linux

package analytics

import "time"

var cpuStart = time.Now()

// threadCPU falls back to wall time where thread CPU time is not read.
func threadCPU() time.Duration { return time.Since(cpuStart) }
