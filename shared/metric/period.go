package metric

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Period is a history window a client asks for with ?period=.
type Period struct {
	Name   string
	Window time.Duration
}

// Standard periods from the oCore contract, in order.
var (
	Period1h  = Period{"1h", time.Hour}
	Period6h  = Period{"6h", 6 * time.Hour}
	Period24h = Period{"24h", 24 * time.Hour}
	Period7d  = Period{"7d", 7 * 24 * time.Hour}

	StandardPeriods = []Period{Period1h, Period6h, Period24h, Period7d}
)

// DefaultPeriod is used when ?period= is absent or empty.
var DefaultPeriod = Period1h

// ParsePeriod returns the period named s among allowed (StandardPeriods when
// allowed is nil); "" means DefaultPeriod. Anything else is ErrInvalid.
func ParsePeriod(s string, allowed []Period) (Period, error) {
	if s == "" {
		return DefaultPeriod, nil
	}
	if allowed == nil {
		allowed = StandardPeriods
	}
	names := make([]string, len(allowed))
	for i, p := range allowed {
		if p.Name == s {
			return p, nil
		}
		names[i] = p.Name
	}
	return Period{}, Errorf(ErrInvalid, "period must be one of %s", strings.Join(names, ", "))
}

// ParseDuration parses a duration that may also use a "d" (day) suffix, as
// periods and retention settings do: "10s", "30m", "2h", "7d", "90d".
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}

// FormatDuration is the inverse of ParseDuration for whole days, hours,
// minutes and seconds: 7d, 24h, 5m, 10s.
func FormatDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d >= 48*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	default:
		return strconv.Itoa(int(d/time.Second)) + "s"
	}
}
