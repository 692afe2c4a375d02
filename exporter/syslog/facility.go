package syslog

import (
	"fmt"
	"sort"
	"strings"
)

// facilities are the RFC 5424 facility codes a user may choose, by the
// names syslog.conf and rsyslog use. kern is left out: only the kernel
// logs as kern, and receivers treat such messages from elsewhere as
// forged.
var facilities = map[string]int{
	"user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
	"news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// DefaultFacility is the facility icptrack logs as: it is a daemon.
const DefaultFacility = "daemon"

// Severities icptrack uses (RFC 5424 section 6.2.1).
const (
	sevWarning = 4 // an operation that failed
	sevNotice  = 5 // operations lost: drops, the rate limit
	sevInfo    = 6 // anything else: operations that succeeded, checkpoints
)

// ParseFacility reads a facility name: daemon, local0 … local7, and the
// others syslog.conf knows.
func ParseFacility(name string) (int, error) {
	if code, ok := facilities[name]; ok {
		return code, nil
	}
	names := make([]string, 0, len(facilities))
	for n := range facilities {
		names = append(names, n)
	}
	sort.Strings(names)
	return 0, fmt.Errorf("%q is not a syslog facility: use one of %s", name, strings.Join(names, ", "))
}
