//go:build !linux

package runtimeapi

import "os"

// maxRSS is unknown off Linux (units differ by platform).
func maxRSS(*os.ProcessState) int64 { return 0 }
