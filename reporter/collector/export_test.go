package collector

import "os"

var osGetpid = os.Getpid
